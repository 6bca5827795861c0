//! The report of `cargo platform upgrade` (and of `upgrade --abort`): the plan, what was written,
//! and what is left for the team.

use std::io::{self, Write};

use serde::Serialize;

use crate::commands::ExitStatus;
use crate::manifest::{ComponentState, Manifest};
use crate::upgrade::plan;

#[derive(Debug, Clone, Serialize)]
pub struct UpgradeReport {
    pub name: String,
    /// The service root.
    pub path: String,
    pub template: String,
    /// The version the service was on.
    pub from: String,
    /// The target version.
    pub to: String,
    /// Every release stepped through, oldest first; empty when already on `to`.
    pub hops: Vec<String>,
    /// `--dry-run`: planned, nothing written.
    pub dry_run: bool,
    /// The files and platform.toml were written.
    pub applied: bool,
    pub outcome: Outcome,
    pub migrations: Vec<Migration>,
    /// One entry per file the plan looked at, sorted by path.
    pub files: Vec<FileChange>,
    /// Paths left in conflict (a subset of `files`).
    pub conflicts: Vec<String>,
    /// How conflicts are left: `markers` in the file or `reject` (`<file>.rej` beside it).
    pub conflict_style: ConflictStyle,
    /// Components this run ejected (`--eject`).
    pub ejected: Vec<String>,
    /// The commit made with `--commit`.
    pub commit: Option<String>,
    /// What the team must do by hand: breaks the releases declare for components this service
    /// ejected. Any entry makes the outcome `needs_attention`.
    pub actions: Vec<Action>,
    /// The result of `--verify`; `null` when not asked for.
    pub verify: Option<Verify>,
}

/// How the run ended (JSON: `up_to_date`, `planned`, `upgraded`, `needs_attention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Already on the target: nothing to upgrade.
    UpToDate,
    /// `--dry-run`: the plan only.
    Planned,
    /// Written; nothing left to do (exit 0).
    Upgraded,
    /// Written, with conflicts, actions or a failed verification left to the team (exit 3).
    NeedsAttention,
}

#[derive(Debug, Clone, Serialize)]
pub struct Migration {
    pub id: String,
    /// The release that ships it.
    pub version: String,
    pub description: String,
    pub required: bool,
    pub action: MigrationAction,
}

/// JSON: `apply`, `skip`, `already_applied`, `already_skipped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationAction {
    Apply,
    Skip,
    AlreadyApplied,
    AlreadySkipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: String,
    pub status: FileStatus,
    /// The path it was renamed from, else `null`.
    pub from: Option<String>,
    /// Why, in words (e.g. "deleted by you: stays deleted"), else `null`.
    pub detail: Option<String>,
}

/// What happens to one file (JSON: the lowercase name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    New,
    Unchanged,
    Updated,
    Merged,
    Conflict,
    Renamed,
    Deleted,
    Kept,
    Ejected,
    Excluded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictStyle {
    Markers,
    Reject,
}

/// A change the team must make by hand, declared by a release for one component.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// The release that declared the break.
    pub version: String,
    pub component: String,
    /// What changed in what core expects of the component.
    pub changed: String,
    /// What the team must do to its copy.
    pub action: String,
}

impl From<&plan::TeamAction> for Action {
    fn from(a: &plan::TeamAction) -> Self {
        Action {
            version: a.version.clone(),
            component: a.component.clone(),
            changed: a.changed.clone(),
            action: a.action.clone(),
        }
    }
}

/// `--verify`: `cargo check --all-targets` in the service after writing.
#[derive(Debug, Clone, Serialize)]
pub struct Verify {
    /// The command run, as a shell would show it.
    pub command: String,
    /// The check passed.
    pub passed: bool,
    /// The compiler's first error lines when it failed (empty when it passed).
    pub first_errors: Vec<String>,
}

/// The report of `upgrade --verify` run again after a failed check: the upgrade stays written
/// (its journal kept) until the check passes.
#[derive(Debug, Clone, Serialize)]
pub struct ReverifyReport {
    pub verify: Verify,
}

impl ReverifyReport {
    /// 3 while the check still fails, else 0.
    pub fn exit_status(&self) -> ExitStatus {
        match self.verify.passed {
            true => ExitStatus::Success,
            false => ExitStatus::NeedsAttention,
        }
    }
}

impl super::Report for ReverifyReport {
    const COMMAND: &'static str = "upgrade";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let v = &self.verify;
        if v.passed {
            return writeln!(
                out,
                "Verified: `{}` passed; the upgrade is kept.",
                v.command
            );
        }
        writeln!(out, "Verification failed: `{}`:", v.command)?;
        for e in &v.first_errors {
            writeln!(out, "  {e}")?;
        }
        writeln!(
            out,
            "The upgrade needs attention.\nnext: fix the errors, then run `cargo platform upgrade --verify` again\nto undo the whole upgrade instead: cargo platform upgrade --abort"
        )
    }
}

/// The report of `upgrade --abort`.
#[derive(Debug, Clone, Serialize)]
pub struct AbortReport {
    /// Always `true`: tells this shape from an upgrade's.
    pub aborted: bool,
    /// A journal was found (else only a staging area was removed).
    pub had_journal: bool,
    /// Files put back as they were.
    pub restored_files: usize,
}

/// The components `after` records as ejected that `before` did not: what this run ejected
/// (not one ejected earlier, each once however often `--eject` named it).
pub fn newly_ejected(before: &Manifest, after: &Manifest) -> Vec<String> {
    let ejected = |m: &Manifest, name: &str| {
        m.components
            .get(name)
            .is_some_and(|c| c.state == ComponentState::Ejected)
    };
    after
        .components
        .keys()
        .filter(|name| ejected(after, name) && !ejected(before, name))
        .cloned()
        .collect()
}

impl From<plan::MigrationAction> for MigrationAction {
    fn from(a: plan::MigrationAction) -> Self {
        match a {
            plan::MigrationAction::Apply => MigrationAction::Apply,
            plan::MigrationAction::Skip => MigrationAction::Skip,
            plan::MigrationAction::AlreadyApplied => MigrationAction::AlreadyApplied,
            plan::MigrationAction::AlreadySkipped => MigrationAction::AlreadySkipped,
        }
    }
}

impl From<plan::Status> for FileStatus {
    fn from(s: plan::Status) -> Self {
        match s {
            plan::Status::New => FileStatus::New,
            plan::Status::Unchanged => FileStatus::Unchanged,
            plan::Status::Updated => FileStatus::Updated,
            plan::Status::Merged => FileStatus::Merged,
            plan::Status::Conflict => FileStatus::Conflict,
            plan::Status::Renamed => FileStatus::Renamed,
            plan::Status::Deleted => FileStatus::Deleted,
            plan::Status::Kept => FileStatus::Kept,
            plan::Status::Ejected => FileStatus::Ejected,
            plan::Status::Excluded => FileStatus::Excluded,
        }
    }
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::New => "new",
            FileStatus::Unchanged => "unchanged",
            FileStatus::Updated => "updated",
            FileStatus::Merged => "merged",
            FileStatus::Conflict => "conflict",
            FileStatus::Renamed => "renamed",
            FileStatus::Deleted => "deleted",
            FileStatus::Kept => "kept",
            FileStatus::Ejected => "ejected",
            FileStatus::Excluded => "excluded",
        }
    }
}

impl UpgradeReport {
    /// The report of `plan`: its migrations and files, nothing applied yet (`outcome` is
    /// `up_to_date` or `planned`; [`UpgradeReport::applied`] records the write).
    pub fn new(
        name: &str,
        path: &str,
        template: &str,
        plan: &plan::Plan,
        conflict_style: ConflictStyle,
    ) -> Self {
        let mut files: Vec<FileChange> = plan
            .entries
            .iter()
            .map(|e| FileChange {
                path: e.path.clone(),
                status: e.status.into(),
                from: e.from.clone(),
                detail: e.detail.clone(),
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let conflicts = files
            .iter()
            .filter(|f| f.status == FileStatus::Conflict)
            .map(|f| f.path.clone())
            .collect();
        UpgradeReport {
            name: name.to_string(),
            path: path.to_string(),
            template: template.to_string(),
            from: plan.from.to_string(),
            to: plan.to.to_string(),
            hops: plan.hops.iter().map(ToString::to_string).collect(),
            dry_run: false,
            applied: false,
            outcome: if plan.hops.is_empty() {
                Outcome::UpToDate
            } else {
                Outcome::Planned
            },
            migrations: plan
                .migrations
                .iter()
                .map(|m| Migration {
                    id: m.id.clone(),
                    version: m.version.clone(),
                    description: m.description.clone(),
                    required: m.required,
                    action: m.action.into(),
                })
                .collect(),
            files,
            conflicts,
            conflict_style,
            ejected: Vec::new(),
            commit: None,
            actions: plan.actions.iter().map(Action::from).collect(),
            verify: None,
        }
    }

    /// Records that the plan was written, and sets the outcome from what is left to do.
    pub fn applied(&mut self) {
        self.applied = true;
        if self.hops.is_empty() {
            return;
        }
        let failed_verify = self.verify.as_ref().is_some_and(|v| !v.passed);
        self.outcome = if self.conflicts.is_empty() && self.actions.is_empty() && !failed_verify {
            Outcome::Upgraded
        } else {
            Outcome::NeedsAttention
        };
    }

    /// 3 when the team has something left to do, else 0.
    pub fn exit_status(&self) -> ExitStatus {
        match self.outcome {
            Outcome::NeedsAttention => ExitStatus::NeedsAttention,
            _ => ExitStatus::Success,
        }
    }

    fn plan_lines(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "Upgrade {}: {} {} → {} (through {})",
            self.name,
            self.template,
            self.from,
            self.to,
            self.hops.join(", ")
        )?;
        if !self.migrations.is_empty() {
            writeln!(out, "Migrations:")?;
            for m in &self.migrations {
                let action = match m.action {
                    MigrationAction::Apply => "apply",
                    MigrationAction::Skip => "skip (--skip)",
                    MigrationAction::AlreadyApplied => "already applied",
                    MigrationAction::AlreadySkipped => "skipped earlier",
                };
                let required = if m.required { ", required" } else { "" };
                writeln!(
                    out,
                    "  {action:<16} {} ({}{required}): {}",
                    m.id, m.version, m.description
                )?;
            }
        }
        file_lines(&self.files, true, out)
    }
}

/// The files of a plan and a summary by status: the one file listing of `upgrade` and `add`.
/// With `all` unset, unchanged files are counted in the summary, not listed.
pub(crate) fn file_lines(files: &[FileChange], all: bool, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "Files:")?;
    for f in files {
        if !all && f.status == FileStatus::Unchanged {
            continue;
        }
        let mut extra = Vec::new();
        if let Some(from) = &f.from {
            extra.push(format!("from {from}"));
        }
        if let Some(d) = &f.detail {
            extra.push(d.clone());
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!("  ({})", extra.join(": "))
        };
        writeln!(out, "  {:<10} {}{extra}", f.status.as_str(), f.path)?;
    }
    let count = |s: FileStatus| files.iter().filter(|f| f.status == s).count();
    let summary: Vec<String> = [
        FileStatus::New,
        FileStatus::Updated,
        FileStatus::Merged,
        FileStatus::Renamed,
        FileStatus::Deleted,
        FileStatus::Conflict,
        FileStatus::Kept,
        FileStatus::Ejected,
        FileStatus::Excluded,
        FileStatus::Unchanged,
    ]
    .into_iter()
    .filter(|s| count(*s) > 0)
    .map(|s| format!("{} {}", count(s), s.as_str()))
    .collect();
    writeln!(out, "Summary: {}", summary.join(", "))
}

impl super::Report for UpgradeReport {
    const COMMAND: &'static str = "upgrade";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.outcome == Outcome::UpToDate {
            writeln!(
                out,
                "{} is already on {} {}; nothing to do",
                self.name, self.template, self.to
            )?;
            if self.applied && !self.ejected.is_empty() {
                writeln!(out, "Ejected: {}", self.ejected.join(", "))?;
            }
            return Ok(());
        }
        self.plan_lines(out)?;
        if !self.actions.is_empty() {
            let components: std::collections::BTreeSet<&str> =
                self.actions.iter().map(|a| a.component.as_str()).collect();
            writeln!(
                out,
                "\nActions for your team ({} ejected component(s) no longer fit the new core):",
                components.len()
            )?;
            for a in &self.actions {
                writeln!(
                    out,
                    "  {} (changed in {}): {}",
                    a.component, a.version, a.changed
                )?;
                writeln!(out, "    do: {}", a.action)?;
            }
        }
        if self.dry_run {
            return writeln!(out, "\nDry run: nothing was written.");
        }
        if let Some(id) = &self.commit {
            writeln!(out, "Committed {}", &id[..12.min(id.len())])?;
        }
        if let Some(v) = &self.verify {
            if v.passed {
                writeln!(out, "\nVerified: `{}` passed.", v.command)?;
            } else {
                writeln!(out, "\nVerification failed: `{}`:", v.command)?;
                for e in &v.first_errors {
                    writeln!(out, "  {e}")?;
                }
            }
        }
        let upgraded = format!("Upgraded {} to {} {}", self.name, self.template, self.to);
        if self.outcome == Outcome::Upgraded {
            return writeln!(out, "\n{upgraded}.");
        }
        writeln!(out, "\n{upgraded}; it needs attention.")?;
        conflict_lines(&self.conflicts, self.conflict_style, out)?;
        if !self.actions.is_empty() {
            writeln!(
                out,
                "next: make the changes listed above in your copies of the ejected components, run `cargo check --all-targets`, then commit"
            )?;
        }
        if self.verify.as_ref().is_some_and(|v| !v.passed) {
            writeln!(
                out,
                "next: fix the errors, then run `cargo platform upgrade --verify` again: it checks again and keeps the upgrade when it passes"
            )?;
            // The journal is kept for exactly this: it restores the tree, Cargo.lock included.
            return writeln!(
                out,
                "to undo the whole upgrade instead: cargo platform upgrade --abort"
            );
        }
        // In the service's directory only: in a monorepo, work elsewhere may be uncommitted.
        let dir = shell_word(&self.path);
        writeln!(
            out,
            "to undo the whole upgrade instead: git -C {dir} checkout -- . && git -C {dir} clean -fd"
        )
    }
}

/// The conflicts left and what to do about them (nothing when there are none).
pub(crate) fn conflict_lines(
    conflicts: &[String],
    style: ConflictStyle,
    out: &mut dyn Write,
) -> io::Result<()> {
    if conflicts.is_empty() {
        return Ok(());
    }
    let n = conflicts.len();
    let remain = if n == 1 {
        "conflict remains"
    } else {
        "conflicts remain"
    };
    writeln!(out, "{n} {remain}: {}", conflicts.join(", "))?;
    writeln!(
        out,
        "next: {}",
        match style {
            ConflictStyle::Markers =>
                "resolve the <<<<<<< markers (and the `# CONFLICT (cargo-platform)` lines in TOML files), then commit",
            ConflictStyle::Reject =>
                "apply what you need from the .rej files, delete them, then commit",
        }
    )
}

/// `s` as one word for a POSIX shell: as it is when plain, else single-quoted.
pub(crate) fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl super::Report for AbortReport {
    const COMMAND: &'static str = "upgrade";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.had_journal {
            writeln!(
                out,
                "Aborted the interrupted upgrade: restored {} file(s); the tree is as it was before it.",
                self.restored_files
            )
        } else {
            writeln!(
                out,
                "The interrupted upgrade had not changed any file; its staging area was removed."
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Report;

    fn applied(
        actions: Vec<Action>,
        verify: Option<Verify>,
        conflicts: Vec<String>,
    ) -> UpgradeReport {
        let mut r = UpgradeReport {
            name: "orders".into(),
            path: "orders".into(),
            template: "service".into(),
            from: "1.0.0".into(),
            to: "2.0.0".into(),
            hops: vec!["2.0.0".into()],
            dry_run: false,
            applied: false,
            outcome: Outcome::Planned,
            migrations: Vec::new(),
            files: Vec::new(),
            conflicts,
            conflict_style: ConflictStyle::Markers,
            ejected: Vec::new(),
            commit: None,
            actions,
            verify,
        };
        r.applied();
        r
    }

    fn human(r: &UpgradeReport) -> String {
        let mut out = Vec::new();
        r.human(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_clean_upgrade_exits_0() {
        let r = applied(Vec::new(), None, Vec::new());
        assert_eq!(r.outcome, Outcome::Upgraded);
        assert_eq!(r.exit_status(), ExitStatus::Success);
        assert!(human(&r).ends_with("\nUpgraded orders to service 2.0.0.\n"));
    }

    #[test]
    fn conflicts_actions_or_a_failed_verify_need_attention() {
        let action = Action {
            version: "2.0.0".into(),
            component: "auth".into(),
            changed: "core reads auth.hs256_secret as a SecretString".into(),
            action: "call .expose_secret() in src/platform/auth/dev_token.rs".into(),
        };
        let failed = Verify {
            passed: false,
            command: "cargo check --all-targets".into(),
            first_errors: vec!["error[E0308]: mismatched types".into()],
        };
        for r in [
            applied(Vec::new(), None, vec!["src/main.rs".into()]),
            applied(vec![action.clone()], None, Vec::new()),
            applied(Vec::new(), Some(failed.clone()), Vec::new()),
        ] {
            assert_eq!(r.outcome, Outcome::NeedsAttention);
            assert_eq!(r.exit_status(), ExitStatus::NeedsAttention);
            let text = human(&r);
            assert!(
                text.contains("Upgraded orders to service 2.0.0; it needs attention.\n"),
                "{text}"
            );
            assert!(!text.contains("error:"), "{text}");
        }
        let text = human(&applied(vec![action], Some(failed), Vec::new()));
        assert!(text.contains("Actions for your team (1 ejected component(s) no longer fit the new core):\n  auth (changed in 2.0.0): core reads auth.hs256_secret as a SecretString\n    do: call .expose_secret() in src/platform/auth/dev_token.rs\n"), "{text}");
        assert!(
            text.contains(
                "next: make the changes listed above in your copies of the ejected components"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("to undo the whole upgrade instead: cargo platform upgrade --abort\n"),
            "a failed verify keeps the journal: {text}"
        );
        assert!(text.contains("Verification failed: `cargo check --all-targets`:\n  error[E0308]: mismatched types\n"), "{text}");
    }

    #[test]
    fn the_undo_hint_acts_on_the_service_directory_only() {
        // Run from a monorepo's root (`--path services/orders`), `git checkout -- .` would throw
        // away the team's work elsewhere, which the clean-tree check lets through.
        let mut r = applied(Vec::new(), None, vec!["src/main.rs".into()]);
        r.path = "services/orders".into();
        let text = human(&r);
        assert!(
            text.ends_with("to undo the whole upgrade instead: git -C services/orders checkout -- . && git -C services/orders clean -fd\n"),
            "{text}"
        );
        r.path = "/srv/my services/it's".into();
        let text = human(&r);
        assert!(
            text.contains("git -C '/srv/my services/it'\\''s' checkout -- ."),
            "{text}"
        );
    }

    #[test]
    fn the_json_carries_schema_command_and_every_field() {
        let mut out = Vec::new();
        crate::report::write_json(&applied(Vec::new(), None, Vec::new()), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["command"], "upgrade");
        assert_eq!(v["outcome"], "upgraded");
        assert_eq!(v["actions"], serde_json::json!([]));
        assert_eq!(v["verify"], serde_json::Value::Null);
        assert_eq!(v["conflict_style"], "markers");
    }
}
