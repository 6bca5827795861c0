//! `cargo platform eject`: take components off the golden path, on the record.

use std::path::PathBuf;

use crate::error::Result;

/// Take components off the golden path: their files become the team's own, upgrades skip them,
/// and `status` shows them as ejected with the reason.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The components to eject (see `cargo platform templates`); `core` cannot be ejected.
    #[arg(required = true, value_name = "COMPONENT")]
    pub components: Vec<String>,
    /// The service directory (default: the nearest directory with platform.toml, upwards).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Why, for the record (shown by `status`).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

pub fn run(_args: Args) -> Result<()> {
    Err(super::not_implemented("eject"))
}
