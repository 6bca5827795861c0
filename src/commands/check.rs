//! `cargo platform check`: the CI gate.

use std::path::PathBuf;

use crate::error::Result;

/// Fail (exit 4) when the service's template version is past its end of support or a required
/// migration is pending; one line per finding. Made for CI.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service directory (default: the nearest directory with platform.toml, upwards).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
}

pub fn run(_args: Args) -> Result<()> {
    Err(super::not_implemented("check"))
}
