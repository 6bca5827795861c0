//! The fleet: every service found under `--root` trees and in a fleet file, on disk or in a git
//! ref, with where each one stands. Reads only; a place that cannot be read is reported with its
//! reason and never stops the rest.

pub mod aggregate;
pub mod campaign;
pub mod discover;
pub mod facts_file;
pub mod file;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use jiff::civil::Date;

use crate::error::{Error, Result};
use crate::facts::{self, ServiceTree};
use crate::git::{Oid, RefTree, TreeDir};
use crate::manifest::{self, Manifest};
use crate::policy;
use crate::report::fleet::{FleetService, SkippedEntry};
use crate::report::status::StatusReport;
use crate::service::{InFlight, Service};
use crate::template::answers::Answer;
use crate::template::{Catalogue, Template};

/// Where a service is read from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Its work tree on disk.
    WorkTree(PathBuf),
    /// A directory (`""`: the root) of a git ref's tree.
    Git { tree: Rc<RefTree>, dir: String },
}

impl Source {
    /// How reports name it: the directory, or `REPO@REF` and `:DIR` inside a monorepo.
    pub fn location(&self) -> String {
        match self {
            Source::WorkTree(dir) => dir.display().to_string(),
            Source::Git { tree, dir } => Source::location_in(tree, dir),
        }
    }

    fn location_in(tree: &RefTree, dir: &str) -> String {
        let at = format!("{}@{}", tree.repo_path.display(), tree.reference);
        if dir.is_empty() {
            at
        } else {
            format!("{at}:{dir}")
        }
    }
}

/// A service to read, and the team the fleet file gives it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub source: Source,
    pub team: Option<String>,
}

/// A place that was not reported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub location: String,
    pub reason: String,
}

/// Every found service's facts on `today`, in the order found (location order), and every
/// place skipped — while finding, or a service that could not be read — in location order.
pub fn gather(
    found: discover::Found,
    catalogue: &Catalogue,
    today: Date,
) -> (Vec<FleetService>, Vec<SkippedEntry>) {
    gather_with(found, catalogue, today, FleetService::new)
}

/// [`gather`], making each service's entry with `make` from its status, the ref it was read
/// from, its team (the fleet file's, else its owner) and the days since the newest release it
/// lacks.
pub fn gather_with<T>(
    found: discover::Found,
    catalogue: &Catalogue,
    today: Date,
    make: impl Fn(StatusReport, Option<String>, Option<String>, Option<i32>) -> T,
) -> (Vec<T>, Vec<SkippedEntry>) {
    let mut services = Vec::new();
    let mut skipped: Vec<SkippedEntry> = found.skipped.into_iter().map(Into::into).collect();
    // Work trees are read on every core (reading files dominates); git refs share their
    // repository handle and blob cache, so they are read here, in order.
    let mut results: Vec<Option<Result<Read>>> = found.entries.iter().map(|_| None).collect();
    let work: Vec<(usize, PathBuf, Option<String>)> = found
        .entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.source {
            Source::WorkTree(dir) => Some((i, dir.clone(), e.team.clone())),
            Source::Git { .. } => None,
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    std::thread::scope(|scope| {
        let workers: Vec<_> = work
            .chunks(work.len().div_ceil(threads).max(1))
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(i, dir, team)| (*i, work_tree(dir, team, catalogue, today)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for worker in workers {
            for (i, result) in worker.join().expect("a fleet worker panicked") {
                results[i] = Some(result);
            }
        }
    });
    let hashed = RefCell::new(HashMap::new());
    for (entry, result) in found.entries.iter().zip(results) {
        let result = match (&entry.source, result) {
            (_, Some(result)) => result,
            (Source::Git { tree, dir }, None) => {
                in_git(tree, dir, &entry.team, catalogue, today, &hashed)
            }
            (Source::WorkTree(_), None) => unreachable!("every work tree was read above"),
        };
        match result {
            Ok((status, reference, team, days)) => {
                services.push(make(status, reference, team, days))
            }
            Err(e) => skipped.push(SkippedEntry {
                location: entry.source.location(),
                reason: one_line(&e.message),
            }),
        }
    }
    skipped.sort_by(|a, b| a.location.cmp(&b.location));
    (services, skipped)
}

/// The facts of the service whose work tree is `dir`.
fn work_tree(
    dir: &Path,
    team: &Option<String>,
    catalogue: &Catalogue,
    today: Date,
) -> Result<Read> {
    let service = Service::locate(Some(dir))?;
    let template = service.template(catalogue)?;
    let status = facts::status(
        &service.manifest,
        template,
        &service,
        dir.display().to_string(),
        &service.in_flight(),
        today,
    )?;
    Ok(row(status, None, team, &service.manifest, template, today))
}

/// The facts of the service in directory `dir` of a git ref's tree; `hashed` caches the
/// SHA-256 of blobs across services.
fn in_git(
    tree: &RefTree,
    dir: &str,
    team: &Option<String>,
    catalogue: &Catalogue,
    today: Date,
    hashed: &RefCell<HashMap<Oid, String>>,
) -> Result<Read> {
    let location = Source::location_in(tree, dir);
    let shown = format!(
        "{}@{}:{}",
        tree.repo_path.display(),
        tree.reference,
        join(dir, manifest::FILE_NAME)
    );
    let in_ref = tree.dir(dir)?;
    let bytes = in_ref
        .read(manifest::FILE_NAME)?
        .ok_or_else(|| Error::new(format!("{shown} does not exist")))?;
    let text = String::from_utf8(bytes).map_err(|_| Error::new(format!("{shown} is not UTF-8")))?;
    let manifest = Manifest::parse(&text, &shown)?;
    let template = template_of(catalogue, &manifest, &shown)?;
    let files = InRef {
        dir: &in_ref,
        hashed,
    };
    let status = facts::status(&manifest, template, &files, location, &InFlight::No, today)?;
    let reference = Some(tree.reference.clone());
    Ok(row(status, reference, team, &manifest, template, today))
}

/// A service's status, the ref it was read from, its team, and the days since the newest release
/// it lacks.
type Read = (StatusReport, Option<String>, Option<String>, Option<i32>);

/// The fleet's row: the status, the team (the fleet file's, else the `owner` answer) and the
/// days since the newest release.
fn row(
    status: StatusReport,
    reference: Option<String>,
    team: &Option<String>,
    manifest: &Manifest,
    template: &Template,
    today: Date,
) -> Read {
    let team = team.clone().or_else(|| owner(manifest));
    let days = days_since_newest_release(template, manifest, today);
    (status, reference, team, days)
}

/// The `owner` answer, the team that owns the service.
pub(crate) fn owner(manifest: &Manifest) -> Option<String> {
    manifest
        .answers
        .iter()
        .find(|(k, _)| k == "owner")
        .map(|(_, a)| match a {
            Answer::String(s) => s.clone(),
            other => other.to_string(),
        })
}

/// Days from the date of the newest release the service lacks to `today`; `None` when it is on
/// the newest.
pub fn days_since_newest_release(
    template: &Template,
    manifest: &Manifest,
    today: Date,
) -> Option<i32> {
    let newest = template.newest();
    if newest.version <= manifest.version {
        return None;
    }
    let released = policy::parse_date(&newest.meta.date)?;
    released.until(today).ok().map(|span| span.get_days())
}

/// The template of a manifest read from git, with its version still embedded.
fn template_of<'c>(
    catalogue: &'c Catalogue,
    manifest: &Manifest,
    shown: &str,
) -> Result<&'c Template> {
    let template = catalogue
        .get(&manifest.template)
        .map_err(|e| e.context(format!("{shown}: [platform] template")))?;
    template
        .release(&manifest.version.to_string())
        .map_err(|e| e.context(shown))?;
    Ok(template)
}

/// A reason on one line: a multi-line message (a TOML parse error with its excerpt) keeps its
/// first line and its last, which says what is wrong.
pub(crate) fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [only] => only.to_string(),
        [first, .., last] => format!("{first}: {last}"),
    }
}

fn join(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

/// A service directory in a git ref's tree, with the SHA-256 of every blob already hashed
/// (services on the same release share most platform files, and a blob id names its content).
struct InRef<'a> {
    dir: &'a TreeDir<'a>,
    hashed: &'a RefCell<HashMap<Oid, String>>,
}

impl ServiceTree for InRef<'_> {
    fn sha256(&self, rel: &str) -> Result<Option<String>> {
        let Some(id) = self.dir.blob_id(rel)? else {
            return Ok(None);
        };
        if let Some(sha) = self.hashed.borrow().get(&id) {
            return Ok(Some(sha.clone()));
        }
        let sha = crate::template::render::sha256_hex(&self.dir.read_blob(rel, id)?);
        self.hashed.borrow_mut().insert(id, sha.clone());
        Ok(Some(sha))
    }
}

impl From<Skipped> for SkippedEntry {
    fn from(s: Skipped) -> Self {
        SkippedEntry {
            location: s.location,
            reason: s.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_line_reason_keeps_its_first_and_last_lines() {
        let toml_error = "f/platform.toml is not valid TOML: TOML parse error at line 1, column 10\n  |\n1 | [platform\n  |          ^\nunclosed table, expected `]`\n";
        assert_eq!(
            one_line(toml_error),
            "f/platform.toml is not valid TOML: TOML parse error at line 1, column 10: unclosed table, expected `]`"
        );
        assert_eq!(one_line("one line"), "one line");
    }

    #[test]
    fn days_since_the_newest_release_only_while_it_is_lacking() {
        let catalogue = Catalogue::load().unwrap();
        let template = catalogue.get("service").unwrap();
        let newest = template.newest();
        let released = policy::parse_date(&newest.meta.date).unwrap();
        let text = |version: &str| {
            format!(
                "[platform]\nschema = 1\ntemplate = \"service\"\nversion = \"{version}\"\ntool_version = \"0.1.0\"\nname = \"x\"\n"
            )
        };
        let today = released.checked_add(jiff::Span::new().days(30)).unwrap();
        let old = Manifest::parse(&text("1.0.0"), "t").unwrap();
        assert_eq!(days_since_newest_release(template, &old, today), Some(30));
        assert_eq!(days_since_newest_release(template, &old, released), Some(0));
        let current = Manifest::parse(&text(&newest.version.to_string()), "t").unwrap();
        assert_eq!(days_since_newest_release(template, &current, today), None);
    }
}
