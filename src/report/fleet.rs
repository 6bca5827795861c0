//! The reports of `cargo platform fleet status` and `fleet check`: where every service of the
//! fleet stands, and the places that could not be read with their reason.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::status::{Ejected, Policy, StatusReport, Support, SupportStatus};
use super::{Finding, Severity};

#[derive(Debug, Clone, Serialize)]
pub struct FleetStatusReport {
    /// The day the report was made (`CARGO_PLATFORM_TODAY` overrides it).
    pub today: String,
    pub summary: Summary,
    /// In location order.
    pub services: Vec<FleetService>,
    /// Places that were not reported, with why; any makes the exit code 1.
    pub skipped: Vec<SkippedEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub services: usize,
    pub out_of_policy: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetService {
    pub name: String,
    /// The service directory, or `REPO@REF[:DIR]` when read from a git ref.
    pub location: String,
    /// The git ref it was read from; `null`: the work tree.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// The fleet file's `team`, else the service's `owner` answer.
    pub team: Option<String>,
    pub template: String,
    pub version: String,
    pub newest: String,
    pub releases_behind: usize,
    /// Days since the newest release (which it lacks) came out; `null` when on the newest.
    pub days_since_newest_release: Option<i32>,
    pub support: Support,
    pub pending_required_migrations: Vec<String>,
    pub ejected: Vec<Ejected>,
    pub local_edits: EditSummary,
    /// The day it was created (the manifest's history); `null`: unknown.
    pub created: Option<String>,
    /// The day of its latest upgrade; `null`: never upgraded, or unknown.
    pub last_upgraded: Option<String>,
    pub upgrade_in_flight: bool,
    /// What `check` says of it.
    pub policy: Policy,
}

#[derive(Debug, Clone, Serialize)]
pub struct EditSummary {
    pub count: usize,
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedEntry {
    pub location: String,
    pub reason: String,
}

impl FleetService {
    /// The fleet's row for a service whose `status` is `status`.
    pub fn new(
        status: StatusReport,
        reference: Option<String>,
        team: Option<String>,
        days_since_newest_release: Option<i32>,
    ) -> Self {
        FleetService {
            name: status.name,
            location: status.path,
            reference,
            team,
            template: status.template,
            version: status.version,
            newest: status.newest,
            releases_behind: status.releases_behind,
            days_since_newest_release,
            support: status.support,
            pending_required_migrations: status
                .pending_migrations
                .iter()
                .filter(|p| p.required)
                .map(|p| p.id.clone())
                .collect(),
            ejected: status.ejected,
            local_edits: EditSummary {
                count: status.local_edits.len(),
                paths: status.local_edits.into_iter().map(|e| e.path).collect(),
            },
            created: status.history.created,
            last_upgraded: status.history.last_upgraded,
            upgrade_in_flight: status.upgrade_in_flight,
            policy: status.policy,
        }
    }
}

impl FleetStatusReport {
    pub fn new(today: String, services: Vec<FleetService>, skipped: Vec<SkippedEntry>) -> Self {
        FleetStatusReport {
            today,
            summary: Summary {
                services: services.len(),
                out_of_policy: services.iter().filter(|s| !s.policy.ok).count(),
                skipped: skipped.len(),
            },
            services,
            skipped,
        }
    }

    /// One CSV row per service, then one per skipped place (RFC 4180, header first).
    pub fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        const HEADER: [&str; 20] = [
            "status",
            "name",
            "location",
            "ref",
            "team",
            "template",
            "version",
            "newest",
            "releases_behind",
            "days_since_newest_release",
            "support",
            "end_of_support",
            "pending_required_migrations",
            "ejected",
            "local_edits",
            "local_edit_paths",
            "created",
            "last_upgraded",
            "findings",
            "reason",
        ];
        // The csv crate quotes only where RFC 4180 needs it; records end in CRLF as it says.
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        w.write_record(HEADER).map_err(io::Error::other)?;
        // A list in a cell is a JSON array: a `;` or `,` inside an item (an ejection's reason
        // is free text) cannot be confused with the next item.
        let list = |items: &[String]| serde_json::Value::from(items).to_string();
        for s in &self.services {
            let ejected = serde_json::Value::Array(
                s.ejected
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "component": e.component,
                            "date": e.date,
                            "reason": e.reason,
                        })
                    })
                    .collect(),
            );
            let findings: Vec<String> = s.policy.findings.iter().map(|f| f.code.clone()).collect();
            w.write_record([
                if s.policy.ok { "ok" } else { "out_of_policy" }.to_string(),
                s.name.clone(),
                s.location.clone(),
                s.reference.clone().unwrap_or_default(),
                s.team.clone().unwrap_or_default(),
                s.template.clone(),
                s.version.clone(),
                s.newest.clone(),
                s.releases_behind.to_string(),
                s.days_since_newest_release
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                s.support.state_str().to_string(),
                s.support.end_of_support.clone().unwrap_or_default(),
                list(&s.pending_required_migrations),
                ejected.to_string(),
                s.local_edits.count.to_string(),
                list(&s.local_edits.paths),
                s.created.clone().unwrap_or_default(),
                s.last_upgraded.clone().unwrap_or_default(),
                list(&findings),
                String::new(),
            ])
            .map_err(io::Error::other)?;
        }
        for k in &self.skipped {
            let mut row = vec![String::new(); HEADER.len()];
            row[0] = "skipped".into();
            row[2] = k.location.clone();
            row[HEADER.len() - 1] = k.reason.clone();
            w.write_record(&row).map_err(io::Error::other)?;
        }
        w.flush()
    }
}

impl Support {
    fn state_str(&self) -> &'static str {
        match self.state {
            SupportStatus::Supported => "supported",
            SupportStatus::Deprecated => "deprecated",
            SupportStatus::EndOfSupport => "end_of_support",
        }
    }
}

impl super::Report for FleetStatusReport {
    const COMMAND: &'static str = "fleet status";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        for s in &self.services {
            let team = s.team.as_deref().unwrap_or("no team");
            writeln!(out, "{} ({team}) — {}", s.name, s.location)?;
            let behind = if s.releases_behind == 0 {
                "newest".to_string()
            } else {
                let days = s
                    .days_since_newest_release
                    .map(|d| {
                        let d = usize::try_from(d).unwrap_or(0);
                        format!(" (released {} ago)", super::count(d, "day", "days"))
                    })
                    .unwrap_or_default();
                format!(
                    "{} behind {}{days}",
                    super::count(s.releases_behind, "release", "releases"),
                    s.newest
                )
            };
            writeln!(out, "  {} {}: {behind}", s.template, s.version)?;
            let end = match (&s.support.end_of_support, s.support.days_left) {
                (Some(end), Some(left)) if left < 0 => format!(", ended {end}"),
                (Some(end), _) => format!(", until {end}"),
                _ => String::new(),
            };
            writeln!(out, "  support: {}{end}", s.support.state_str())?;
            if !s.pending_required_migrations.is_empty() {
                writeln!(
                    out,
                    "  pending required migrations: {}",
                    s.pending_required_migrations.join(", ")
                )?;
            }
            for e in &s.ejected {
                let date = e
                    .date
                    .as_deref()
                    .map(|d| format!(" on {d}"))
                    .unwrap_or_default();
                let reason = e.reason.as_deref().unwrap_or("no reason recorded");
                writeln!(out, "  ejected {}{date} — {reason}", e.component)?;
            }
            if s.local_edits.count > 0 {
                writeln!(
                    out,
                    "  local edits to platform files: {} ({})",
                    s.local_edits.count,
                    s.local_edits.paths.join(", ")
                )?;
            }
            let created = match &s.created {
                Some(d) => format!("created {d}"),
                None => "created: unknown".to_string(),
            };
            let upgraded = match &s.last_upgraded {
                Some(d) => format!("last upgraded {d}"),
                None => "not upgraded".to_string(),
            };
            writeln!(out, "  history: {created}, {upgraded}")?;
            if s.upgrade_in_flight {
                writeln!(out, "  an interrupted upgrade's journal is present")?;
            }
            let verdict = if s.policy.ok {
                "ok".to_string()
            } else {
                let codes: Vec<&str> = s
                    .policy
                    .findings
                    .iter()
                    .filter(|f| f.severity == Severity::Failure)
                    .map(|f| f.code.as_str())
                    .collect();
                format!("OUT OF POLICY ({})", codes.join(", "))
            };
            writeln!(out, "  check: {verdict}")?;
        }
        for k in &self.skipped {
            writeln!(out, "skipped {}: {}", k.location, k.reason)?;
        }
        let s = &self.summary;
        writeln!(
            out,
            "{}, {} out of policy, {} skipped",
            super::count(s.services, "service", "services"),
            s.out_of_policy,
            s.skipped
        )
    }
}

/// `fleet check`: the fleet's policy findings, grouped by team.
#[derive(Debug, Clone, Serialize)]
pub struct FleetCheckReport {
    pub today: String,
    /// No service out of policy.
    pub ok: bool,
    pub services: usize,
    pub out_of_policy: usize,
    /// Team (`null`: none known) → findings, failures first.
    pub teams: Vec<TeamFindings>,
    pub skipped: Vec<SkippedEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamFindings {
    pub team: Option<String>,
    pub findings: Vec<ServiceFinding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceFinding {
    pub service: String,
    pub location: String,
    #[serde(flatten)]
    pub finding: Finding,
}

impl FleetCheckReport {
    pub fn new(status: &FleetStatusReport) -> Self {
        let mut teams: BTreeMap<Option<String>, Vec<ServiceFinding>> = BTreeMap::new();
        for s in &status.services {
            for f in &s.policy.findings {
                teams
                    .entry(s.team.clone())
                    .or_default()
                    .push(ServiceFinding {
                        service: s.name.clone(),
                        location: s.location.clone(),
                        finding: f.clone(),
                    });
            }
        }
        let teams = teams
            .into_iter()
            .map(|(team, mut findings)| {
                findings.sort_by_key(|f| f.finding.severity != Severity::Failure);
                TeamFindings { team, findings }
            })
            .collect();
        FleetCheckReport {
            today: status.today.clone(),
            ok: status.summary.out_of_policy == 0,
            services: status.summary.services,
            out_of_policy: status.summary.out_of_policy,
            teams,
            skipped: status.skipped.clone(),
        }
    }
}

impl super::Report for FleetCheckReport {
    const COMMAND: &'static str = "fleet check";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        for t in &self.teams {
            writeln!(out, "team {}:", t.team.as_deref().unwrap_or("(none)"))?;
            for f in &t.findings {
                writeln!(
                    out,
                    "  {} ({}): {}: {}",
                    f.service, f.location, f.finding.code, f.finding.message
                )?;
            }
        }
        for k in &self.skipped {
            writeln!(out, "skipped {}: {}", k.location, k.reason)?;
        }
        let skipped = if self.skipped.is_empty() {
            String::new()
        } else {
            format!(
                "; {} not read (listed above)",
                super::count(self.skipped.len(), "place", "places")
            )
        };
        if self.ok {
            writeln!(
                out,
                "ok: {} within policy{skipped}",
                super::count(self.services, "service", "services")
            )
        } else {
            writeln!(
                out,
                "out of policy: {} of {}{skipped}; each team runs `cargo platform upgrade` in its service",
                self.out_of_policy,
                super::count(self.services, "service", "services")
            )
        }
    }
}
