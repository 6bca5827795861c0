//! `cargo platform upgrade`: walk a service from its template version to a newer one.

use std::path::{Path, PathBuf};

use clap::ValueEnum;

use super::ExitStatus;
use crate::error::{Error, Result};
use crate::report::upgrade::{self as report, AbortReport, ReverifyReport, UpgradeReport};
use crate::service::Service;
use crate::template::Catalogue;
use crate::ui::{Format, Printer};
use crate::upgrade::plan::{self, Disk, OnDisk, Write};
use crate::{git, journal, manifest};

/// Upgrade the service to a newer template version, never losing the team's edits.
///
/// Plans every hop from the service's version to the target, 3-way merges managed files (base =
/// the exact old render), applies structured TOML edits, and writes all-or-nothing with a journal.
/// Exit 0 clean; 3 when it needs attention: conflicts remain (listed), a release changed what core
/// expects of an ejected component (listed as actions for the team), or `--verify` failed; 1 on
/// refusal or error with nothing changed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service directory (default: the nearest directory with platform.toml, upwards).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Target template version (default: the newest release; never a draft). A draft release
    /// (still under construction, marked in `cargo platform templates`) needs --allow-draft.
    #[arg(long, value_name = "X.Y.Z")]
    pub to: Option<String>,
    /// Allow --to to name a draft release (for template authors trying it).
    #[arg(long, env = crate::template::ALLOW_DRAFT_ENV, value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_draft: bool,
    /// Print the plan (per file: new, unchanged, updated, merged, conflict, renamed, deleted, kept,
    /// ejected, excluded) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Upgrade even when the git work tree has uncommitted changes.
    #[arg(long)]
    pub allow_dirty: bool,
    /// Skip a migration by id; it is recorded as skipped in platform.toml.
    #[arg(long, value_name = "MIGRATION_ID")]
    pub skip: Vec<String>,
    /// Never touch paths matching this glob (repeatable). `*` stays within one directory, `**`
    /// crosses directories: `config/**` is everything under config/. platform.toml keeps what the
    /// platform last wrote there, so later upgrades need the same --exclude.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Eject a component before upgrading (repeatable).
    #[arg(long, value_name = "COMPONENT")]
    pub eject: Vec<String>,
    /// How to leave conflicts: git-style markers in the file, or `.rej` files beside it.
    #[arg(long, value_enum, default_value_t = ConflictStyle::Markers)]
    pub conflict: ConflictStyle,
    /// Commit the result, with a message naming the versions.
    #[arg(long)]
    pub commit: bool,
    /// After writing, run `cargo check --all-targets` in the service (CARGO_TARGET_DIR is
    /// respected). If it fails: exit 3 ("needs attention") with the compiler's first errors, and
    /// the journal is kept, so `--abort` rolls the upgrade back exactly; fix the errors and run
    /// `upgrade --verify` again to check again and keep it. With --commit, commits only once the
    /// check passes. Use it wherever nobody reads the diff before it lands: bots that open
    /// upgrade pull requests, CI jobs, fleet-wide runs.
    #[arg(long, conflicts_with = "dry_run")]
    pub verify: bool,
    /// Roll back an interrupted upgrade (or an applied upgrade whose `--verify` failed) from its
    /// journal, restoring the tree exactly.
    #[arg(long, conflicts_with_all = ["to", "dry_run", "skip", "exclude", "eject", "commit", "verify"])]
    pub abort: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConflictStyle {
    /// `<<<<<<<` / `=======` / `>>>>>>>` markers in the file.
    Markers,
    /// Keep the team's file, write the template's side to `<file>.rej`.
    Reject,
}

pub fn run(args: Args) -> Result<ExitStatus> {
    let printer = Printer::new(args.format);
    let root = crate::service::find_root(args.path.as_deref())?;
    // Held until the run ends: a second run refuses rather than take our journal for a crash's.
    // A dry run writes nothing, not even the lock file, but refuses all the same.
    let _lock = match args.dry_run {
        true => crate::lock::check_free(&root).map(|()| None)?,
        false => Some(crate::lock::service(&root)?),
    };
    if args.abort {
        abort(&printer, &root)?;
        return Ok(ExitStatus::Success);
    }
    if args.verify && journal::verify_pending(&root) {
        // The team fixed what the last `--verify` found: check again, keep it when it passes.
        let report = ReverifyReport {
            verify: verify(&printer, &root)?,
        };
        printer.report(&report)?;
        return Ok(report.exit_status());
    }
    journal::check_clear(&root)?;
    let service = Service::locate(Some(&root))?;
    let catalogue = Catalogue::load()?;
    let template = service.template(&catalogue)?;
    let to = args
        .to
        .as_deref()
        .map(|v| {
            template
                .release_to_render(v, args.allow_draft)
                .map(|r| r.version.clone())
        })
        .transpose()?;
    let opts = plan::Options {
        to,
        skip: args.skip.clone(),
        exclude: args.exclude.clone(),
        eject: args.eject.clone(),
        conflict: match args.conflict {
            ConflictStyle::Markers => plan::ConflictStyle::Markers,
            ConflictStyle::Reject => plan::ConflictStyle::Reject,
        },
        today: crate::policy::today()?,
    };
    let disk = ServiceDisk { root: &root };
    let plan = plan::plan(template, &service.manifest, &disk, &opts)?;
    let name = &service.manifest.name;
    let mut report = UpgradeReport::new(
        name,
        &root.display().to_string(),
        &template.name,
        &plan,
        match args.conflict {
            ConflictStyle::Markers => report::ConflictStyle::Markers,
            ConflictStyle::Reject => report::ConflictStyle::Reject,
        },
    );
    report.dry_run = args.dry_run;

    if plan.is_noop() {
        if plan.manifest != service.manifest && !args.dry_run {
            // --eject on an up-to-date service: record it all the same.
            let text = plan.manifest.to_toml(Some(&service.manifest_text))?;
            journal::apply(
                &root,
                &[Write::Put {
                    path: manifest::FILE_NAME.to_string(),
                    contents: text.into_bytes(),
                }],
            )?;
            report.ejected = report::newly_ejected(&service.manifest, &plan.manifest);
            report.applied();
        }
        printer.report(&report)?;
        return Ok(report.exit_status());
    }
    if args.dry_run {
        printer.report(&report)?;
        return Ok(report.exit_status());
    }
    guard_clean(&root, args.allow_dirty, &printer, "upgrade")?;

    let writes = with_manifest(&plan, &service)?;
    if args.verify {
        // The journal stays until the check passes, so `--abort` can roll back a failed one.
        journal::apply_unverified(&root, &writes)?;
        report.verify = Some(verify(&printer, &root)?);
    } else {
        journal::apply(&root, &writes)?;
    }
    report.ejected = report::newly_ejected(&service.manifest, &plan.manifest);

    if args.commit {
        if report.verify.as_ref().is_some_and(|v| !v.passed) {
            printer.warn("not committing (--commit): `cargo check --all-targets` fails");
        } else if !report.actions.is_empty() {
            printer.warn("not committing (--commit): make the changes listed for your ejected components first, then commit");
        } else if report.conflicts.is_empty() {
            let paths: Vec<String> = writes.iter().map(|w| w.path().to_string()).collect();
            let message = format!(
                "Upgrade {name}: template {} {} -> {}\n\nApplied by cargo-platform {}.",
                template.name,
                plan.from,
                plan.to,
                env!("CARGO_PKG_VERSION")
            );
            let commit = git::commit_paths(&root, &paths, &message)?;
            report.commit = Some(commit.id);
        } else {
            printer.warn("not committing (--commit): resolve the conflicts first, then commit");
        }
    }
    report.applied();
    printer.report(&report)?;
    Ok(report.exit_status())
}

/// The plan's file writes, then platform.toml: everything one journaled write applies.
pub(super) fn with_manifest(plan: &plan::Plan, service: &Service) -> Result<Vec<Write>> {
    let manifest_text = plan.manifest.to_toml(Some(&service.manifest_text))?;
    let mut writes = plan.writes.clone();
    writes.push(Write::Put {
        path: manifest::FILE_NAME.to_string(),
        contents: manifest_text.into_bytes(),
    });
    Ok(writes)
}

/// `--verify`: `cargo check --all-targets` in the service. A pass drops the journal; after a
/// failure it stays, for `--abort`.
fn verify(printer: &Printer, root: &Path) -> Result<report::Verify> {
    printer.note(format!("Verifying: {} …", crate::verify::COMMAND));
    let checked = crate::verify::cargo_check(root)?;
    if checked.passed {
        journal::verified(root)?;
    }
    Ok(report::Verify {
        command: crate::verify::COMMAND.to_string(),
        passed: checked.passed,
        first_errors: checked.first_errors,
    })
}

pub(super) fn abort(printer: &Printer, root: &Path) -> Result<()> {
    let restored = journal::restore(root)?;
    printer.report(&AbortReport {
        aborted: true,
        had_journal: restored.had_journal,
        restored_files: restored.files,
    })
}

pub(super) fn guard_clean(
    root: &Path,
    allow_dirty: bool,
    printer: &Printer,
    what: &str,
) -> Result<()> {
    match git::dirty_paths(root)? {
        None => {
            printer.warn(format!(
                "{} is not in a git work tree: what `{what}` changes cannot be undone with git; it still writes all-or-nothing",
                root.display()
            ));
            Ok(())
        }
        Some(dirty) if dirty.is_empty() || allow_dirty => Ok(()),
        Some(dirty) => {
            let shown: Vec<&str> = dirty.iter().take(10).map(String::as_str).collect();
            let more = if dirty.len() > 10 {
                format!(" and {} more", dirty.len() - 10)
            } else {
                String::new()
            };
            Err(Error::new(format!(
                "the git work tree has uncommitted changes: {}{more}",
                shown.join(", ")
            ))
            .hint(format!("commit or stash them first, so what `{what}` changes can be reviewed and undone on its own"))
            .hint(format!("or pass --allow-dirty to {what} anyway")))
        }
    }
}

/// The service's files as the planner sees them.
pub(super) struct ServiceDisk<'a> {
    pub root: &'a Path,
}

impl Disk for ServiceDisk<'_> {
    fn read(&self, path: &str) -> Result<OnDisk> {
        let full = self.root.join(path);
        match std::fs::symlink_metadata(&full) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OnDisk::Missing),
            Err(e) => Err(Error::new(format!("cannot read {}: {e}", full.display()))),
            Ok(meta) if meta.is_file() => Ok(OnDisk::File(fs_err::read(&full)?)),
            Ok(_) => Ok(OnDisk::Other),
        }
    }

    fn list(&self, dir: &str) -> Result<Vec<String>> {
        let full = self.root.join(dir);
        if !full.is_dir() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let walk = walkdir::WalkDir::new(&full)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| {
                e.depth() == 0 || !matches!(e.file_name().to_str(), Some("target" | ".git"))
            });
        for entry in walk {
            let entry =
                entry.map_err(|e| Error::new(format!("cannot list {}: {e}", full.display())))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(self.root) else {
                continue;
            };
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
        out.sort();
        Ok(out)
    }
}
