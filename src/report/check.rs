//! The report of `cargo platform check`: the service's policy findings and whether it passes.

use std::io::{self, Write};

use serde::Serialize;

use super::{Finding, Severity};

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub name: String,
    /// The service root, as found or given with `--path`.
    pub path: String,
    pub template: String,
    pub version: String,
    /// The newest version this tool embeds.
    pub newest: String,
    /// The day the policy was evaluated on (`CARGO_PLATFORM_TODAY` overrides it).
    pub today: String,
    /// No failing finding: exit 0. Otherwise the service is out of policy: exit 4.
    pub ok: bool,
    /// How many findings have severity `failure`.
    pub failures: usize,
    /// Failures first, then warnings.
    pub findings: Vec<Finding>,
    /// What to do to get back within policy; `null` when `ok`.
    pub next_step: Option<String>,
}

impl CheckReport {
    /// How many of `findings` fail the service.
    pub fn failures(findings: &[Finding]) -> usize {
        findings
            .iter()
            .filter(|f| f.severity == Severity::Failure)
            .count()
    }

    /// What to do when out of policy: upgrade, or first update the tool when it embeds no newer
    /// release.
    pub fn next_step(failures: usize, upgrade_available: bool) -> Option<String> {
        (failures > 0).then(|| {
            if upgrade_available {
                "run `cargo platform upgrade` (`cargo platform status` shows what it involves)"
            } else {
                "update cargo-platform for a newer template release, then run `cargo platform upgrade`"
            }
            .to_string()
        })
    }
}

impl super::Report for CheckReport {
    const COMMAND: &'static str = "check";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        for f in &self.findings {
            writeln!(out, "{}: {}", f.code, f.message)?;
        }
        let service = format!("{} on {} {}", self.name, self.template, self.version);
        if self.ok {
            return writeln!(out, "ok: {service} is within policy");
        }
        writeln!(
            out,
            "out of policy: {service} has {}",
            super::count(self.failures, "failing finding", "failing findings")
        )?;
        if let Some(next) = &self.next_step {
            writeln!(out, "next: {next}")?;
        }
        Ok(())
    }
}
