//! `cargo platform status`: where this service stands.

use std::path::PathBuf;

use crate::error::Result;
use crate::ui::Format;

/// Show the service's template and version, the newest version, pending migrations, ejected
/// components, managed files edited locally, and the support window.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service directory (default: the nearest directory with platform.toml, upwards).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(_args: Args) -> Result<()> {
    Err(super::not_implemented("status"))
}
