//! `cargo platform fleet upgrade` (a campaign over the fleet) and `fleet matrix` (the same
//! services as a CI job matrix).

use std::path::{Path, PathBuf};

use super::ExitStatus;
use crate::error::{Error, Result};
use crate::fleet::campaign::{self, Options, Target};
use crate::fleet::file;
use crate::report::campaign::{CampaignProgress, CampaignReport, Matrix};
use crate::report::fleet::SkippedEntry;
use crate::template::Catalogue;
use crate::ui::{Format, Printer};

/// Where a campaign's services are: git repositories (work trees or bare), read from their
/// default branch, never from the checkout.
#[derive(Debug, clap::Args)]
pub struct CampaignSources {
    /// A tree of git repositories (clones, monorepos, bare mirrors) to scan (repeatable; each
    /// repository's services are read from its default branch: `origin/HEAD`, else HEAD's
    /// branch; a detached HEAD without `origin/HEAD` is skipped: give the fleet entry a `ref`).
    /// A directory inside a repository means that repository's services below it. Default: the
    /// current directory, unless --fleet is given.
    #[arg(long, value_name = "DIR")]
    pub root: Vec<PathBuf>,
    /// A fleet file (`[[repository]]` with `path`, optional `ref` — the branch to start from —,
    /// `services` globs and `team`; golden-path.md section 10).
    #[arg(long, value_name = "FILE")]
    pub fleet: Option<PathBuf>,
}

/// Upgrade every service of the fleet on a branch of its own repository, ready for a pull
/// request (golden-path.md, "Upgrade campaigns").
///
/// For each service: start from its repository's default branch (the fleet file's `ref`, else
/// `origin/HEAD`, else HEAD's branch), run the same upgrade as `cargo platform upgrade` in the
/// repository's object database — never in the team's checkout, index or stash — and commit a
/// clean result on `platform/upgrade-<template>-<version>` (`-<dir>` appended for a service
/// below the repository root). The branch is moved last, so a killed run leaves each repository
/// untouched or with a complete branch; a re-run skips branches that already carry the upgrade
/// and refreshes branches whose base moved. A branch is moved only when its tip is a campaign
/// commit and no work tree has it checked out: a team's commits on it are never overwritten.
///
/// Outcomes: ready (committed), needs hands (conflicts, a declared break in an ejected component,
/// a failed --verify: nothing committed, the report names the files and the command to run in
/// the checkout), refused (corrupt or newer manifest, unknown template or release), up to date.
/// Exit 0 when all are ready or up to date, 3 when any needs hands, 1 when any was refused, a
/// place could not be read or a --push failed (no such remote, credentials, network; 1 wins
/// over 3).
#[derive(Debug, clap::Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    pub sources: CampaignSources,
    /// Target release (default: the newest release of each service's template; never a draft).
    /// A draft release (still under construction) needs --allow-draft.
    #[arg(long, value_name = "X.Y.Z")]
    pub to: Option<String>,
    /// Allow --to to name a draft release (for template authors trying it).
    #[arg(long, env = crate::template::ALLOW_DRAFT_ENV, value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_draft: bool,
    /// Branch name instead of `platform/upgrade-<template>-<version>` (`-<dir>` is still appended
    /// for a service below its repository's root).
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// Services upgraded in parallel (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Run `cargo check --all-targets` on each upgraded service before committing it; a failure
    /// is "needs hands". One target directory is shared by the whole campaign: CARGO_TARGET_DIR,
    /// else `target/fleet-verify` under the current directory.
    #[arg(long, conflicts_with = "dry_run")]
    pub verify: bool,
    /// Plan every service and print the outcomes; write nothing anywhere (no objects, no
    /// branches, no files).
    #[arg(long)]
    pub dry_run: bool,
    /// Push ready branches to this remote (a remote's name in each repository, or a URL or path)
    /// with `git push --force-with-lease` (git on PATH, your credentials), never overwriting a
    /// remote branch whose tip is not a campaign commit.
    #[arg(long, value_name = "REMOTE", conflicts_with = "dry_run")]
    pub push: Option<String>,
    /// Write each ready service's pull-request body (Markdown) into this directory.
    #[arg(long, value_name = "DIR", conflicts_with = "dry_run")]
    pub out: Option<PathBuf>,
    /// Output format: text, one JSON document (golden-path.md section 9), or Markdown for the
    /// campaign's tracking issue.
    #[arg(long, value_enum, default_value_t = CampaignFormat::Human)]
    pub format: CampaignFormat,
}

/// How `fleet upgrade` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CampaignFormat {
    Human,
    Json,
    Markdown,
}

/// Print the services still to upgrade as a CI job matrix: `{"include": [...]}`, the JSON GitHub
/// Actions' `strategy.matrix` takes, one entry per service (service, repo, path, ref, team,
/// template, from, to, branch, and `remote`: the repository's `origin` URL). Services already on
/// the target, and places that cannot be read, are left out and listed on stderr; exit 1 when
/// something could not be read.
#[derive(Debug, clap::Args)]
pub struct MatrixArgs {
    #[command(flatten)]
    pub sources: CampaignSources,
    /// Target release (default: the newest release of each service's template; never a draft).
    /// A draft release (still under construction) needs --allow-draft.
    #[arg(long, value_name = "X.Y.Z")]
    pub to: Option<String>,
    /// Allow --to to name a draft release (for template authors trying it).
    #[arg(long, env = crate::template::ALLOW_DRAFT_ENV, value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_draft: bool,
    /// The branch name each job commits on (as `fleet upgrade --branch`).
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
}

fn targets(sources: &CampaignSources) -> Result<(Vec<Target>, Vec<SkippedEntry>)> {
    find(&sources.root, sources.fleet.as_deref())
}

/// `fleet report`'s campaigns in progress, over the same sources (`--ref` aside: campaign branches
/// are found from each repository's default branch's services).
pub fn progress(roots: &[PathBuf], fleet: Option<&Path>) -> Result<Vec<CampaignProgress>> {
    let (targets, _) = find(roots, fleet)?;
    Ok(campaign::progress(&targets))
}

fn find(roots: &[PathBuf], fleet: Option<&Path>) -> Result<(Vec<Target>, Vec<SkippedEntry>)> {
    let repositories = match fleet {
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
    let roots = if roots.is_empty() && fleet.is_none() {
        vec![PathBuf::from(".")]
    } else {
        roots.to_vec()
    };
    Ok(campaign::targets(&roots, &repositories))
}

/// `--to` must name a release of some embedded template; a draft only with --allow-draft.
fn check_to(catalogue: &Catalogue, to: Option<&str>, allow_draft: bool) -> Result<()> {
    let Some(to) = to else { return Ok(()) };
    let mut draft = None;
    for t in &catalogue.templates {
        match t.release_to_render(to, allow_draft) {
            Ok(_) => return Ok(()),
            Err(e) if t.release(to).is_ok() => draft = draft.or(Some(e)),
            Err(_) => {}
        }
    }
    if let Some(e) = draft {
        return Err(e);
    }
    Err(
        Error::new(format!("--to {to}: no template has a release {to}"))
            .hint("`cargo platform templates` lists the releases this tool knows"),
    )
}

/// `--branch` must be a name git accepts for a branch (with `-<dir>` appended, it stays one).
fn check_branch(branch: Option<&str>) -> Result<()> {
    match branch {
        Some(b) if !crate::git::campaign::valid_branch_name(b) => Err(Error::new(format!(
            "--branch {b}: not a valid git branch name"
        ))
        .hint("use letters, digits, `-`, `_`, `.` and `/`, e.g. --branch platform/audit-rollout")),
        _ => Ok(()),
    }
}

pub fn upgrade(args: UpgradeArgs) -> Result<ExitStatus> {
    let catalogue = Catalogue::load()?;
    check_to(&catalogue, args.to.as_deref(), args.allow_draft)?;
    check_branch(args.branch.as_deref())?;
    let verify = match args.verify {
        false => None,
        true => Some(match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => std::env::current_dir()?.join("target/fleet-verify"),
        }),
    };
    if let Some(dir) = &args.out {
        fs_err::create_dir_all(dir)?;
    }
    let opts = Options {
        to: args.to.clone(),
        allow_draft: args.allow_draft,
        branch: args.branch.clone(),
        dry_run: args.dry_run,
        verify,
        push: args.push.clone(),
        out: args.out.clone(),
        today: crate::policy::today()?,
    };
    let (targets, skipped) = targets(&args.sources)?;
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let services = campaign::parallel(&targets, jobs, |t| campaign::upgrade(t, &catalogue, &opts));
    let report = CampaignReport::new(args.dry_run, args.to, services, skipped);
    match args.format {
        CampaignFormat::Human => Printer::new(Format::Human).report(&report)?,
        CampaignFormat::Json => Printer::new(Format::Json).report(&report)?,
        CampaignFormat::Markdown => {
            Printer::new(Format::Human).write_stdout(|out| report.markdown(out))?
        }
    }
    Ok(report.exit_status())
}

pub fn matrix(args: MatrixArgs) -> Result<ExitStatus> {
    let catalogue = Catalogue::load()?;
    check_to(&catalogue, args.to.as_deref(), args.allow_draft)?;
    check_branch(args.branch.as_deref())?;
    let (targets, skipped) = targets(&args.sources)?;
    let printer = Printer::new(Format::Human);
    let mut include = Vec::new();
    let mut unreadable = !skipped.is_empty();
    for s in &skipped {
        printer.warn(format!("not read: {}: {}", s.location, s.reason));
    }
    for t in &targets {
        match campaign::matrix_entry(
            t,
            &catalogue,
            args.to.as_deref(),
            args.allow_draft,
            args.branch.as_deref(),
        ) {
            Ok(entry) => include.push(entry),
            Err((at, reason)) if reason.starts_with("already on ") => {
                printer.note(format!("left out: {at}: {reason}"));
            }
            Err((at, reason)) => {
                unreadable = true;
                printer.warn(format!("left out: {at}: {reason}"));
            }
        }
    }
    let matrix = Matrix { include };
    printer.write_stdout(|out| {
        serde_json::to_writer(&mut *out, &matrix)?;
        writeln!(out)
    })?;
    Ok(if unreadable {
        ExitStatus::Incomplete
    } else {
        ExitStatus::Success
    })
}
