//! `cargo platform check`: the CI gate.

use std::path::PathBuf;

use super::ExitStatus;
use crate::error::Result;
use crate::policy;
use crate::report::Finding;
use crate::report::check::CheckReport;
use crate::service::Service;
use crate::template::Catalogue;
use crate::ui::{Format, Printer};

/// Fail (exit 4) when the service's template version is past its end of support or a required
/// migration is pending; one line per finding. Made for CI.
///
/// Findings go to stdout, one per line, prefixed with a stable code: `out-of-support` and
/// `pending-required-migration` fail; `deprecated` and `skipped-required-migration` are warnings
/// that do not. A last line says `ok: …` or `out of policy: …` (with what to do next). Exit 0
/// within policy, 4 out of policy, 1 when the service cannot be read.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service directory (default: the nearest directory with platform.toml, upwards).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: Args) -> Result<ExitStatus> {
    let printer = Printer::new(args.format);
    let service = Service::locate(args.path.as_deref())?;
    if let Some(warning) = service.upgrade_in_flight_warning(&service.in_flight()) {
        printer.warn(warning);
    }
    let catalogue = Catalogue::load()?;
    let template = service.template(&catalogue)?;
    let today = policy::today()?;
    let m = &service.manifest;
    let findings = policy::findings(m, template, today)?;
    let newest = &template.newest().version;
    let findings: Vec<Finding> = findings.iter().map(Into::into).collect();
    let failures = CheckReport::failures(&findings);
    let report = CheckReport {
        name: m.name.clone(),
        path: service.root.display().to_string(),
        template: m.template.clone(),
        version: m.version.to_string(),
        newest: newest.to_string(),
        today: today.to_string(),
        ok: failures == 0,
        failures,
        findings,
        next_step: CheckReport::next_step(failures, *newest > m.version),
    };
    printer.report(&report)?;
    Ok(if report.ok {
        ExitStatus::Success
    } else {
        ExitStatus::OutOfPolicy
    })
}
