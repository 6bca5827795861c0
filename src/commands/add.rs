//! `cargo platform add`: turn a component, or a choice of one, on after creation.

use std::path::PathBuf;

use super::ExitStatus;
use super::upgrade::{ConflictStyle, ServiceDisk, abort, guard_clean, with_manifest};
use crate::error::Result;
use crate::report::add::{AddReport, SetAnswer};
use crate::report::upgrade as upgrade_report;
use crate::service::Service;
use crate::template::Catalogue;
use crate::template::answers::{self, Given};
use crate::ui::{Format, Printer};
use crate::upgrade::add::{self, Decision};
use crate::upgrade::plan;
use crate::{git, journal};

/// Turn a component, or a choice of one, on after the service was created.
///
/// Re-renders the service's own template version with the new answer and brings in exactly what
/// it enables — new files, Cargo.toml dependencies, config keys, the wiring in managed files —
/// through the upgrade machinery: a plan (`--dry-run`), 3-way merges into files the team edited,
/// an all-or-nothing write with a journal. platform.toml records the new answers and a
/// `[[history.adds]]` entry; the template version stays the same.
///
/// COMPONENT must be in the service's release (one that only a newer release has: upgrade first).
/// Without --set, a component switched off by a yes/no question is turned on; one with several
/// choices needs --set. Exit 0 done (or nothing to add); 3 conflicts remain (listed); 1 on
/// refusal or error with nothing changed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The component to turn on (`cargo platform templates` lists each release's components).
    #[arg(value_name = "COMPONENT", required_unless_present = "abort")]
    pub component: Option<String>,
    /// The answer that turns it on (repeatable), e.g. --set idempotency_store=postgres. KEY must
    /// be a question the component's files read: in the `when` that switches one of them, or in
    /// a file's path or content.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The service directory (default: the nearest directory with platform.toml, upwards).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Print the plan (per file: new, updated, merged, conflict, deleted, kept, …) and write
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Never touch paths matching this glob (repeatable), as `upgrade --exclude`: a service
    /// upgraded with --exclude needs the same here.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Add even when the git work tree has uncommitted changes.
    #[arg(long)]
    pub allow_dirty: bool,
    /// How to leave conflicts: git-style markers in the file, or `.rej` files beside it.
    #[arg(long, value_enum, default_value_t = ConflictStyle::Markers)]
    pub conflict: ConflictStyle,
    /// Commit the result (only when no conflict remains), with a message naming the answers.
    #[arg(long)]
    pub commit: bool,
    /// Roll back an interrupted `add` (or `upgrade`) from its journal, restoring the tree
    /// exactly; the same as `cargo platform upgrade --abort`.
    #[arg(long, conflicts_with_all = ["component", "set", "exclude", "dry_run", "commit"])]
    pub abort: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: Args) -> Result<ExitStatus> {
    let printer = Printer::new(args.format);
    let root = crate::service::find_root(args.path.as_deref())?;
    // Held until the run ends, as for `upgrade`: one change to a service at a time.
    let _lock = match args.dry_run {
        true => crate::lock::check_free(&root).map(|()| None)?,
        false => Some(crate::lock::service(&root)?),
    };
    if args.abort {
        abort(&printer, &root)?;
        return Ok(ExitStatus::Success);
    }
    let component = args
        .component
        .as_deref()
        .expect("clap requires COMPONENT unless --abort");
    journal::check_clear(&root)?;
    let given: Vec<Given> = args
        .set
        .iter()
        .map(|raw| answers::parse_set(raw))
        .collect::<Result<_>>()?;
    let service = Service::locate(Some(&root))?;
    let catalogue = Catalogue::load()?;
    let template = service.template(&catalogue)?;
    let manifest = &service.manifest;
    let mut report = AddReport::unchanged(
        &manifest.name,
        &root.display().to_string(),
        &template.name,
        &manifest.version.to_string(),
        component,
        String::new(),
    );
    let (answers, changed) = match add::decide(template, manifest, component, &given)? {
        Decision::Unchanged { reason } => {
            report.reason = Some(reason);
            printer.report(&report)?;
            return Ok(ExitStatus::Success);
        }
        Decision::Change { answers, changed } => (answers, changed),
    };
    let plan = add::plan(
        template,
        manifest,
        &ServiceDisk { root: &root },
        &add::Request {
            component,
            answers: &answers,
            changed: &changed,
        },
        &add::Options {
            conflict: match args.conflict {
                ConflictStyle::Markers => plan::ConflictStyle::Markers,
                ConflictStyle::Reject => plan::ConflictStyle::Reject,
            },
            exclude: args.exclude.clone(),
            today: crate::policy::today()?,
        },
    )?;
    let set = changed
        .iter()
        .map(|c| SetAnswer {
            key: c.key.clone(),
            from: c.from.to_json(),
            to: c.to.to_json(),
        })
        .collect();
    let mut report = AddReport::planned(
        report,
        set,
        &plan,
        match args.conflict {
            ConflictStyle::Markers => upgrade_report::ConflictStyle::Markers,
            ConflictStyle::Reject => upgrade_report::ConflictStyle::Reject,
        },
    );
    if args.dry_run {
        report.dry_run = true;
        printer.report(&report)?;
        return Ok(report.exit_status());
    }
    guard_clean(&root, args.allow_dirty, &printer, "add")?;
    let writes = with_manifest(&plan, &service)?;
    journal::apply(&root, &writes)?;
    if args.commit {
        if report.conflicts.is_empty() {
            let paths: Vec<String> = writes.iter().map(|w| w.path().to_string()).collect();
            let shown: Vec<String> = changed
                .iter()
                .map(|c| format!("{}={}", c.key, c.to))
                .collect();
            let message = format!(
                "Add {component} to {}: {}\n\nTemplate {} {}; applied by cargo-platform {}.",
                manifest.name,
                shown.join(", "),
                template.name,
                manifest.version,
                env!("CARGO_PKG_VERSION")
            );
            report.commit = Some(git::commit_paths(&root, &paths, &message)?.id);
        } else {
            printer.warn("not committing (--commit): resolve the conflicts first, then commit");
        }
    }
    report.applied();
    printer.report(&report)?;
    Ok(report.exit_status())
}
