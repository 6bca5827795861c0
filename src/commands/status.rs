//! `cargo platform status`: where this service stands.

use std::path::PathBuf;

use crate::error::Result;
use crate::service::Service;
use crate::template::Catalogue;
use crate::ui::{Format, Printer};
use crate::{facts, policy};

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
    let report = facts::status(
        &service.manifest,
        template,
        &service,
        service.root.display().to_string(),
        &in_flight,
        today,
    )?;
    printer.report(&report)
}
