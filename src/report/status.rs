//! The report of `cargo platform status`: where one service stands. The fleet reads it, so it
//! carries everything the human text shows.

use std::io::{self, Write};

use serde::Serialize;

use super::{ComponentState, FileMode, Finding, Severity};
use crate::manifest::{ComponentRecord, History, Source};
use crate::policy::{
    self, Change, LocalEdit, PendingMigration, SkippedMigration, SupportState, SupportWindow,
};

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The service's name (`[platform] name`).
    pub name: String,
    /// The service root, as found or given with `--path`.
    pub path: String,
    /// The `owner` answer (the team), if the template asks it.
    pub owner: Option<String>,
    pub template: String,
    /// The template version the service is on.
    pub version: String,
    /// The newest version this tool embeds.
    pub newest: String,
    pub up_to_date: bool,
    pub releases_behind: usize,
    /// The cargo-platform version that last wrote platform.toml.
    pub tool_version: String,
    /// An upgrade's journal is present (live or interrupted): the rest may describe a
    /// half-written tree.
    pub upgrade_in_flight: bool,
    /// Whether another run is changing the service right now, or an upgrade was cut off.
    pub change: InProgress,
    /// The day the report was made (`CARGO_PLATFORM_TODAY` overrides it).
    pub today: String,
    pub support: Support,
    /// When the service was created and last upgraded, from platform.toml's `[history]`.
    pub history: HistorySummary,
    pub pending_migrations: Vec<Pending>,
    pub skipped_migrations: Vec<Skipped>,
    /// Every component of the service and its state, ejected ones included.
    pub components: Vec<Component>,
    pub ejected: Vec<Ejected>,
    pub local_edits: Vec<Edit>,
    pub policy: Policy,
}

/// The manifest's history, summed up (`null`: unknown, never invented).
#[derive(Debug, Clone, Serialize)]
pub struct HistorySummary {
    /// The creation date is known (recorded by `new`, or recovered from git).
    pub known: bool,
    pub created: Option<String>,
    /// The date of the newest upgrade recorded, `null` when none is.
    pub last_upgraded: Option<String>,
    /// Upgrades recorded.
    pub upgrades: usize,
    /// Some of it was recovered from the git history of a schema-1 platform.toml.
    pub recovered_from_git: bool,
    /// Every known upgrade, oldest first (what `fleet report --from` reads).
    pub upgrade_entries: Vec<UpgradeEntry>,
}

/// One upgrade of the history.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeEntry {
    pub date: String,
    pub from: String,
    pub to: String,
    /// Files written with nothing to resolve, merged cleanly, left in conflict; `null` when
    /// unknown (recovered from git).
    pub files: Option<UpgradeFiles>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpgradeFiles {
    pub updated: usize,
    pub merged: usize,
    pub conflicts: usize,
}

impl From<&History> for HistorySummary {
    fn from(h: &History) -> Self {
        HistorySummary {
            known: h.created.is_some(),
            created: h.created.as_ref().map(|c| c.date.to_string()),
            last_upgraded: h.last_upgraded().map(|d| d.to_string()),
            upgrades: h.upgrades.len(),
            recovered_from_git: h.created.as_ref().is_some_and(|c| c.source == Source::Git)
                || h.upgrades.iter().any(|u| u.source == Source::Git),
            upgrade_entries: h
                .upgrades
                .iter()
                .map(|u| UpgradeEntry {
                    date: u.date.to_string(),
                    from: u.from.to_string(),
                    to: u.to.to_string(),
                    files: u.files.map(|f| UpgradeFiles {
                        updated: f.updated,
                        merged: f.merged,
                        conflicts: f.conflicts,
                    }),
                })
                .collect(),
        }
    }
}

impl HistorySummary {
    fn line(&self) -> String {
        let created = match &self.created {
            Some(d) => format!("created {d}"),
            None => "created: unknown".to_string(),
        };
        let upgraded = match &self.last_upgraded {
            Some(d) => format!(
                "last upgraded {d} ({})",
                super::count(self.upgrades, "upgrade", "upgrades")
            ),
            None => "never upgraded".to_string(),
        };
        let git = if self.recovered_from_git {
            " (recovered from git)"
        } else {
            ""
        };
        format!("{created}, {upgraded}{git}")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Support {
    pub state: SupportStatus,
    pub deprecated: Option<String>,
    pub end_of_support: Option<String>,
    /// Days from `today` to the end of support; negative once past it.
    pub days_left: Option<i32>,
}

/// Where the version stands in its support window (JSON: `supported`, `deprecated`,
/// `end_of_support`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportStatus {
    Supported,
    Deprecated,
    EndOfSupport,
}

/// How a platform file differs from what the platform last wrote (JSON: `edited`, `deleted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EditChange {
    Edited,
    Deleted,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    pub id: String,
    pub version: String,
    pub required: bool,
    pub description: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub id: String,
    pub date: String,
    pub version: Option<String>,
    pub required: Option<bool>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Component {
    pub name: String,
    pub state: ComponentState,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ejected {
    pub component: String,
    pub reason: Option<String>,
    pub date: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Edit {
    pub path: String,
    pub component: String,
    /// `managed` or `structured` (seeded files are the team's and never listed).
    pub mode: FileMode,
    pub change: EditChange,
}

#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    /// No failing finding: `check` would exit 0.
    pub ok: bool,
    pub findings: Vec<Finding>,
}

impl From<&SupportWindow> for Support {
    fn from(w: &SupportWindow) -> Self {
        Support {
            state: match w.state {
                SupportState::Supported => SupportStatus::Supported,
                SupportState::Deprecated => SupportStatus::Deprecated,
                SupportState::EndOfSupport => SupportStatus::EndOfSupport,
            },
            deprecated: w.deprecated.map(|d| d.to_string()),
            end_of_support: w.end_of_support.map(|d| d.to_string()),
            days_left: w.days_left(),
        }
    }
}

impl From<&PendingMigration> for Pending {
    fn from(p: &PendingMigration) -> Self {
        Pending {
            id: p.id.clone(),
            version: p.version.to_string(),
            required: p.required,
            description: p.description.clone(),
        }
    }
}

impl From<&SkippedMigration> for Skipped {
    fn from(s: &SkippedMigration) -> Self {
        Skipped {
            id: s.id.clone(),
            date: s.date.to_string(),
            version: s.version.as_ref().map(ToString::to_string),
            required: s.required,
            description: s.description.clone(),
        }
    }
}

impl Component {
    pub fn new(name: &str, record: &ComponentRecord) -> Self {
        Component {
            name: name.to_string(),
            state: record.state.into(),
        }
    }
}

impl Ejected {
    pub fn new(name: &str, record: &ComponentRecord) -> Self {
        Ejected {
            component: name.to_string(),
            reason: record.reason.clone(),
            date: record.date.map(|d| d.to_string()),
        }
    }
}

impl From<&LocalEdit> for Edit {
    fn from(e: &LocalEdit) -> Self {
        Edit {
            path: e.path.clone(),
            component: e.component.clone(),
            mode: e.mode.into(),
            change: match e.change {
                Change::Edited => EditChange::Edited,
                Change::Deleted => EditChange::Deleted,
            },
        }
    }
}

impl Policy {
    pub fn new(findings: &[policy::Finding]) -> Self {
        let findings: Vec<Finding> = findings.iter().map(Finding::from).collect();
        Policy {
            ok: !findings.iter().any(|f| f.severity == Severity::Failure),
            findings,
        }
    }
}

impl super::Report for StatusReport {
    const COMMAND: &'static str = "status";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let upgrade = if self.up_to_date {
            "newest".to_string()
        } else {
            format!(
                "newest is {}, {} behind: cargo platform upgrade",
                self.newest,
                super::count(self.releases_behind, "release", "releases")
            )
        };
        writeln!(
            out,
            "{}: template {} {} ({upgrade})",
            self.name, self.template, self.version
        )?;
        writeln!(out, "support: {}", self.support.line())?;
        writeln!(out, "history: {}", self.history.line())?;

        if self.pending_migrations.is_empty() {
            writeln!(out, "pending migrations: none")?;
        } else {
            writeln!(out, "pending migrations: {}", self.pending_migrations.len())?;
            for p in &self.pending_migrations {
                let required = if p.required { ", required" } else { "" };
                writeln!(
                    out,
                    "  {} ({}{required}): {}",
                    p.id, p.version, p.description
                )?;
            }
        }
        if !self.skipped_migrations.is_empty() {
            writeln!(out, "skipped migrations: {}", self.skipped_migrations.len())?;
            for s in &self.skipped_migrations {
                let mut about = Vec::new();
                if let Some(v) = &s.version {
                    about.push(v.clone());
                }
                if s.required == Some(true) {
                    about.push("required".into());
                }
                about.push(format!("skipped on {}", s.date));
                let description = s
                    .description
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                writeln!(out, "  {} ({}){description}", s.id, about.join(", "))?;
            }
        }

        if self.ejected.is_empty() {
            writeln!(out, "ejected components: none")?;
        } else {
            writeln!(
                out,
                "ejected components (off the golden path): {}",
                self.ejected.len()
            )?;
            for e in &self.ejected {
                let date = e
                    .date
                    .as_deref()
                    .map(|d| format!(" on {d}"))
                    .unwrap_or_default();
                let reason = e.reason.as_deref().unwrap_or("no reason recorded");
                writeln!(out, "  {}: ejected{date} — {reason}", e.component)?;
            }
        }

        if self.local_edits.is_empty() {
            writeln!(out, "local edits to platform files: none")?;
        } else {
            writeln!(
                out,
                "local edits to platform files: {}",
                self.local_edits.len()
            )?;
            for e in &self.local_edits {
                let change = match e.change {
                    EditChange::Edited => "edited",
                    EditChange::Deleted => "deleted locally",
                };
                writeln!(
                    out,
                    "  {change:<15}  {} ({}, {})",
                    e.path,
                    e.component,
                    e.mode.as_str()
                )?;
            }
        }
        Ok(())
    }
}

impl Support {
    fn line(&self) -> String {
        let days = |n: i32| {
            if n.abs() == 1 {
                format!("{n} day")
            } else {
                format!("{n} days")
            }
        };
        let until = match (&self.end_of_support, self.days_left) {
            (Some(end), Some(left)) => format!("supported until {end} ({} left)", days(left)),
            _ => "no end of support announced".to_string(),
        };
        match (
            self.state,
            &self.deprecated,
            &self.end_of_support,
            self.days_left,
        ) {
            (SupportStatus::EndOfSupport, _, Some(end), Some(left)) => format!(
                "OUT OF SUPPORT: its last supported day was {end} ({} ago); `cargo platform check` fails",
                days(-left)
            ),
            (SupportStatus::Deprecated, Some(since), _, _) => {
                format!("deprecated since {since}; {until}")
            }
            (_, Some(from), _, _) => format!("supported; deprecated from {from}, {until}"),
            _ => format!("supported; {until}"),
        }
    }
}

/// Another run's change to the service, as `status` found it.
#[derive(Debug, Clone, Serialize)]
pub struct InProgress {
    /// `none`; `upgrading` (an upgrade is writing, its process alive); `changing` (another run
    /// holds the service's lock); `interrupted` (an upgrade's journal that no live process
    /// holds: run `cargo platform upgrade --abort`); `verify_pending` (an upgrade applied in full
    /// whose `--verify` failed: fix and run `upgrade --verify` again, or `--abort`).
    pub state: &'static str,
    /// The pid of the run holding the service's lock, when one does and it recorded its pid.
    pub pid: Option<u32>,
}

impl From<&crate::service::InFlight> for InProgress {
    fn from(in_flight: &crate::service::InFlight) -> Self {
        use crate::service::InFlight;
        let (state, pid) = match in_flight {
            InFlight::No => ("none", None),
            InFlight::Upgrading(h) => ("upgrading", h.pid),
            InFlight::Changing(h) => ("changing", h.pid),
            InFlight::Interrupted => ("interrupted", None),
            InFlight::VerifyPending => ("verify_pending", None),
        };
        InProgress { state, pid }
    }
}
