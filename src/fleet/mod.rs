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
    let locations: Vec<String> = found.entries.iter().map(|e| e.source.location()).collect();
    let results = read_all(found.entries, catalogue, today);
    for (location, result) in locations.into_iter().zip(results) {
        match result {
            Ok((status, reference, team, days)) => {
                services.push(make(status, reference, team, days))
            }
            Err(e) => skipped.push(SkippedEntry {
                location,
                reason: one_line(&e.message),
            }),
        }
    }
    skipped.sort_by(|a, b| a.location.cmp(&b.location));
    (services, skipped)
}

/// What one worker reads: a work tree, or every service of one git ref's tree (they share its
/// repository handle and its cache of blob hashes).
enum Job {
    WorkTree {
        at: usize,
        dir: PathBuf,
        team: Option<String>,
    },
    Git {
        tree: RefTree,
        services: Vec<InTree>,
    },
}

/// A service in a git ref's tree: its entry's index, its directory, the fleet file's team.
type InTree = (usize, String, Option<String>);

/// Every entry read, in order, on every core (reading files and blobs and hashing them is
/// the cost): each worker takes the next job until none is left.
fn read_all(entries: Vec<Entry>, catalogue: &Catalogue, today: Date) -> Vec<Result<Read>> {
    let n = entries.len();
    let mut jobs = Vec::new();
    let mut trees: Vec<(Rc<RefTree>, Vec<InTree>)> = Vec::new();
    let mut group: HashMap<*const RefTree, usize> = HashMap::new();
    for (at, entry) in entries.into_iter().enumerate() {
        match entry.source {
            Source::WorkTree(dir) => jobs.push(Job::WorkTree {
                at,
                dir,
                team: entry.team,
            }),
            Source::Git { tree, dir } => match group.get(&Rc::as_ptr(&tree)) {
                Some(&i) => trees[i].1.push((at, dir, entry.team)),
                None => {
                    group.insert(Rc::as_ptr(&tree), trees.len());
                    trees.push((tree, vec![(at, dir, entry.team)]));
                }
            },
        }
    }
    let mut results: Vec<Option<Result<Read>>> = (0..n).map(|_| None).collect();
    for (tree, services) in trees {
        // The entries were the other owners of the tree: it is this job's alone now.
        match Rc::try_unwrap(tree) {
            Ok(tree) => jobs.push(Job::Git { tree, services }),
            Err(shared) => {
                let opened = RefTree::open(&shared.repo_path, &shared.reference);
                match opened {
                    Ok(tree) => jobs.push(Job::Git { tree, services }),
                    Err(e) => {
                        for (at, _, _) in services {
                            results[at] = Some(Err(Error::new(e.message.clone())));
                        }
                    }
                }
            }
        }
    }
    // Biggest first, so that no worker is left with a large repository at the end.
    jobs.sort_by_key(|j| {
        std::cmp::Reverse(match j {
            Job::Git { services, .. } => services.len(),
            Job::WorkTree { .. } => 0,
        })
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let queue = std::sync::Mutex::new(jobs.into_iter());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let hashed = RefCell::new(HashMap::new());
                    let mut read = Vec::new();
                    loop {
                        let job = queue.lock().expect("a fleet worker panicked").next();
                        match job {
                            None => break,
                            Some(Job::WorkTree { at, dir, team }) => {
                                read.push((at, work_tree(&dir, &team, catalogue, today)));
                            }
                            Some(Job::Git { tree, services }) => {
                                for (at, dir, team) in services {
                                    let one = in_git(&tree, &dir, &team, catalogue, today, &hashed);
                                    read.push((at, one));
                                }
                            }
                        }
                    }
                    read
                })
            })
            .collect();
        for worker in workers {
            for (at, result) in worker.join().expect("a fleet worker panicked") {
                results[at] = Some(result);
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every entry was read"))
        .collect()
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
    // A schema-1 manifest's history comes from the ref's history of it, as a work tree's
    // comes from HEAD's.
    let manifest = Manifest::parse_with(&text, &shown, || {
        tree.file_revisions(&join(dir, manifest::FILE_NAME))
            .map(crate::service::dated_revisions)
    })?;
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
