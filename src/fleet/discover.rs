//! Finding a fleet's services: walking `--root` trees and the repositories of a fleet file, on
//! disk or in a git ref's tree. Only reads; every place that cannot be read becomes a
//! [`Skipped`] entry with its reason, never an error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use walkdir::WalkDir;

use super::file::{Repository, ServiceGlob};
use super::{Entry, Skipped, Source};
use crate::git::{self, RefTree};
use crate::manifest;

/// Directories never looked into.
const SKIP: [&str; 3] = ["target", ".git", "node_modules"];

/// What was found: services to read, and places skipped with their reason.
#[derive(Debug, Default)]
pub struct Found {
    pub entries: Vec<Entry>,
    pub skipped: Vec<Skipped>,
    /// Every service found, duplicates included (for "nothing found").
    hits: usize,
    /// What each found service is, whatever path led to it: a service under two roots, or
    /// under a root and in the fleet file, is reported once (as first found).
    seen: BTreeSet<(PathBuf, Option<String>, String)>,
}

impl Found {
    fn push(&mut self, entry: Entry) {
        self.hits += 1;
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let identity = match &entry.source {
            Source::WorkTree(dir) => (canonical(dir), None, String::new()),
            Source::Git { tree, dir } => (
                canonical(&tree.repo_path),
                Some(tree.reference.clone()),
                dir.clone(),
            ),
        };
        if self.seen.insert(identity) {
            self.entries.push(entry);
        }
    }

    fn skip(&mut self, location: impl Into<String>, reason: impl Into<String>) {
        let skipped = Skipped {
            location: location.into(),
            reason: reason.into(),
        };
        if !self.skipped.contains(&skipped) {
            self.skipped.push(skipped);
        }
    }

    /// Entries and skipped places sorted by location, for a stable report.
    pub fn sorted(mut self) -> Found {
        self.entries.sort_by_cached_key(|e| e.source.location());
        self.skipped.sort_by(|a, b| a.location.cmp(&b.location));
        self
    }
}

/// Walks `root` for services: in the work tree, or with `reference`, in that ref of every git
/// repository under `root` (the root itself included).
pub fn root(root: &Path, reference: Option<&str>, found: &mut Found) {
    let repo = Repository {
        path: root.to_path_buf(),
        reference: reference.map(str::to_string),
        services: None,
        team: None,
    };
    repository(&repo, found);
}

/// Finds the services of one repository (or tree of repositories) of the fleet.
pub fn repository(repo: &Repository, found: &mut Found) {
    let before = found.hits + found.skipped.len();
    let shown = repo.path.display().to_string();
    match std::fs::metadata(&repo.path) {
        Err(e) => return found.skip(shown, format!("cannot read it: {e}")),
        Ok(meta) if !meta.is_dir() => return found.skip(shown, "not a directory"),
        Ok(_) => {}
    }
    let mut matched = vec![false; repo.services.as_ref().map_or(0, Vec::len)];
    let mut walk = WalkDir::new(&repo.path)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !SKIP.iter().any(|s| e.file_name() == *s));
    while let Some(item) = walk.next() {
        let entry = match item {
            Ok(entry) => entry,
            Err(e) => {
                let at = e.path().unwrap_or(&repo.path).display().to_string();
                let reason = e
                    .io_error()
                    .map_or_else(|| e.to_string(), |io| format!("cannot read it: {io}"));
                found.skip(at, reason);
                continue;
            }
        };
        let path = entry.path();
        if entry.file_type().is_dir() {
            if let Some(reference) = &repo.reference {
                if git::is_repository(path) {
                    walk.skip_current_dir();
                    in_git(repo, path, reference, &mut matched, found);
                }
            } else if path.join("HEAD").is_file() && path.join("objects").is_dir() {
                // A bare repository has no work tree to read: only `--ref` can read it.
                walk.skip_current_dir();
                found.skip(
                    path.display().to_string(),
                    "a bare git repository: pass --ref (or `ref` in the fleet file) to read a ref",
                );
            }
            continue;
        }
        if entry.file_name() != manifest::FILE_NAME {
            continue;
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        if entry.file_type().is_symlink() {
            found.skip(
                path.display().to_string(),
                "a symbolic link: not followed (only manifests inside the tree are read)",
            );
            continue;
        }
        if repo.reference.is_some() {
            found.skip(
                dir.display().to_string(),
                "not in a git repository at or below the root, but a ref was asked for (--ref or `ref`)",
            );
            continue;
        }
        let rel = relative(dir, &repo.path);
        if selected(repo.services.as_deref(), &rel, &mut matched) {
            found.push(Entry {
                source: Source::WorkTree(dir.to_path_buf()),
                team: repo.team.clone(),
            });
        }
    }
    unmatched(repo, &matched, found);
    if found.hits + found.skipped.len() == before {
        found.skip(shown, format!("no {} found", manifest::FILE_NAME));
    }
}

/// The services in `reference` of the git repository at `path`.
fn in_git(
    repo: &Repository,
    path: &Path,
    reference: &str,
    matched: &mut [bool],
    found: &mut Found,
) {
    let tree = match RefTree::open(path, reference) {
        Ok(tree) => Rc::new(tree),
        Err(e) => return found.skip(format!("{}@{reference}", path.display()), e.message),
    };
    let dirs = match tree.dirs_with(manifest::FILE_NAME) {
        Ok(dirs) => dirs,
        Err(e) => return found.skip(format!("{}@{reference}", path.display()), e.message),
    };
    // Globs are relative to the fleet entry's path, which may sit above the repository.
    let prefix = relative(path, &repo.path);
    for dir in dirs {
        let rel = match (prefix.as_str(), dir.as_str()) {
            (".", "") => ".".to_string(),
            (".", d) => d.to_string(),
            (p, "") => p.to_string(),
            (p, d) => format!("{p}/{d}"),
        };
        if selected(repo.services.as_deref(), &rel, matched) {
            found.push(Entry {
                source: Source::Git {
                    tree: Rc::clone(&tree),
                    dir,
                },
                team: repo.team.clone(),
            });
        }
    }
}

/// `dir` relative to `base`, `/`-separated; `.` for `base` itself.
fn relative(dir: &Path, base: &Path) -> String {
    let rel = dir.strip_prefix(base).unwrap_or(dir);
    let text = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    if text.is_empty() {
        ".".to_string()
    } else {
        text
    }
}

/// Whether the service directory `rel` is selected by `globs` (all are, without globs); marks
/// the globs that matched.
fn selected(globs: Option<&[ServiceGlob]>, rel: &str, matched: &mut [bool]) -> bool {
    let Some(globs) = globs else {
        return true;
    };
    let mut any = false;
    for (i, g) in globs.iter().enumerate() {
        if g.matcher.is_match(rel) {
            matched[i] = true;
            any = true;
        }
    }
    any
}

/// A `services` glob that matched no service is listed: the fleet file and the repository
/// disagree.
fn unmatched(repo: &Repository, matched: &[bool], found: &mut Found) {
    let Some(globs) = &repo.services else {
        return;
    };
    let at = match &repo.reference {
        Some(r) => format!("{}@{r}", repo.path.display()),
        None => repo.path.display().to_string(),
    };
    for (g, hit) in globs.iter().zip(matched) {
        if !hit {
            found.skip(
                at.clone(),
                format!(
                    "no service matches `{}` (services in the fleet file)",
                    g.pattern
                ),
            );
        }
    }
}

/// The places to read, from `--root`s and a fleet file's repositories; `reference` (`--ref`)
/// applies to every root and to each repository without its own `ref`.
pub fn all(roots: &[PathBuf], fleet: &[Repository], reference: Option<&str>) -> Found {
    let mut found = Found::default();
    for r in roots {
        root(r, reference, &mut found);
    }
    for repo in fleet {
        let mut repo = repo.clone();
        if repo.reference.is_none() {
            repo.reference = reference.map(str::to_string);
        }
        repository(&repo, &mut found);
    }
    found.sorted()
}

#[cfg(test)]
mod tests {
    use super::*;
    use globset::GlobBuilder;

    fn glob(pattern: &str) -> ServiceGlob {
        ServiceGlob {
            pattern: pattern.to_string(),
            matcher: GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .unwrap()
                .compile_matcher(),
        }
    }

    #[test]
    fn relative_paths_are_slash_separated_and_dot_for_the_base() {
        assert_eq!(relative(Path::new("r/a/b"), Path::new("r")), "a/b");
        assert_eq!(relative(Path::new("r"), Path::new("r")), ".");
        assert_eq!(relative(Path::new("./r/x"), Path::new("./r")), "x");
    }

    #[test]
    fn globs_select_services_and_record_which_matched() {
        let globs = [glob("services/*"), glob("apps/*"), glob(".")];
        let mut matched = [false; 3];
        assert!(selected(Some(&globs), "services/api", &mut matched));
        assert!(!selected(Some(&globs), "services/api/nested", &mut matched));
        assert!(!selected(Some(&globs), "tools/gen", &mut matched));
        assert!(selected(Some(&globs), ".", &mut matched));
        assert_eq!(matched, [true, false, true]);
        assert!(selected(None, "anything", &mut []));
    }

    #[test]
    fn an_unmatched_glob_and_an_empty_tree_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository {
            path: dir.path().to_path_buf(),
            reference: None,
            services: Some(vec![glob("services/*")]),
            team: None,
        };
        let mut found = Found::default();
        repository(&repo, &mut found);
        assert!(found.entries.is_empty());
        let reasons: Vec<&str> = found.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(
            reasons,
            ["no service matches `services/*` (services in the fleet file)"]
        );
        let mut found = Found::default();
        root(dir.path(), None, &mut found);
        assert_eq!(found.skipped[0].reason, "no platform.toml found");
    }
}
