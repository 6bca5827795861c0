//! `cargo platform upgrade`: walk a service from its template version to a newer one.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde_json::json;

use crate::error::{Error, ExitKind, Result};
use crate::service::Service;
use crate::template::Catalogue;
use crate::ui::{Format, Printer};
use crate::upgrade::plan::{self, Disk, OnDisk, Plan, Status, Write};
use crate::{git, journal, manifest};

/// Upgrade the service to a newer template version, never losing the team's edits.
///
/// Plans every hop from the service's version to the target, 3-way merges managed files (base =
/// the exact old render), applies structured TOML edits, and writes all-or-nothing with a journal.
/// Exit 0 clean; 3 when it needs attention: conflicts remain (listed), a release declared a break in
/// an ejected component (listed as actions for the team), or `--verify` failed; 1 on refusal or
/// error with nothing changed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service directory (default: the nearest directory with platform.toml, upwards).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Target template version (default: the newest).
    #[arg(long, value_name = "X.Y.Z")]
    pub to: Option<String>,
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
    /// Never touch paths matching this glob (repeatable).
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
    /// Roll back an interrupted upgrade from its journal, restoring the tree exactly (also an
    /// applied upgrade whose `--verify` failed).
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

pub fn run(args: Args) -> Result<()> {
    let printer = Printer::new(args.format);
    if args.abort {
        return abort(&printer, &crate::service::find_root(args.path.as_deref())?);
    }
    let root = crate::service::find_root(args.path.as_deref())?;
    if args.verify && journal::verify_pending(&root) {
        // The team fixed what the last `--verify` found: check again, keep it when it passes.
        let checked = verify(&printer, &root)?;
        printer.json(&json!({ "verify": verify_json(&checked) }));
        return match checked.passed {
            true => Ok(()),
            false => Err(verify_failed("the upgrade", &checked)),
        };
    }
    journal::check_clear(&root)?;
    let service = Service::locate(Some(&root))?;
    let catalogue = Catalogue::load()?;
    let template = service.template(&catalogue)?;
    let to = args
        .to
        .as_deref()
        .map(|v| template.release(v).map(|r| r.version.clone()))
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
        today: crate::policy::today()?.to_string(),
    };
    let disk = ServiceDisk { root: &root };
    let plan = plan::plan(template, &service.manifest, &disk, &opts)?;
    let name = &service.manifest.name;

    if plan.is_noop() {
        printer.line(format!(
            "{name} is already on {} {}; nothing to do",
            template.name, plan.to
        ));
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
            printer.line(format!("Ejected: {}", args.eject.join(", ")));
        }
        printer.json(&plan_json(&plan, &template.name, args.dry_run, false));
        return Ok(());
    }
    if args.dry_run {
        print_plan(&printer, &plan, name, &template.name);
        print_actions(&printer, &plan.actions);
        printer.line("\nDry run: nothing was written.");
        printer.json(&plan_json(&plan, &template.name, true, false));
        return Ok(());
    }
    guard_clean(&root, args.allow_dirty, &printer)?;

    let manifest_text = plan.manifest.to_toml(Some(&service.manifest_text))?;
    let mut writes = plan.writes.clone();
    writes.push(Write::Put {
        path: manifest::FILE_NAME.to_string(),
        contents: manifest_text.into_bytes(),
    });
    if args.verify {
        journal::apply_unverified(&root, &writes)?;
    } else {
        journal::apply(&root, &writes)?;
    }

    print_plan(&printer, &plan, name, &template.name);
    print_actions(&printer, &plan.actions);
    let checked = args.verify.then(|| verify(&printer, &root)).transpose()?;
    let verify_failed_ = checked.as_ref().is_some_and(|c| !c.passed);
    let conflicts = plan.conflicts();
    let mut committed = None;
    if args.commit {
        if verify_failed_ {
            printer.warn("not committing (--commit): `cargo check --all-targets` fails");
        } else if !plan.actions.is_empty() {
            printer.warn("not committing (--commit): make the changes listed for your ejected components first, then commit");
        } else if conflicts.is_empty() {
            let paths: Vec<String> = writes.iter().map(|w| w.path().to_string()).collect();
            let message = format!(
                "Upgrade {name}: template {} {} -> {}\n\nApplied by cargo-platform {}.",
                template.name,
                plan.from,
                plan.to,
                env!("CARGO_PKG_VERSION")
            );
            let commit = git::commit_paths(&root, &paths, &message)?;
            printer.line(format!("Committed {}", &commit.id[..12]));
            committed = Some(commit.id);
        } else {
            printer.warn("not committing (--commit): resolve the conflicts first, then commit");
        }
    }
    printer.json(&{
        let mut v = plan_json(&plan, &template.name, false, true);
        v["commit"] = json!(committed);
        v["verify"] = checked.as_ref().map(verify_json).unwrap_or_default();
        v
    });
    if let Some(checked) = checked.filter(|c| !c.passed) {
        let what = format!("upgraded {name} to {} {}", template.name, plan.to);
        return Err(verify_failed(&what, &checked));
    }
    if conflicts.is_empty() && plan.actions.is_empty() {
        printer.line(format!(
            "\nUpgraded {name} to {} {}.",
            template.name, plan.to
        ));
        return Ok(());
    }
    if conflicts.is_empty() {
        return Err(needs_actions(name, &template.name, &plan));
    }
    let list: Vec<String> = conflicts.iter().map(|e| e.path.clone()).collect();
    Err(Error::new(format!(
        "upgraded {name} to {} {}, but {} conflict(s) remain: {}",
        template.name,
        plan.to,
        list.len(),
        list.join(", ")
    ))
    .with_kind(ExitKind::Conflicts)
    .hint(match args.conflict {
        ConflictStyle::Markers => "resolve the <<<<<<< markers (and the `# CONFLICT (cargo-platform)` lines in TOML files), then commit",
        ConflictStyle::Reject => "apply what you need from the .rej files, delete them, then commit",
    })
    .hint("to undo the whole upgrade instead: git checkout -- . (and remove new files with git clean)"))
}

/// `--verify`: `cargo check --all-targets` in the service. A pass drops the journal; after a
/// failure it stays, for `--abort`.
fn verify(printer: &Printer, root: &Path) -> Result<crate::verify::Checked> {
    printer.note(format!("Verifying: {} …", crate::verify::COMMAND));
    let checked = crate::verify::cargo_check(root)?;
    if checked.passed {
        journal::verified(root)?;
        printer.line(format!("Verified: `{}` passed.", crate::verify::COMMAND));
    }
    Ok(checked)
}

fn verify_json(checked: &crate::verify::Checked) -> serde_json::Value {
    json!({
        "command": crate::verify::COMMAND,
        "passed": checked.passed,
        "first_errors": checked.first_errors,
    })
}

/// Exit 3: the upgrade is written, the check fails, the journal is kept.
fn verify_failed(what: &str, checked: &crate::verify::Checked) -> Error {
    let mut err = Error::new(format!(
        "{what}, but it needs attention: `{}` fails:\n  {}",
        crate::verify::COMMAND,
        checked.first_errors.join("\n  ")
    ))
    .with_kind(ExitKind::Conflicts)
    .hint("fix the errors, then run `cargo platform upgrade --verify` again: it checks again and keeps the upgrade when it passes");
    err = err.hint("or run `cargo platform upgrade --abort` to roll the upgrade back exactly");
    err
}

/// Exit 3 for an upgrade whose ejected components need the team's hands.
fn needs_actions(name: &str, template: &str, plan: &Plan) -> Error {
    let components: std::collections::BTreeSet<&str> =
        plan.actions.iter().map(|a| a.component.as_str()).collect();
    Error::new(format!(
        "upgraded {name} to {template} {}, but it needs attention: {} action(s) listed above for ejected component(s) {}",
        plan.to,
        plan.actions.len(),
        components.into_iter().collect::<Vec<_>>().join(", ")
    ))
    .with_kind(ExitKind::Conflicts)
    .hint("make the listed changes in your copies of the ejected components, run `cargo check --all-targets`, then commit")
}

/// The breaks declared for ejected components: what changed and what the team must do.
fn print_actions(printer: &Printer, actions: &[plan::TeamAction]) {
    if actions.is_empty() {
        return;
    }
    let mut lines = vec![format!(
        "\nActions for your team ({} ejected component(s) no longer fit the new core):",
        actions
            .iter()
            .map(|a| a.component.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    )];
    for a in actions {
        lines.push(format!(
            "  {} (changed in {}): {}",
            a.component, a.version, a.changed
        ));
        lines.push(format!("    do: {}", a.action));
    }
    printer.line(lines.join("\n"));
}

fn abort(printer: &Printer, root: &Path) -> Result<()> {
    let restored = journal::restore(root)?;
    if restored.had_journal {
        printer.line(format!(
            "Aborted the interrupted upgrade: restored {} file(s); the tree is as it was before it.",
            restored.files
        ));
    } else {
        printer.line(
            "The interrupted upgrade had not changed any file; its staging area was removed.",
        );
    }
    printer.json(&json!({ "aborted": true, "restored_files": restored.files }));
    Ok(())
}

fn guard_clean(root: &Path, allow_dirty: bool, printer: &Printer) -> Result<()> {
    match git::dirty_paths(root)? {
        None => {
            printer.warn(format!(
                "{} is not in a git work tree: the upgrade cannot be undone with git; it still writes all-or-nothing",
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
            .hint("commit or stash them first, so the upgrade's changes can be reviewed and undone on their own")
            .hint("or pass --allow-dirty to upgrade anyway"))
        }
    }
}

fn print_plan(printer: &Printer, plan: &Plan, name: &str, template: &str) {
    // One write for the whole report rather than one per line.
    let mut lines: Vec<String> = Vec::new();
    let hops: Vec<String> = plan.hops.iter().map(|v| v.to_string()).collect();
    lines.push(format!(
        "Upgrade {name}: {template} {} → {} (through {})",
        plan.from,
        plan.to,
        hops.join(", ")
    ));
    if !plan.migrations.is_empty() {
        lines.push("Migrations:".to_string());
        for m in &plan.migrations {
            let action = match m.action {
                plan::MigrationAction::Apply => "apply",
                plan::MigrationAction::Skip => "skip (--skip)",
                plan::MigrationAction::AlreadyApplied => "already applied",
                plan::MigrationAction::AlreadySkipped => "skipped earlier",
            };
            let required = if m.required { ", required" } else { "" };
            lines.push(format!(
                "  {action:<16} {} ({}{required}): {}",
                m.id, m.version, m.description
            ));
        }
    }
    lines.push("Files:".to_string());
    let mut entries: Vec<&plan::Entry> = plan.entries.iter().collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    for e in entries {
        let mut extra = Vec::new();
        if let Some(from) = &e.from {
            extra.push(format!("from {from}"));
        }
        if let Some(d) = &e.detail {
            extra.push(d.clone());
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!("  ({})", extra.join(": "))
        };
        lines.push(format!("  {:<10} {}{extra}", e.status.as_str(), e.path));
    }
    let count = |s: Status| plan.entries.iter().filter(|e| e.status == s).count();
    let summary: Vec<String> = [
        Status::New,
        Status::Updated,
        Status::Merged,
        Status::Renamed,
        Status::Deleted,
        Status::Conflict,
        Status::Kept,
        Status::Ejected,
        Status::Excluded,
        Status::Unchanged,
    ]
    .into_iter()
    .filter(|s| count(*s) > 0)
    .map(|s| format!("{} {}", count(s), s.as_str()))
    .collect();
    lines.push(format!("Summary: {}", summary.join(", ")));
    printer.line(lines.join("\n"));
}

fn plan_json(plan: &Plan, template: &str, dry_run: bool, applied: bool) -> serde_json::Value {
    json!({
        "template": template,
        "from": plan.from.to_string(),
        "to": plan.to.to_string(),
        "hops": plan.hops.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        "dry_run": dry_run,
        "applied": applied,
        "migrations": plan.migrations,
        "files": plan.entries,
        "conflicts": plan.conflicts().iter().map(|e| e.path.clone()).collect::<Vec<_>>(),
        "actions": plan.actions,
    })
}

/// The service's files as the planner sees them.
struct ServiceDisk<'a> {
    root: &'a Path,
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
        let Ok(entries) = std::fs::read_dir(&full) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                out.push(if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                });
            }
        }
        out.sort();
        Ok(out)
    }
}
