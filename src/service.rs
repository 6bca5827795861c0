//! Finding a service on disk and loading what the platform knows about it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifest::{self, Manifest};
use crate::template::{Catalogue, Template};

/// What [`Service::in_flight`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    /// Nothing is changing the service.
    No,
    /// An upgrade is writing (its journal is present and its process holds the lock).
    Upgrading(crate::lock::Holder),
    /// Another run (`upgrade` still planning, `eject`) holds the lock.
    Changing(crate::lock::Holder),
    /// An upgrade's journal with no live holder: the run was cut off; `upgrade --abort` undoes it.
    Interrupted,
    /// An upgrade was applied in full, but its `--verify` failed: its journal is kept until
    /// `upgrade --verify` passes (or `upgrade --abort` rolls it back).
    VerifyPending,
}

/// A service directory with its parsed manifest.
#[derive(Debug)]
pub struct Service {
    pub root: PathBuf,
    /// The manifest file as it is on disk (so rewrites keep its comments).
    pub manifest_text: String,
    pub manifest: Manifest,
}

/// The service root: `--path DIR` as given, else the current directory or the nearest parent
/// holding platform.toml (or an interrupted upgrade's journal, so `--abort` works even then).
pub fn find_root(path: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = path {
        return Ok(dir.to_path_buf());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Error::new(format!("cannot read the current directory: {e}")))?;
    cwd.ancestors()
        .find(|d| d.join(manifest::FILE_NAME).is_file() || d.join(crate::journal::DIR).is_dir())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            Error::new(format!(
                "no {} in {} or any parent directory",
                manifest::FILE_NAME,
                cwd.display()
            ))
            .hint("run this inside a service created by `cargo platform new`, or pass --path DIR")
        })
}

/// What git has of `file`'s past, for a schema-1 manifest's history (`None`: not in git).
fn recovered_revisions(file: &Path) -> Option<Vec<manifest::v1_to_v2::Revision>> {
    crate::git::file_revisions(file).map(dated_revisions)
}

/// Committed versions of platform.toml, each dated on its commit's day in the committer's
/// time zone, for [`manifest::v1_to_v2::convert`].
pub fn dated_revisions(
    revisions: Vec<crate::git::FileRevision>,
) -> Vec<manifest::v1_to_v2::Revision> {
    revisions
        .into_iter()
        .filter_map(|r| {
            let offset = jiff::tz::Offset::from_seconds(r.offset_minutes * 60).ok()?;
            let date = jiff::Timestamp::from_second(r.seconds)
                .ok()?
                .to_zoned(jiff::tz::TimeZone::fixed(offset))
                .date();
            Some(manifest::v1_to_v2::Revision { date, text: r.text })
        })
        .collect()
}

impl Service {
    /// Whether a change to the service is under way, or was cut off (for `status` and `check`).
    pub fn in_flight(&self) -> InFlight {
        let journal = crate::journal::in_flight(&self.root);
        match (crate::lock::holder(&self.root), journal) {
            (Some(holder), true) => InFlight::Upgrading(holder),
            (Some(holder), false) => InFlight::Changing(holder),
            (None, true) if crate::journal::verify_pending(&self.root) => InFlight::VerifyPending,
            (None, true) => InFlight::Interrupted,
            (None, false) => InFlight::No,
        }
    }

    /// The warning to show when another run is changing the service, or an interrupted
    /// upgrade's journal is present (a report read now may describe a half-written tree), or
    /// `None`. The caller prints it.
    pub fn upgrade_in_flight_warning(&self, in_flight: &InFlight) -> Option<String> {
        match in_flight {
            InFlight::Upgrading(holder) => Some(format!(
                "an upgrade is in progress ({holder}): this report may describe a half-written tree; let it finish (its journal is live, not left by a crash)"
            )),
            InFlight::Changing(holder) => Some(format!(
                "another cargo-platform ({holder}) is changing this service: this report may be stale"
            )),
            InFlight::Interrupted => Some(format!(
                "an interrupted upgrade left its journal in {}: this report may be stale; run `cargo platform upgrade --abort`",
                self.root.join(crate::journal::DIR).display()
            )),
            InFlight::VerifyPending => Some(
                "the last upgrade was applied but `cargo check --all-targets` failed (`upgrade --verify`): fix the errors and run `cargo platform upgrade --verify` again, or `cargo platform upgrade --abort` to roll it back".to_string(),
            ),
            InFlight::No => None,
        }
    }

    /// `--path DIR` when given (it must hold platform.toml), else the current directory or the
    /// nearest parent that holds one.
    pub fn locate(path: Option<&Path>) -> Result<Service> {
        let root = find_root(path)?;
        if !root.join(manifest::FILE_NAME).is_file() {
            return Err(Error::new(format!(
                "{} has no {}: it is not a service created by cargo-platform",
                root.display(),
                manifest::FILE_NAME
            ))
            .hint("pass the service's root directory with --path, or create one with `cargo platform new`"));
        }
        let file = root.join(manifest::FILE_NAME);
        let manifest_text = fs_err::read_to_string(&file)?;
        let manifest = Manifest::parse_with(&manifest_text, &file.display().to_string(), || {
            recovered_revisions(&file)
        })?;
        Ok(Service {
            root,
            manifest_text,
            manifest,
        })
    }

    /// The SHA-256 of the file at `rel` (a manifest path, relative to the root), or `None` when
    /// it does not exist. Reads that one file and nothing else.
    pub fn sha256_on_disk(&self, rel: &str) -> Result<Option<String>> {
        let path = self.root.join(rel);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(crate::template::render::sha256_hex(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(
                Error::new(format!("cannot read {}: {e}", path.display())).hint(format!(
                    "{} is recorded in {}; restore it as a file or fix its permissions",
                    rel,
                    manifest::FILE_NAME
                )),
            ),
        }
    }

    /// The service's template in the catalogue, and a check that its version is still embedded.
    pub fn template<'c>(&self, catalogue: &'c Catalogue) -> Result<&'c Template> {
        let template = catalogue.get(&self.manifest.template).map_err(|e| {
            e.context(format!("{}: [platform] template", self.root.join(manifest::FILE_NAME).display()))
                .hint("this tool may be older than the one that created the service: upgrade cargo-platform")
        })?;
        template.release(&self.manifest.version.to_string()).map_err(|e| {
            e.hint("this tool may be older than the one that last upgraded the service: upgrade cargo-platform")
        })?;
        Ok(template)
    }
}
