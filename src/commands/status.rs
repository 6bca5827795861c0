//! `cargo platform status`: where this service stands.

use std::path::PathBuf;

use serde_json::json;

use crate::error::Result;
use crate::journal;
use crate::manifest::ComponentState;
use crate::policy::{self, Change, Severity, SupportState, SupportWindow};
use crate::service::Service;
use crate::template::Catalogue;
use crate::ui::{Format, Printer};

/// Show the service's template and version, the newest version, pending migrations, ejected
/// components, managed files edited locally, and the support window.
///
/// Reads platform.toml and the files it records, nothing else: it never walks the tree and never
/// renders templates, so it is fast on any service.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service directory (default: the nearest directory with platform.toml, upwards).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: Args) -> Result<()> {
    let printer = Printer::new(args.format);
    let service = Service::locate(args.path.as_deref())?;
    let in_flight = journal::in_flight(&service.root);
    service.warn_if_upgrade_in_flight(&printer);
    let catalogue = Catalogue::load()?;
    let template = service.template(&catalogue)?;
    let today = policy::today()?;
    let m = &service.manifest;

    let newest = &template.newest().version;
    let behind = template
        .releases
        .iter()
        .filter(|r| r.version > m.version)
        .count();
    let window = policy::support_window(template, &m.version, today)?;
    let pending = policy::pending_migrations(m, template);
    let skipped = policy::skipped_migrations(m, template);
    let ejected: Vec<_> = m
        .components
        .iter()
        .filter(|(_, c)| c.state == ComponentState::Ejected)
        .collect();
    let edits = policy::local_edits(m, |rel| service.sha256_on_disk(rel))?;
    let findings = policy::findings(m, template, today)?;

    printer.json(&json!({
        "name": m.name,
        "path": service.root.display().to_string(),
        "template": m.template,
        "version": m.version.to_string(),
        "newest": newest.to_string(),
        "up_to_date": behind == 0,
        "releases_behind": behind,
        "tool_version": m.tool_version,
        "upgrade_in_flight": in_flight,
        "today": today.to_string(),
        "support": {
            "state": window.state.as_str(),
            "deprecated": window.deprecated.map(|d| d.to_string()),
            "end_of_support": window.end_of_support.map(|d| d.to_string()),
            "days_left": window.days_left(),
        },
        "pending_migrations": pending.iter().map(|p| json!({
            "id": p.id, "version": p.version.to_string(), "required": p.required, "description": p.description,
        })).collect::<Vec<_>>(),
        "skipped_migrations": skipped.iter().map(|s| json!({
            "id": s.id, "date": s.date, "version": s.version.as_ref().map(ToString::to_string),
            "required": s.required, "description": s.description,
        })).collect::<Vec<_>>(),
        "ejected": ejected.iter().map(|(name, c)| json!({
            "component": name, "reason": c.reason, "date": c.date,
        })).collect::<Vec<_>>(),
        "local_edits": edits.iter().map(|e| json!({
            "path": e.path, "component": e.component, "mode": e.mode.as_str(), "change": e.change.as_str(),
        })).collect::<Vec<_>>(),
        "policy": {
            "ok": !findings.iter().any(|f| f.severity == Severity::Failure),
            "findings": findings.iter().map(|f| json!({
                "code": f.code,
                "severity": match f.severity { Severity::Failure => "failure", Severity::Warning => "warning" },
                "message": f.message,
            })).collect::<Vec<_>>(),
        },
    }));

    let upgrade = if behind == 0 {
        "newest".to_string()
    } else {
        let releases = if behind == 1 { "release" } else { "releases" };
        format!("newest is {newest}, {behind} {releases} behind: cargo platform upgrade")
    };
    printer.line(format!(
        "{}: template {} {} ({upgrade})",
        m.name, m.template, m.version
    ));
    printer.line(format!("support: {}", support_line(&window)));

    if pending.is_empty() {
        printer.line("pending migrations: none");
    } else {
        printer.line(format!("pending migrations: {}", pending.len()));
        for p in &pending {
            let required = if p.required { ", required" } else { "" };
            printer.line(format!(
                "  {} ({}{required}): {}",
                p.id, p.version, p.description
            ));
        }
    }
    if !skipped.is_empty() {
        printer.line(format!("skipped migrations: {}", skipped.len()));
        for s in &skipped {
            let mut about = Vec::new();
            if let Some(v) = &s.version {
                about.push(v.to_string());
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
            printer.line(format!("  {} ({}){description}", s.id, about.join(", ")));
        }
    }

    if ejected.is_empty() {
        printer.line("ejected components: none");
    } else {
        printer.line(format!(
            "ejected components (off the golden path): {}",
            ejected.len()
        ));
        for (name, c) in &ejected {
            let date = c.date.map(|d| format!(" on {d}")).unwrap_or_default();
            let reason = c.reason.as_deref().unwrap_or("no reason recorded");
            printer.line(format!("  {name}: ejected{date} — {reason}"));
        }
    }

    if edits.is_empty() {
        printer.line("local edits to platform files: none");
    } else {
        printer.line(format!("local edits to platform files: {}", edits.len()));
        for e in &edits {
            let change = match e.change {
                Change::Edited => "edited",
                Change::Deleted => "deleted locally",
            };
            printer.line(format!(
                "  {change:<15}  {} ({}, {})",
                e.path,
                e.component,
                e.mode.as_str()
            ));
        }
    }
    Ok(())
}

fn support_line(w: &SupportWindow) -> String {
    let days = |n: i32| {
        if n.abs() == 1 {
            format!("{n} day")
        } else {
            format!("{n} days")
        }
    };
    let until = match (w.end_of_support, w.days_left()) {
        (Some(end), Some(left)) => format!("supported until {end} ({} left)", days(left)),
        _ => "no end of support announced".to_string(),
    };
    match (w.state, w.deprecated, w.end_of_support, w.days_left()) {
        (SupportState::EndOfSupport, _, Some(end), Some(left)) => format!(
            "OUT OF SUPPORT: its last supported day was {end} ({} ago); `cargo platform check` fails",
            days(-left)
        ),
        (SupportState::Deprecated, Some(since), _, _) => {
            format!("deprecated since {since}; {until}")
        }
        (_, Some(from), _, _) => format!("supported; deprecated from {from}, {until}"),
        _ => format!("supported; {until}"),
    }
}
