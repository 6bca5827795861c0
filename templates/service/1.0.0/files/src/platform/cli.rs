//! The command line: no subcommand (or `serve`) runs the server; `dev-token` prints a token
//! the local profile accepts.
//!
//! Managed by the platform.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::platform::config::Config;
use crate::platform::server::{self, App};

#[derive(Debug, Parser)]
#[command(version, about = "{{ description }}")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Print an HS256 bearer token accepted by the local profile.
    DevToken {
        /// The token's subject (`sub`).
        #[arg(long, default_value = "dev-user")]
        sub: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
}

/// Parses the arguments and runs the command.
pub fn main(app: App) -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => server::run(app),
        Command::DevToken { sub, ttl_secs } => dev_token(&sub, ttl_secs),
    }
}

fn dev_token(sub: &str, ttl_secs: u64) -> ExitCode {
    let result = Config::from_env()
        .map_err(|e| e.to_string())
        .and_then(|(config, _)| crate::platform::auth::dev_token::mint(&config, sub, ttl_secs));
    match result {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
