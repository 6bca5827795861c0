//! `fleet report`: the fleet's aggregates (computed in `fleet::aggregate`), rendered as JSON
//! (`"schema": 1`, golden-path.md section 9), Markdown tables, or OpenMetrics series.

use std::io::{self, Write};

use serde::Serialize;

use super::fleet::SkippedEntry;

#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    /// The date everything is computed as of (YYYY-MM-DD).
    pub as_of: String,
    pub summary: Summary,
    /// One group per template (`team: null`), each followed by one per team of that template.
    pub groups: Vec<Group>,
    /// Services out of policy on `as_of`, by team then name.
    pub out_of_policy: Vec<OutOfPolicy>,
    /// Entries that could not be read, with the reason.
    pub skipped: Vec<SkippedEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Services existing on `as_of`.
    pub services: usize,
    pub out_of_policy: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub template: String,
    /// `null`: every team; `"(none)"`: services with no owner.
    pub team: Option<String>,
    pub services: usize,
    /// The newest release published on or before `as_of`.
    pub newest: Option<String>,
    /// Services on a release not past its end of support (deprecated ones count).
    pub on_supported: usize,
    pub on_supported_share: f64,
    /// Services on the newest release.
    pub on_newest: usize,
    pub on_newest_share: f64,
    /// Adoption over time: the group's standing at the end of each month since the template's
    /// first release, then on `as_of`.
    pub adoption: Vec<AdoptionPoint>,
    /// Services by releases behind the newest, ascending.
    pub lag: Vec<Lag>,
    /// Every release published on or before `as_of`, oldest first.
    pub releases: Vec<ReleaseRow>,
    /// Ejected components, most services first, with their reasons.
    pub ejections: Vec<Ejections>,
    /// Managed files edited locally, most services first.
    pub drift: Vec<Counted>,
    pub out_of_policy: usize,
}

/// Where a group stood on one day: the services existing then, at their version then.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AdoptionPoint {
    pub date: String,
    /// The newest release published on or before `date`.
    pub newest: Option<String>,
    pub services: usize,
    pub on_newest: usize,
    pub on_newest_share: f64,
    pub on_supported: usize,
    pub on_supported_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lag {
    pub releases_behind: usize,
    pub services: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReleaseRow {
    pub version: String,
    pub date: String,
    /// Services on this release.
    pub services_on: usize,
    /// Services on this release or a later one.
    pub services_on_or_past: usize,
    pub reach: Reach,
    pub leverage: Leverage,
}

/// Days after the release until that share of the services existing then were on it or later;
/// `null`: not reached by `as_of`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Reach {
    pub days_to_50: Option<i64>,
    pub days_to_70: Option<i64>,
    pub days_to_90: Option<i64>,
}

/// The upgrades to a release and the files they changed.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Leverage {
    pub upgrades: usize,
    /// Written with no hand edit needed.
    pub updated: usize,
    /// 3-way merged with a team's edits, cleanly.
    pub merged: usize,
    /// Left in conflict for the team.
    pub conflicts: usize,
    /// Upgrades whose file counts are unknown (recovered from git).
    pub unknown: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ejections {
    pub component: String,
    pub services: usize,
    /// Reason (`""`: none given) and how many services gave it.
    pub reasons: Vec<Counted>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Counted {
    pub name: String,
    pub services: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutOfPolicy {
    pub service: String,
    pub location: String,
    pub team: Option<String>,
    pub template: String,
    pub version: String,
    pub reasons: Vec<String>,
}

impl FleetReport {
    pub fn new(
        as_of: String,
        services: usize,
        groups: Vec<Group>,
        out_of_policy: Vec<OutOfPolicy>,
        skipped: Vec<SkippedEntry>,
    ) -> Self {
        FleetReport {
            as_of,
            summary: Summary {
                services,
                out_of_policy: out_of_policy.len(),
                skipped: skipped.len(),
            },
            groups,
            out_of_policy,
            skipped,
        }
    }

    /// Markdown: a summary, then per group its adoption, lag, releases, ejections and drift
    /// tables, then the services out of policy and the skipped entries.
    pub fn markdown(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "# Fleet report as of {}\n", self.as_of)?;
        let s = &self.summary;
        writeln!(
            out,
            "{} services, {} out of policy, {} skipped.\n",
            s.services, s.out_of_policy, s.skipped
        )?;
        if !self.groups.is_empty() {
            writeln!(out, "## Adoption\n")?;
            writeln!(
                out,
                "| template | team | services | newest | on newest | on a supported release | out of policy |"
            )?;
            writeln!(out, "|---|---|---:|---|---:|---:|---:|")?;
            for g in &self.groups {
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {} ({}) | {} ({}) | {} |",
                    cell(&g.template),
                    cell(g.team.as_deref().unwrap_or("*all teams*")),
                    g.services,
                    g.newest.as_deref().unwrap_or("-"),
                    g.on_newest,
                    percent(g.on_newest_share),
                    g.on_supported,
                    percent(g.on_supported_share),
                    g.out_of_policy
                )?;
            }
            writeln!(out)?;
        }
        for g in &self.groups {
            let team = g.team.as_deref().unwrap_or("all teams");
            writeln!(out, "## {} — {}\n", cell(&g.template), cell(team))?;
            writeln!(out, "| releases behind | services |\n|---:|---:|")?;
            for l in &g.lag {
                writeln!(out, "| {} | {} |", l.releases_behind, l.services)?;
            }
            writeln!(out)?;
            writeln!(
                out,
                "| release | date | on it or later | days to 50 % | days to 70 % | days to 90 % | upgrades | files updated | merged | in conflict | counts unknown |"
            )?;
            writeln!(
                out,
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            )?;
            for r in &g.releases {
                let days = |d: Option<i64>| d.map_or("not reached".to_string(), |d| d.to_string());
                let l = &r.leverage;
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.version,
                    r.date,
                    r.services_on_or_past,
                    days(r.reach.days_to_50),
                    days(r.reach.days_to_70),
                    days(r.reach.days_to_90),
                    l.upgrades,
                    l.updated,
                    l.merged,
                    l.conflicts,
                    l.unknown
                )?;
            }
            writeln!(out)?;
            if !g.ejections.is_empty() {
                writeln!(
                    out,
                    "| ejected component | services | reasons |\n|---|---:|---|"
                )?;
                for e in &g.ejections {
                    let reasons: Vec<String> = e
                        .reasons
                        .iter()
                        .map(|r| {
                            let reason = if r.name.is_empty() {
                                "no reason given"
                            } else {
                                &r.name
                            };
                            format!("{} ({})", cell(reason), r.services)
                        })
                        .collect();
                    writeln!(
                        out,
                        "| {} | {} | {} |",
                        cell(&e.component),
                        e.services,
                        reasons.join("; ")
                    )?;
                }
                writeln!(out)?;
            }
            if !g.drift.is_empty() {
                writeln!(
                    out,
                    "| managed file edited locally | services |\n|---|---:|"
                )?;
                for d in &g.drift {
                    writeln!(out, "| `{}` | {} |", cell(&d.name), d.services)?;
                }
                writeln!(out)?;
            }
        }
        if !self.out_of_policy.is_empty() {
            writeln!(out, "## Out of policy\n")?;
            writeln!(out, "| team | service | template | version | reasons |")?;
            writeln!(out, "|---|---|---|---|---|")?;
            for o in &self.out_of_policy {
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    cell(o.team.as_deref().unwrap_or("(none)")),
                    cell(&o.service),
                    cell(&o.template),
                    o.version,
                    cell(&o.reasons.join("; "))
                )?;
            }
            writeln!(out)?;
        }
        if !self.skipped.is_empty() {
            writeln!(out, "## Skipped\n")?;
            writeln!(out, "| entry | reason |\n|---|---|")?;
            for k in &self.skipped {
                writeln!(out, "| {} | {} |", cell(&k.location), cell(&k.reason))?;
            }
            writeln!(out)?;
        }
        Ok(())
    }

    /// OpenMetrics text: `platform_fleet_*` gauges labelled by template, team (no `team` label
    /// for the whole template) and version, ending with `# EOF`.
    pub fn openmetrics(&self, out: &mut dyn Write) -> io::Result<()> {
        // The whole template's series carry no `team` label, so no team's name (even `all`)
        // can collide with them.
        let team = |g: &Group| match g.team.as_deref() {
            Some(t) => format!(",team=\"{}\"", label(t)),
            None => String::new(),
        };
        let families: [(&str, &str); 10] = [
            ("services", "Services existing on the report's date."),
            (
                "services_on_newest",
                "Services on the template's newest release.",
            ),
            (
                "services_on_supported",
                "Services on a release not past its end of support.",
            ),
            ("services_out_of_policy", "Services out of policy."),
            (
                "services_by_version",
                "Services on each release or a later one.",
            ),
            (
                "services_by_lag",
                "Services by the number of releases they are behind.",
            ),
            (
                "release_reach_seconds",
                "Time after a release until the share of the services existing then was on it or later, in whole days (absent: not reached).",
            ),
            (
                "upgrade_files",
                "Files changed by upgrades to a release, by outcome.",
            ),
            (
                "ejections",
                "Services that ejected a component (took it off the golden path).",
            ),
            ("skipped_entries", "Fleet entries that could not be read."),
        ];
        for (name, help) in families {
            writeln!(out, "# TYPE platform_fleet_{name} gauge")?;
            writeln!(out, "# HELP platform_fleet_{name} {help}")?;
            if name == "skipped_entries" {
                writeln!(out, "platform_fleet_{name} {}", self.skipped.len())?;
                continue;
            }
            for g in &self.groups {
                let base = format!("template=\"{}\"{}", label(&g.template), team(g));
                match name {
                    "services" => writeln!(out, "platform_fleet_{name}{{{base}}} {}", g.services)?,
                    "services_on_newest" => {
                        writeln!(out, "platform_fleet_{name}{{{base}}} {}", g.on_newest)?
                    }
                    "services_on_supported" => {
                        writeln!(out, "platform_fleet_{name}{{{base}}} {}", g.on_supported)?
                    }
                    "services_out_of_policy" => {
                        writeln!(out, "platform_fleet_{name}{{{base}}} {}", g.out_of_policy)?
                    }
                    "services_by_version" => {
                        for r in &g.releases {
                            writeln!(
                                out,
                                "platform_fleet_{name}{{{base},version=\"{}\"}} {}",
                                label(&r.version),
                                r.services_on_or_past
                            )?;
                        }
                    }
                    "services_by_lag" => {
                        for l in &g.lag {
                            writeln!(
                                out,
                                "platform_fleet_{name}{{{base},releases_behind=\"{}\"}} {}",
                                l.releases_behind, l.services
                            )?;
                        }
                    }
                    "release_reach_seconds" => {
                        for r in &g.releases {
                            for (share, days) in [
                                ("50", r.reach.days_to_50),
                                ("70", r.reach.days_to_70),
                                ("90", r.reach.days_to_90),
                            ] {
                                if let Some(days) = days {
                                    writeln!(
                                        out,
                                        "platform_fleet_{name}{{{base},version=\"{}\",share=\"{share}\"}} {}",
                                        label(&r.version),
                                        days * 86_400
                                    )?;
                                }
                            }
                        }
                    }
                    "ejections" => {
                        for e in &g.ejections {
                            writeln!(
                                out,
                                "platform_fleet_{name}{{{base},component=\"{}\"}} {}",
                                label(&e.component),
                                e.services
                            )?;
                        }
                    }
                    _ => {
                        for r in &g.releases {
                            let l = &r.leverage;
                            for (outcome, n) in [
                                ("updated", l.updated),
                                ("merged", l.merged),
                                ("conflict", l.conflicts),
                            ] {
                                writeln!(
                                    out,
                                    "platform_fleet_{name}{{{base},version=\"{}\",outcome=\"{outcome}\"}} {n}",
                                    label(&r.version)
                                )?;
                            }
                        }
                    }
                }
            }
        }
        writeln!(out, "# EOF")
    }
}

impl super::Report for FleetReport {
    const COMMAND: &'static str = "fleet report";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        self.markdown(out)
    }
}

/// `0.8333` as `83.3 %`.
pub(crate) fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A label value escaped for OpenMetrics.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
