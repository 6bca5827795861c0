//! `cargo platform fleet …`: the platform team's view over many services.

use std::path::PathBuf;

use super::ExitStatus;
use crate::error::{Error, Result};
use crate::fleet::{self, discover, file};
use crate::policy;
use crate::report::fleet::{FleetCheckReport, FleetStatusReport};
use crate::template::Catalogue;
use crate::ui::{Format, Printer};

/// See the whole fleet: every service under `--root` trees and in a `--fleet` file, on disk or
/// read from git refs without a checkout (golden-path.md section 10, "The fleet").
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum FleetCommand {
    Status(StatusArgs),
    Check(CheckArgs),
}

/// Where to find the fleet's services.
#[derive(Debug, clap::Args)]
pub struct Sources {
    /// A tree of clones and monorepos to scan for platform.toml (repeatable; `target/`, `.git/`,
    /// `node_modules/` skipped, symbolic links never followed). Default: the current directory,
    /// unless --fleet is given.
    #[arg(long, value_name = "DIR")]
    pub root: Vec<PathBuf>,
    /// A fleet file: a TOML list of repositories (`[[repository]]` with `path`, optional `ref`,
    /// `services` globs and `team`; golden-path.md section 10).
    #[arg(long, value_name = "FILE")]
    pub fleet: Option<PathBuf>,
    /// Read every service from this git ref (branch, tag, commit) without a checkout; bare
    /// mirrors work. A fleet file entry's own `ref` wins.
    #[arg(long = "ref", value_name = "REF")]
    pub reference: Option<String>,
}

/// Show where every service of the fleet stands: name, location, team, template and version, releases behind and days since the
/// newest release, support state and end date, pending required migrations, ejected components
/// with reason and date, platform files edited locally, and `check`'s verdict.
///
/// Places that cannot be read (a missing repository or ref, a corrupt or newer manifest, an
/// unknown template) are listed with their reason and the rest is reported; the exit code is
/// then 1. Reads only: nothing is written.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// Output format: text, one JSON document (golden-path.md section 9), or CSV (one row per
    /// service, then one per skipped place).
    #[arg(long, value_enum, default_value_t = FleetFormat::Human)]
    pub format: FleetFormat,
}

/// The fleet's CI gate: exit 4 when any service is out of policy (past its end of support, a
/// required migration pending), with one line per finding grouped by team.
///
/// Exit 0 when every service read is within policy, 4 when any is out of policy, else 1 when
/// some place could not be read (listed with its reason).
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub sources: Sources,
}

/// How `fleet status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FleetFormat {
    Human,
    Json,
    Csv,
}

pub fn run(args: Args) -> Result<ExitStatus> {
    match args.command {
        FleetCommand::Status(args) => status(args),
        FleetCommand::Check(args) => check(args),
    }
}

/// Finds and reads every service of the fleet.
fn gather(sources: &Sources) -> Result<FleetStatusReport> {
    let repositories = match &sources.fleet {
        Some(path) => {
            let text = fs_err::read_to_string(path).map_err(|e| {
                Error::from(e).hint(
                    "pass the path of a fleet file (golden-path.md section 10, \"The fleet\")",
                )
            })?;
            file::parse(&text, path)?
        }
        None => Vec::new(),
    };
    let roots = if sources.root.is_empty() && sources.fleet.is_none() {
        vec![PathBuf::from(".")]
    } else {
        sources.root.clone()
    };
    let catalogue = Catalogue::load()?;
    let today = policy::today()?;
    let found = discover::all(&roots, &repositories, sources.reference.as_deref());
    let (services, skipped) = fleet::gather(found, &catalogue, today);
    Ok(FleetStatusReport::new(today.to_string(), services, skipped))
}

fn status(args: StatusArgs) -> Result<ExitStatus> {
    let report = gather(&args.sources)?;
    match args.format {
        FleetFormat::Human => Printer::new(Format::Human).report(&report)?,
        FleetFormat::Json => Printer::new(Format::Json).report(&report)?,
        FleetFormat::Csv => Printer::new(Format::Human).write_stdout(|out| report.csv(out))?,
    }
    Ok(if report.skipped.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Incomplete
    })
}

fn check(args: CheckArgs) -> Result<ExitStatus> {
    let status = gather(&args.sources)?;
    let report = FleetCheckReport::new(&status);
    Printer::new(Format::Human).report(&report)?;
    Ok(if !report.ok {
        ExitStatus::OutOfPolicy
    } else if !report.skipped.is_empty() {
        ExitStatus::Incomplete
    } else {
        ExitStatus::Success
    })
}
