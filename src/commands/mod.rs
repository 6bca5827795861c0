//! One module per subcommand: its clap `Args` (doc comments are the help) and its `run`.

pub mod add;
pub mod check;
pub mod completions;
pub mod eject;
pub mod fleet;
pub mod fleet_upgrade;
pub mod new;
pub mod prompt;
pub mod status;
pub mod templates;
pub mod upgrade;

use crate::Command;
use crate::error::Result;

/// How a command that ran ended. Findings are outcomes, printed in the command's report; only
/// failures are `Err` (and print `error:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done, nothing needs attention.
    Success,
    /// 3: the upgrade was applied and left the team something to do: conflicts to resolve,
    /// declared actions, a failed `--verify`.
    NeedsAttention,
    /// 4: `check` found the service out of policy.
    OutOfPolicy,
    /// 1: a fleet command reported what it could read and listed the places it could not.
    Incomplete,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::NeedsAttention => 3,
            ExitStatus::OutOfPolicy => 4,
            ExitStatus::Incomplete => 1,
        }
    }
}

pub fn dispatch(command: Command) -> Result<ExitStatus> {
    match command {
        Command::New(args) => new::run(args).map(|()| ExitStatus::Success),
        Command::Upgrade(args) => upgrade::run(args),
        Command::Eject(args) => eject::run(args).map(|()| ExitStatus::Success),
        Command::Status(args) => status::run(args).map(|()| ExitStatus::Success),
        Command::Check(args) => check::run(args),
        Command::Add(args) => add::run(args),
        Command::Templates(args) => templates::run(args).map(|()| ExitStatus::Success),
        Command::Completions(args) => completions::run(args).map(|()| ExitStatus::Success),
        Command::Fleet(args) => fleet::run(args),
    }
}
