//! `cargo platform upgrade`: walk a service from its template version to a newer one.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::error::Result;
use crate::ui::Format;

/// Upgrade the service to a newer template version, never losing the team's edits.
///
/// Plans every hop from the service's version to the target, 3-way merges managed files (base =
/// the exact old render), applies structured TOML edits, and writes all-or-nothing with a journal.
/// Exit 0 clean, 3 when conflicts remain (listed), 1 on refusal or error with nothing changed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service directory (default: the nearest directory with platform.toml, upwards).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Target template version (default: the newest).
    #[arg(long, value_name = "X.Y.Z")]
    pub to: Option<String>,
    /// Print the plan (per file: new, unchanged, updated, merged, conflict, renamed, deleted, kept,
    /// ejected, excluded) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Upgrade even when the git work tree has uncommitted changes.
    #[arg(long)]
    pub allow_dirty: bool,
    /// Skip a migration by id; it is recorded as skipped in platform.toml.
    #[arg(long, value_name = "MIGRATION_ID")]
    pub skip: Vec<String>,
    /// Never touch paths matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Eject a component before upgrading (repeatable).
    #[arg(long, value_name = "COMPONENT")]
    pub eject: Vec<String>,
    /// How to leave conflicts: git-style markers in the file, or `.rej` files beside it.
    #[arg(long, value_enum, default_value_t = ConflictStyle::Markers)]
    pub conflict: ConflictStyle,
    /// Commit the result, with a message naming the versions.
    #[arg(long)]
    pub commit: bool,
    /// Roll back an interrupted upgrade from its journal, restoring the tree exactly.
    #[arg(long, conflicts_with_all = ["to", "dry_run", "skip", "exclude", "eject", "commit"])]
    pub abort: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConflictStyle {
    /// `<<<<<<<` / `=======` / `>>>>>>>` markers in the file.
    Markers,
    /// Keep the team's file, write the template's side to `<file>.rej`.
    Reject,
}

pub fn run(_args: Args) -> Result<()> {
    Err(super::not_implemented("upgrade"))
}
