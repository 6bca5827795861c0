//! The report of `cargo platform add`: the answers it changes, the plan (the same file listing
//! as `upgrade`'s), what was written, and what is left for the team.

use std::io::{self, Write};

use serde::Serialize;

use super::upgrade::{
    ConflictStyle, FileChange, FileStatus, conflict_lines, file_lines, shell_word,
};
use crate::commands::ExitStatus;
use crate::upgrade::plan;

#[derive(Debug, Clone, Serialize)]
pub struct AddReport {
    pub name: String,
    /// The service root.
    pub path: String,
    pub template: String,
    /// The template version the service is on (`add` never changes it).
    pub version: String,
    /// The component asked for.
    pub component: String,
    /// The answers this run changes, in question order (empty when nothing changes).
    pub set: Vec<SetAnswer>,
    /// `--dry-run`: planned, nothing written.
    pub dry_run: bool,
    /// The files and platform.toml were written.
    pub applied: bool,
    pub outcome: Outcome,
    /// Why nothing changes (outcome `unchanged`), else `null`.
    pub reason: Option<String>,
    /// One entry per file the plan looked at, sorted by path (empty when nothing changes).
    pub files: Vec<FileChange>,
    /// Paths left in conflict (a subset of `files`).
    pub conflicts: Vec<String>,
    /// How conflicts are left: `markers` in the file or `reject` (`<file>.rej` beside it).
    pub conflict_style: ConflictStyle,
    /// The commit made with `--commit`.
    pub commit: Option<String>,
}

/// One answer `add` changes: `from` the recorded answer (or the question's default), `to` the new
/// one; each a string, bool or integer as the question types it.
#[derive(Debug, Clone, Serialize)]
pub struct SetAnswer {
    pub key: String,
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

/// How the run ended (JSON: `unchanged`, `planned`, `added`, `needs_attention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing to add (already on, or the answers are already so): nothing written, exit 0.
    Unchanged,
    /// `--dry-run`: the plan only.
    Planned,
    /// Written; nothing left to do (exit 0).
    Added,
    /// Written, with conflicts left to the team (exit 3).
    NeedsAttention,
}

impl AddReport {
    /// A run that changes nothing, for `reason`.
    pub fn unchanged(
        name: &str,
        path: &str,
        template: &str,
        version: &str,
        component: &str,
        reason: String,
    ) -> Self {
        AddReport {
            name: name.to_string(),
            path: path.to_string(),
            template: template.to_string(),
            version: version.to_string(),
            component: component.to_string(),
            set: Vec::new(),
            dry_run: false,
            applied: false,
            outcome: Outcome::Unchanged,
            reason: Some(reason),
            files: Vec::new(),
            conflicts: Vec::new(),
            conflict_style: ConflictStyle::Markers,
            commit: None,
        }
    }

    /// The report of `plan`, nothing applied yet (outcome `planned`; [`AddReport::applied`]
    /// records the write).
    pub fn planned(
        unchanged: AddReport,
        set: Vec<SetAnswer>,
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
        AddReport {
            set,
            outcome: Outcome::Planned,
            reason: None,
            files,
            conflicts,
            conflict_style,
            ..unchanged
        }
    }

    /// Records that the plan was written, and sets the outcome from what is left to do.
    pub fn applied(&mut self) {
        self.applied = true;
        self.outcome = if self.conflicts.is_empty() {
            Outcome::Added
        } else {
            Outcome::NeedsAttention
        };
    }

    /// 3 when conflicts are left to the team, else 0.
    pub fn exit_status(&self) -> ExitStatus {
        match self.outcome {
            Outcome::NeedsAttention => ExitStatus::NeedsAttention,
            _ => ExitStatus::Success,
        }
    }

    fn set_words(&self) -> String {
        self.set
            .iter()
            .map(|s| format!("{} {} → {}", s.key, plain(&s.from), plain(&s.to)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A JSON answer as the user wrote it (`nats`, not `"nats"`).
fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl super::Report for AddReport {
    const COMMAND: &'static str = "add";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.outcome == Outcome::Unchanged {
            let reason = self.reason.as_deref().unwrap_or("nothing to add");
            return writeln!(out, "{}: {reason}; nothing written", self.name);
        }
        writeln!(
            out,
            "Add {} to {} ({} {}): {}",
            self.component,
            self.name,
            self.template,
            self.version,
            self.set_words()
        )?;
        file_lines(&self.files, false, out)?;
        if self.dry_run {
            return writeln!(out, "\nDry run: nothing was written.");
        }
        if let Some(id) = &self.commit {
            writeln!(out, "Committed {}", &id[..12.min(id.len())])?;
        }
        let added = format!(
            "Added {} to {} ({})",
            self.component,
            self.name,
            self.set_words()
        );
        if self.outcome == Outcome::Added {
            return writeln!(out, "\n{added}.");
        }
        writeln!(out, "\n{added}; it needs attention.")?;
        conflict_lines(&self.conflicts, self.conflict_style, out)?;
        let dir = shell_word(&self.path);
        writeln!(
            out,
            "to undo the whole change instead: git -C {dir} checkout -- . && git -C {dir} clean -fd"
        )
    }
}
