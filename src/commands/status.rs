//! `cargo platform status`: where this service stands.

use std::path::PathBuf;

use crate::error::Result;
use crate::manifest::ComponentState;
use crate::policy;
use crate::report::status::{Component, Ejected, Policy, StatusReport};
use crate::service::{InFlight, Service};
use crate::template::Catalogue;
use crate::ui::{Format, Printer};

/// Show the service's template and version, the newest version, pending migrations, ejected
/// components, managed files edited locally, the support window, and when the service was
/// created and last upgraded.
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
    let in_flight = service.in_flight();
    if let Some(warning) = service.upgrade_in_flight_warning(&in_flight) {
        printer.warn(warning);
    }
    let catalogue = Catalogue::load()?;
    let template = service.template(&catalogue)?;
    let today = policy::today()?;
    let m = &service.manifest;

    let behind = template
        .releases
        .iter()
        .filter(|r| r.version > m.version)
        .count();
    let window = policy::support_window(template, &m.version, today)?;
    let edits = policy::local_edits(m, |rel| service.sha256_on_disk(rel))?;
    let findings = policy::findings(m, template, today)?;
    let report = StatusReport {
        name: m.name.clone(),
        path: service.root.display().to_string(),
        template: m.template.clone(),
        version: m.version.to_string(),
        newest: template.newest().version.to_string(),
        up_to_date: behind == 0,
        releases_behind: behind,
        tool_version: m.tool_version.clone(),
        upgrade_in_flight: matches!(in_flight, InFlight::Upgrading(_) | InFlight::Interrupted),
        change: (&in_flight).into(),
        today: today.to_string(),
        support: (&window).into(),
        history: (&m.history).into(),
        pending_migrations: policy::pending_migrations(m, template)
            .iter()
            .map(Into::into)
            .collect(),
        skipped_migrations: policy::skipped_migrations(m, template)
            .iter()
            .map(Into::into)
            .collect(),
        components: m
            .components
            .iter()
            .map(|(name, c)| Component::new(name, c))
            .collect(),
        ejected: m
            .components
            .iter()
            .filter(|(_, c)| c.state == ComponentState::Ejected)
            .map(|(name, c)| Ejected::new(name, c))
            .collect(),
        local_edits: edits.iter().map(Into::into).collect(),
        policy: Policy::new(&findings),
    };
    printer.report(&report)
}
