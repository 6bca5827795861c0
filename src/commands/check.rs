//! `cargo platform check`: the CI gate.

use std::path::PathBuf;

use crate::error::{Error, ExitKind, Result};
use crate::policy::{self, Severity};
use crate::service::Service;
use crate::template::Catalogue;
use crate::ui::{Format, Printer};

/// Fail (exit 4) when the service's template version is past its end of support or a required
/// migration is pending; one line per finding. Made for CI.
///
/// Findings go to stdout, one per line, prefixed with a stable code: `out-of-support` and
/// `pending-required-migration` fail; `deprecated` and `skipped-required-migration` are warnings
/// that do not. Exit 0 within policy, 4 out of policy, 1 when the service cannot be read.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service directory (default: the nearest directory with platform.toml, upwards).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let printer = Printer::new(Format::Human);
    let service = Service::locate(args.path.as_deref())?;
    service.warn_if_upgrade_in_flight(&printer);
    let catalogue = Catalogue::load()?;
    let template = service.template(&catalogue)?;
    let today = policy::today()?;
    let m = &service.manifest;
    let findings = policy::findings(m, template, today)?;
    for finding in &findings {
        printer.line(finding.to_string());
    }
    let failures = findings
        .iter()
        .filter(|f| f.severity == Severity::Failure)
        .count();
    if failures == 0 {
        printer.line(format!(
            "ok: {} on {} {} is within policy",
            m.name, m.template, m.version
        ));
        return Ok(());
    }
    let plural = if failures == 1 { "finding" } else { "findings" };
    Err(Error::new(format!(
        "{} on {} {} is out of policy: {failures} failing {plural} (listed on stdout)",
        m.name, m.template, m.version
    ))
    .hint(if template.newest().version > m.version {
        "run `cargo platform upgrade` (`cargo platform status` shows what it involves)"
    } else {
        "update cargo-platform for a newer template release, then run `cargo platform upgrade`"
    })
    .with_kind(ExitKind::OutOfPolicy))
}
