//! cargo-platform: the backend platform team's golden path — scaffold, upgrade, eject and audit
//! Rust services from embedded, versioned templates.

#[macro_use]
pub mod error;
pub mod commands;
pub mod durable;
pub mod facts;
pub mod fleet;
pub mod fsx;
pub mod git;
pub mod journal;
#[cfg(test)]
mod layers;
pub mod lock;
pub mod manifest;
pub mod names;
pub mod policy;
pub mod report;
pub mod service;
pub mod template;
pub mod ui;
pub mod upgrade;
pub mod verify;
pub mod workspace;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// cargo runs us as `cargo-platform platform …`; people may also run `cargo-platform …`.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = clap::builder::styling::Styles::styled())]
pub enum CargoCli {
    Platform(PlatformCli),
}

/// The backend platform's golden path: scaffold services from versioned templates, upgrade them
/// without losing a team's edits, eject components on the record, and see where every service
/// stands.
///
/// Exit codes: 0 success · 1 failure, nothing changed (unless only writing the report failed) ·
/// 2 usage error · 3 upgrade applied but needs attention (conflicts, actions for ejected
/// components, `--verify` failed) · 4 `check` found the service out of policy · 141 stdout
/// closed before the report was written (the work is done).
#[derive(Debug, clap::Args)]
#[command(version, author, propagate_version = true)]
pub struct PlatformCli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    New(commands::new::Args),
    Upgrade(commands::upgrade::Args),
    Eject(commands::eject::Args),
    Status(commands::status::Args),
    Check(commands::check::Args),
    Add(commands::add::Args),
    Templates(commands::templates::Args),
    Completions(commands::completions::Args),
    Fleet(commands::fleet::Args),
}

/// Parses `args` (as from `std::env::args_os`), runs the command and returns its exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let mut args: Vec<OsString> = args.into_iter().collect();
    // Run directly as `cargo-platform new …`: behave as `cargo platform new …`.
    if args.get(1).is_none_or(|a| a != "platform") {
        args.insert(1.min(args.len()), OsString::from("platform"));
    }
    let cli = match CargoCli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let CargoCli::Platform(platform) = cli;
    match commands::dispatch(platform.command) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            ui::print_error(&err);
            ExitCode::from(err.kind.code())
        }
    }
}
