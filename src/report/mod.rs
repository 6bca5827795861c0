//! What commands report: one typed struct per command, rendered as human text or as JSON from
//! the same value, so the two never disagree.
//!
//! Each report owns its data in plain types (strings, numbers, small enums) rather than borrowing
//! domain types, so its JSON shape is this module's contract and changes only on purpose. The
//! JSON is one object: `"schema"` (this module's [`SCHEMA`]), `"command"`, then the report's
//! fields. The fields are documented in golden-path.md, "Machine-readable output"; the tests in
//! `tests/cli_reports.rs` hold the documentation and the output to each other.

pub mod add;
pub mod campaign;
pub mod check;
pub mod fleet;
pub mod fleet_charts;
pub mod fleet_dashboard;
pub mod fleet_html;
pub mod fleet_report;
pub mod new;
pub mod pr_body;
pub mod status;
pub mod templates;
pub mod upgrade;

use std::io::{self, Write};

use serde::Serialize;

/// The version of every report's JSON shape. Adding a field keeps it; removing or renaming a
/// field, or changing its type or meaning, bumps it.
pub const SCHEMA: u32 = 1;

/// A command's report: serialisable as JSON, renderable as text for people.
pub trait Report: Serialize {
    /// The command that produced it (the JSON's `"command"`).
    const COMMAND: &'static str;

    /// Writes the report for people.
    fn human(&self, out: &mut dyn Write) -> io::Result<()>;
}

#[derive(Serialize)]
struct Envelope<'a, R> {
    schema: u32,
    command: &'static str,
    #[serde(flatten)]
    report: &'a R,
}

/// Writes `report` as one pretty-printed JSON document with its `schema` and `command`.
pub fn write_json<R: Report>(report: &R, out: &mut dyn Write) -> io::Result<()> {
    let envelope = Envelope {
        schema: SCHEMA,
        command: R::COMMAND,
        report,
    };
    serde_json::to_writer_pretty(&mut *out, &envelope).map_err(io::Error::from)?;
    writeln!(out)
}

/// `n thing` / `n things`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Who owns a platform file (JSON: `managed`, `seeded`, `structured`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileMode {
    Managed,
    Seeded,
    Structured,
}

impl From<crate::template::release::Mode> for FileMode {
    fn from(mode: crate::template::release::Mode) -> Self {
        use crate::template::release::Mode;
        match mode {
            Mode::Managed => FileMode::Managed,
            Mode::Seeded => FileMode::Seeded,
            Mode::Structured => FileMode::Structured,
        }
    }
}

impl FileMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FileMode::Managed => "managed",
            FileMode::Seeded => "seeded",
            FileMode::Structured => "structured",
        }
    }
}

/// A component's state in a service (JSON: `managed`, `ejected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    Managed,
    Ejected,
}

impl From<crate::manifest::ComponentState> for ComponentState {
    fn from(state: crate::manifest::ComponentState) -> Self {
        match state {
            crate::manifest::ComponentState::Managed => ComponentState::Managed,
            crate::manifest::ComponentState::Ejected => ComponentState::Ejected,
        }
    }
}

/// How much a policy finding matters (JSON: `failure`, `warning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Puts the service out of policy: `check` exits 4.
    Failure,
    /// Reported, does not fail.
    Warning,
}

/// One policy finding, as `check` prints it and `status` carries it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable: `out-of-support`, `pending-required-migration`, `deprecated`,
    /// `skipped-required-migration`.
    pub code: String,
    pub severity: Severity,
    pub message: String,
}

impl From<&crate::policy::Finding> for Finding {
    fn from(f: &crate::policy::Finding) -> Self {
        Finding {
            code: f.code.to_string(),
            severity: match f.severity {
                crate::policy::Severity::Failure => Severity::Failure,
                crate::policy::Severity::Warning => Severity::Warning,
            },
            message: f.message.clone(),
        }
    }
}
