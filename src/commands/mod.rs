//! One module per subcommand: its clap `Args` (doc comments are the help) and its `run`.

pub mod check;
pub mod completions;
pub mod eject;
pub mod new;
pub mod prompt;
pub mod status;
pub mod templates;
pub mod upgrade;

use crate::Command;
use crate::error::Result;

pub fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::New(args) => new::run(args),
        Command::Upgrade(args) => upgrade::run(args),
        Command::Eject(args) => eject::run(args),
        Command::Status(args) => status::run(args),
        Command::Check(args) => check::run(args),
        Command::Templates(args) => templates::run(args),
        Command::Completions(args) => completions::run(args),
    }
}
