//! `cargo platform fleet …`: the platform team's view over many services.

use std::path::PathBuf;

use super::ExitStatus;
use crate::error::{Error, Result};
use crate::fleet::{self, discover, file};
use crate::policy;
use crate::report::fleet::{FleetCheckReport, FleetService, FleetStatusReport};
use crate::template::Catalogue;
use crate::ui::{Format, Printer};

/// See the whole fleet: every service under `--root` trees and in a `--fleet` file, on disk or
/// read from git refs without a checkout (golden-path.md section 10, "The fleet"); upgrade it in
/// campaigns (section 10.1).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum FleetCommand {
    Status(StatusArgs),
    Report(ReportArgs),
    Check(CheckArgs),
    Upgrade(super::fleet_upgrade::UpgradeArgs),
    Matrix(super::fleet_upgrade::MatrixArgs),
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
/// with reason and date, platform files edited locally, when it was created and last upgraded,
/// and `check`'s verdict.
///
/// Places that cannot be read (a missing repository or ref, a corrupt or newer manifest, an
/// unknown template) are listed with their reason and the rest is reported; the exit code is
/// then 1. Reads only: nothing is written.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// Output format: text, one JSON document (golden-path.md section 9), or CSV (one row per
    /// service, then one per skipped place; a list in a cell is a JSON array, golden-path.md
    /// section 10).
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

/// The fleet's aggregates, per template and per team: share of services on a supported release
/// and on the newest (now, and at the end of every month since the first release), version lag, how many days each release took to reach 50 %, 70 % and 90 %
/// of the services existing then, ejections with their reasons, the managed files edited in the
/// most services, what the upgrades to each release changed (updated, merged, left in conflict),
/// the services out of policy (golden-path.md section 11, "For leaders"), and the upgrade
/// campaigns in progress, per template and target: services with an open (unmerged) campaign
/// branch, services already on the target, and services still to do (section 10.1).
///
/// Services come from --root trees and a --fleet file (as `fleet status`), and/or from --from, a
/// directory of `cargo platform status --format json` fact files published by each repository's
/// CI (with --from alone, no directory is scanned). A service met more than once (the same
/// template, name and creation day) counts once, its latest observation. Entries that cannot be read are listed with their reason and the rest is reported; the
/// exit code is then 1. Writes only into --out.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// A directory of fact files (`*.json`, one `cargo platform status --format json` document
    /// per service).
    #[arg(long, value_name = "FACTS_DIR")]
    pub from: Option<PathBuf>,
    /// Write the report into this directory (created if missing) as `fleet-report.html`,
    /// `fleet-report.md`, `fleet-report.json` or `fleet-report.prom` (with the Grafana dashboard
    /// for those series beside it, `fleet-dashboard.json`), atomically, instead of stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Output format: one self-contained HTML page for leaders (charts and tables, no network,
    /// no script), Markdown tables, one JSON document (golden-path.md section 9), or OpenMetrics
    /// `platform_fleet_*` series.
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
    /// Compute everything as of this past date (YYYY-MM-DD): services created later do not
    /// exist, versions come from each service's history. Default: today.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_as_of)]
    pub as_of: Option<jiff::civil::Date>,
}

/// How `fleet report` renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Html,
    Markdown,
    Json,
    Openmetrics,
}

fn parse_as_of(text: &str) -> std::result::Result<jiff::civil::Date, String> {
    policy::parse_date(text).ok_or_else(|| format!("`{text}` is not a date (YYYY-MM-DD)"))
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
        FleetCommand::Report(args) => report(args),
        FleetCommand::Check(args) => check(args),
        FleetCommand::Upgrade(args) => super::fleet_upgrade::upgrade(args),
        FleetCommand::Matrix(args) => super::fleet_upgrade::matrix(args),
    }
}

/// Finds and reads every service of the fleet.
fn gather(sources: &Sources) -> Result<FleetStatusReport> {
    let catalogue = Catalogue::load()?;
    let today = policy::today()?;
    let (services, skipped) =
        fleet::gather_with(find(sources, false)?, &catalogue, today, FleetService::new);
    Ok(FleetStatusReport::new(today.to_string(), services, skipped))
}

/// The fleet's services from `--root` trees and the fleet file; the current directory when
/// neither is given, unless `other_source` (--from) is.
fn find(sources: &Sources, other_source: bool) -> Result<discover::Found> {
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
    let roots = if sources.root.is_empty() && sources.fleet.is_none() && !other_source {
        vec![PathBuf::from(".")]
    } else {
        sources.root.clone()
    };
    Ok(discover::all(
        &roots,
        &repositories,
        sources.reference.as_deref(),
    ))
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

fn report(args: ReportArgs) -> Result<ExitStatus> {
    let catalogue = Catalogue::load()?;
    let today = policy::today()?;
    let as_of = args.as_of.unwrap_or(today);
    if as_of > today {
        return Err(
            Error::new(format!("--as-of {as_of} is after today ({today})"))
                .hint("pass today's date or an earlier one"),
        );
    }
    let mut published = Vec::new();
    let mut skipped = Vec::new();
    if let Some(dir) = &args.from {
        let (read, bad) = fleet::facts_file::read_dir(dir)?;
        published = read;
        skipped.extend(bad);
    }
    let sources = &args.sources;
    let mut found = Vec::new();
    if args.from.is_none() || !sources.root.is_empty() || sources.fleet.is_some() {
        let (read, bad) =
            fleet::facts_file::read_found(find(sources, args.from.is_some())?, &catalogue, today);
        found = read;
        skipped.extend(bad);
    }
    // A service both found and published (or published twice) counts once.
    let facts = fleet::facts_file::merge(found, published);
    let templates = fleet::aggregate::templates(&catalogue);
    let report = fleet::aggregate::report(&facts, &templates, as_of, skipped);
    let campaigns = match args.from.is_none() || !sources.root.is_empty() || sources.fleet.is_some()
    {
        true => super::fleet_upgrade::progress(&sources.root, sources.fleet.as_deref())?,
        false => Vec::new(),
    };
    let mut bytes = Vec::new();
    let extension = match args.format {
        ReportFormat::Html => {
            report.html(&campaigns, &mut bytes)?;
            "html"
        }
        ReportFormat::Markdown => {
            report.markdown(&mut bytes)?;
            crate::report::campaign::campaigns_markdown(&campaigns, &mut bytes)?;
            "md"
        }
        ReportFormat::Json => {
            let with = crate::report::campaign::ReportWithCampaigns {
                report: &report,
                campaigns: &campaigns,
            };
            crate::report::write_json(&with, &mut bytes)?;
            "json"
        }
        ReportFormat::Openmetrics => {
            report.openmetrics(&mut bytes)?;
            "prom"
        }
    };
    let printer = Printer::new(Format::Human);
    match &args.out {
        Some(dir) => {
            fs_err::create_dir_all(dir)?;
            let path = dir.join(format!("fleet-report.{extension}"));
            crate::fsx::write_file_atomically(&path, &bytes)?;
            printer.note(format!("wrote {}", path.display()));
            if args.format == ReportFormat::Openmetrics {
                use crate::report::fleet_dashboard::{DASHBOARD, FILE_NAME};
                let path = dir.join(FILE_NAME);
                crate::fsx::write_file_atomically(&path, DASHBOARD.as_bytes())?;
                printer.note(format!(
                    "wrote {} (the Grafana dashboard for these series)",
                    path.display()
                ));
            }
        }
        None => printer.write_stdout(|out| out.write_all(&bytes))?,
    }
    Ok(if report.skipped.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Incomplete
    })
}
