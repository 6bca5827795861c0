//! The command line: no subcommand (or `serve`) runs the server; `dev-token` prints a token
//! the local profile accepts.
{% if messaging == "nats" %}
//! `redrive` puts dead letters back on their original subjects.
{% endif %}
//!
//! Managed by the platform.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::platform::config::Config;
{% if messaging == "nats" %}
use crate::platform::messaging::RedriveFilter;
{% endif %}
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
{% if messaging == "nats" %}
    /// Put dead letters back on their original subjects (all of them unless filtered) and
    /// remove them from the dead-letter stream.
    Redrive {
        /// Only the dead letters of this original subject; NATS wildcards (`*` one token, `>`
        /// the rest) allowed, so a handler's subject as the alert names it works.
        #[arg(long)]
        subject: Option<String>,
        /// Only the dead letter with this sequence in the dead-letter stream.
        #[arg(long)]
        seq: Option<u64>,
        /// Also put back dead letters whose consumer no running service pulls from right now
        /// (a deploy or an outage): they wait in that consumer until the service runs again.
        /// Without it they stay dead letters, since a handler removed or given another subject
        /// leaves its old consumer behind, and nothing would ever take them from it.
        #[arg(long)]
        allow_idle: bool,
        /// `json`: one JSON object on stdout, `{"redriven": N, "messages": [{"subject",
        /// "seq", "id", "consumer"}], "errors": ["…"]}` (errors too, exit 1 as in text).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
{% endif %}
}
{% if messaging == "nats" %}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for a person.
    Text,
    /// One JSON object, for scripts.
    Json,
}
{% endif %}

/// Parses the arguments and runs the command.
pub fn main(app: App) -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => server::run(app),
        Command::DevToken { sub, ttl_secs } => dev_token(&sub, ttl_secs),
{% if messaging == "nats" %}
        Command::Redrive {
            subject,
            seq,
            allow_idle,
            format,
        } => redrive(
            RedriveFilter {
                subject,
                sequence: seq,
                allow_idle,
            },
            format,
        ),
{% endif %}
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
{% if messaging == "nats" %}

fn redrive(filter: RedriveFilter, format: Format) -> ExitCode {
    use crate::platform::messaging::{Broker, MessagingConfig, nats::NatsBroker};
    let result = (|| -> Result<_, crate::platform::BoxError> {
        let (_, layers) = Config::from_env()?;
        let config = MessagingConfig::from_layers(&layers)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let broker = NatsBroker::connect(&config).await?;
            broker.check().await.map_err(|e| {
                format!(
                    "cannot reach the NATS server at {} ({e}); check messaging.url (env APP_MESSAGING__URL)",
                    config.url
                )
            })?;
            let redriven =
                tokio::time::timeout(std::time::Duration::from_secs(30), broker.redrive(&filter))
                    .await
                    .map_err(|_| {
                        format!("the broker at {} did not answer within 30 s", config.url)
                    })??;
            Ok(redriven)
        })
    })();
    if format == Format::Json {
        let (redriven, errors) = match &result {
            Ok(report) => (report.redriven.as_slice(), report.kept.clone()),
            Err(error) => (&[][..], vec![error.to_string()]),
        };
        let messages: Vec<serde_json::Value> = redriven
            .iter()
            .map(|letter| {
                serde_json::json!({
                    "subject": letter.subject,
                    "seq": letter.dead_letter_sequence,
                    "id": letter.id,
                    "consumer": letter.consumer,
                })
            })
            .collect();
        let report = serde_json::json!({
            "redriven": redriven.len(),
            "messages": messages,
            "errors": errors,
        });
        println!("{report}");
        for error in &errors {
            eprintln!("error: redrive: {error}");
        }
        return if errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    match result {
        Ok(report) => {
            for letter in &report.redriven {
                let to = letter
                    .consumer
                    .as_deref()
                    .map_or_else(String::new, |consumer| format!(", for {consumer}"));
                println!(
                    "redriven: dead letter {} -> {} (id {}{to})",
                    letter.dead_letter_sequence, letter.subject, letter.id
                );
            }
            println!("{} dead letter(s) put back", report.redriven.len());
            for kept in &report.kept {
                eprintln!("error: redrive: {kept}");
            }
            if report.kept.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: redrive: {error}");
            ExitCode::FAILURE
        }
    }
}
{% endif %}
