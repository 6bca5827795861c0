//! The one module that talks to git (git2, no OpenSSL).

pub mod campaign;
mod pack;
mod tree;

pub use tree::{Oid, RefTree, TreeDir, is_repository};

use std::path::{Path, PathBuf};

use git2::{Repository, RepositoryInitOptions, Signature};

use crate::error::{Error, Result};

/// The work tree that contains `path` (or its nearest existing ancestor), if any.
pub fn enclosing_work_tree(path: &Path) -> Option<PathBuf> {
    let mut probe = Some(path);
    while let Some(p) = probe {
        if p.exists() {
            break;
        }
        probe = p.parent();
    }
    let start = match probe {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Repository::discover(start)
        .ok()
        .and_then(|repo| repo.workdir().map(Path::to_path_buf))
}

/// The author of a commit and whether it came from git config.
#[derive(Debug, Clone)]
pub struct Author {
    pub name: String,
    pub email: String,
    pub from_config: bool,
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub id: String,
    pub author: Author,
}

const FALLBACK_NAME: &str = "cargo-platform";
const FALLBACK_EMAIL: &str = "cargo-platform@localhost";

/// Initialises a repository in `dir` and commits `files` (relative paths and the exact bytes
/// just written there). The index is built from memory, so nothing is read back from disk.
pub fn init_and_commit(dir: &Path, files: &[(String, &[u8])], message: &str) -> Result<Commit> {
    let fail = |what: &str, e: git2::Error| {
        Error::new(format!("git: {what} in {}: {}", dir.display(), e.message()))
    };
    let mut opts = RepositoryInitOptions::new();
    // No sample hooks from the system template directory: a new service needs none of them.
    opts.mkdir(false).external_template(false);
    let repo =
        Repository::init_opts(dir, &opts).map_err(|e| fail("cannot initialise a repository", e))?;
    // Blobs and trees go into one pack; libgit2 then writes the commit, the branch and the
    // index (with each file's stat data, so `git status` need not re-hash anything).
    let mut pack = pack::Pack::new();
    let mut entries = Vec::with_capacity(files.len());
    let mut tree_entries = Vec::with_capacity(files.len());
    for (path, contents) in files {
        let blob = pack.add(pack::Kind::Blob, contents);
        let meta = fs_err::metadata(dir.join(path))?;
        let entry = index_entry(path, oid(blob), &meta);
        tree_entries.push((path.as_str(), entry.mode, blob));
        entries.push(entry);
    }
    let tree_id = pack.add_tree(&tree_entries)?;
    pack.write(&repo.path().join("objects").join("pack"))?;
    let mut index = repo.index().map_err(|e| fail("cannot open the index", e))?;
    for entry in &entries {
        index.add(entry).map_err(|e| {
            let path = String::from_utf8_lossy(&entry.path);
            fail(&format!("cannot add {path}"), e)
        })?;
    }
    let tree = repo
        .find_tree(oid(tree_id))
        .map_err(|e| fail("cannot read the tree", e))?;
    let (sig, author) = signature(&repo)?;
    crate::fsx::fault("new:git")?;
    let id = repo
        .commit(None, &sig, &sig, message, &tree, &[])
        .map_err(|e| fail("cannot commit", e))?;
    let branch = repo
        .find_reference("HEAD")
        .ok()
        .and_then(|r| r.symbolic_target().ok().flatten().map(str::to_string))
        .unwrap_or_else(|| "refs/heads/main".to_string());
    repo.reference(&branch, id, true, "commit (initial)")
        .map_err(|e| fail("cannot point the branch at the commit", e))?;
    index
        .write()
        .map_err(|e| fail("cannot write the index", e))?;
    Ok(Commit {
        id: id.to_string(),
        author,
    })
}

fn oid(id: pack::ObjectId) -> git2::Oid {
    git2::Oid::from_bytes(&id.0).expect("20 bytes make an object id")
}

/// An index entry with the file's stat data, so `git status` need not re-hash it.
fn index_entry(path: &str, id: git2::Oid, meta: &std::fs::Metadata) -> git2::IndexEntry {
    #[cfg(unix)]
    let (ctime, mtime, dev, ino, uid, gid, mode) = {
        use std::os::unix::fs::MetadataExt;
        let time = |secs: i64, nanos: i64| git2::IndexTime::new(secs as i32, nanos as u32);
        let mode = if meta.mode() & 0o111 != 0 {
            pack::MODE_EXECUTABLE
        } else {
            pack::MODE_FILE
        };
        (
            time(meta.ctime(), meta.ctime_nsec()),
            time(meta.mtime(), meta.mtime_nsec()),
            meta.dev() as u32,
            meta.ino() as u32,
            meta.uid(),
            meta.gid(),
            mode,
        )
    };
    #[cfg(not(unix))]
    let (ctime, mtime, dev, ino, uid, gid, mode) = (
        git2::IndexTime::new(0, 0),
        git2::IndexTime::new(0, 0),
        0,
        0,
        0,
        0,
        pack::MODE_FILE,
    );
    git2::IndexEntry {
        ctime,
        mtime,
        dev,
        ino,
        mode,
        uid,
        gid,
        file_size: meta.len() as u32,
        id,
        flags: path.len().min(0xfff) as u16,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

/// The committer from git config, or the documented fallback.
fn signature(repo: &Repository) -> Result<(Signature<'static>, Author)> {
    match repo.signature() {
        Ok(sig) => {
            let author = Author {
                name: sig.name().unwrap_or(FALLBACK_NAME).to_string(),
                email: sig.email().unwrap_or(FALLBACK_EMAIL).to_string(),
                from_config: true,
            };
            Ok((sig, author))
        }
        Err(_) => {
            let sig = Signature::now(FALLBACK_NAME, FALLBACK_EMAIL).map_err(|e| {
                Error::new(format!("git: cannot make a signature: {}", e.message()))
            })?;
            let author = Author {
                name: FALLBACK_NAME.into(),
                email: FALLBACK_EMAIL.into(),
                from_config: false,
            };
            Ok((sig, author))
        }
    }
}

/// Uncommitted changes (modified, staged or untracked, not ignored) under `dir`, relative to the
/// work tree root. `None` when `dir` is not inside a git work tree.
pub fn dirty_paths(dir: &Path) -> Result<Option<Vec<String>>> {
    let Ok(repo) = Repository::discover(dir) else {
        return Ok(None);
    };
    let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
        return Ok(None);
    };
    let abs_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let workdir = workdir.canonicalize().unwrap_or(workdir);
    let abs_dir = abs_dir.canonicalize().unwrap_or(abs_dir);
    let rel = abs_dir
        .strip_prefix(&workdir)
        .unwrap_or(Path::new(""))
        .to_string_lossy()
        .replace('\\', "/");
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(false)
        .exclude_submodules(true);
    if !rel.is_empty() {
        opts.pathspec(format!("{rel}/"));
    }
    let statuses = repo.statuses(Some(&mut opts)).map_err(|e| {
        Error::new(format!(
            "git: cannot read the status of {}: {}",
            dir.display(),
            e.message()
        ))
    })?;
    // The running command's own lock file is not a change of the team's.
    let own_lock = match rel.as_str() {
        "" => crate::lock::FILE_NAME.to_string(),
        rel => format!("{rel}/{}", crate::lock::FILE_NAME),
    };
    Ok(Some(
        statuses
            .iter()
            .filter(|s| !s.status().is_ignored())
            .filter(|s| s.path() != Ok(own_lock.as_str()))
            .filter_map(|s| s.path().ok().map(str::to_string))
            .collect(),
    ))
}

/// Commits exactly `paths` (relative to `dir`; added if present, removed if gone) on top of HEAD.
pub fn commit_paths(dir: &Path, paths: &[String], message: &str) -> Result<Commit> {
    let fail = |what: &str, e: git2::Error| Error::new(format!("git: {what}: {}", e.message()));
    let repo = Repository::discover(dir).map_err(|e| fail("no repository", e))?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::new("git: the repository has no work tree"))?
        .canonicalize()
        .map_err(|e| Error::new(format!("git: {e}")))?;
    let abs_dir = dir
        .canonicalize()
        .map_err(|e| Error::new(format!("{}: {e}", dir.display())))?;
    let prefix = abs_dir
        .strip_prefix(&workdir)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let mut index = repo.index().map_err(|e| fail("cannot open the index", e))?;
    for p in paths {
        let rel = prefix.join(p);
        if abs_dir.join(p).exists() {
            index
                .add_path(&rel)
                .map_err(|e| fail(&format!("cannot add {p}"), e))?;
        } else {
            let _ = index.remove_path(&rel);
        }
    }
    index
        .write()
        .map_err(|e| fail("cannot write the index", e))?;
    let tree = repo
        .find_tree(
            index
                .write_tree()
                .map_err(|e| fail("cannot write the tree", e))?,
        )
        .map_err(|e| fail("cannot read the tree", e))?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let (sig, author) = signature(&repo)?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = repo
        .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .map_err(|e| fail("cannot commit", e))?;
    Ok(Commit {
        id: id.to_string(),
        author,
    })
}

/// One committed version of a file: the commit's time and the file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRevision {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// The committer's offset from UTC, in minutes.
    pub offset_minutes: i32,
    pub text: String,
}

/// The committed versions of `file` (on HEAD's first-parent line, oldest first), one per commit
/// that changed it. `None` when `file` is not inside a git work tree or there is no commit yet.
pub fn file_revisions(file: &Path) -> Option<Vec<FileRevision>> {
    let dir = file.parent()?;
    let repo = Repository::discover(dir).ok()?;
    let workdir = repo.workdir()?.canonicalize().ok()?;
    let abs = dir.canonicalize().ok()?.join(file.file_name()?);
    let rel = abs.strip_prefix(&workdir).ok()?.to_path_buf();
    let head = repo.head().ok()?.peel_to_commit().ok()?;
    revisions(&repo, head.id(), &rel)
}

/// As [`file_revisions`], for `rel` (relative to the repository root) on the first-parent line
/// of `reference` (a branch, tag or commit) in the repository at `repo_dir` — bare mirrors
/// included, nothing checked out. `None` when there is no such repository or reference.
pub fn file_revisions_at(
    repo_dir: &Path,
    reference: &str,
    rel: &Path,
) -> Option<Vec<FileRevision>> {
    let repo = Repository::open(repo_dir).ok()?;
    let start = repo
        .revparse_single(reference)
        .ok()?
        .peel_to_commit()
        .ok()?;
    revisions(&repo, start.id(), rel)
}

/// The versions of `rel` on the first-parent line from `start`, oldest first (see
/// [`file_revisions`]).
pub(crate) fn revisions(
    repo: &Repository,
    start: git2::Oid,
    rel: &Path,
) -> Option<Vec<FileRevision>> {
    let mut walk = repo.revwalk().ok()?;
    walk.push(start).ok()?;
    walk.simplify_first_parent().ok()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
        .ok()?;
    let mut out = Vec::new();
    let mut last_blob: Option<git2::Oid> = None;
    for id in walk {
        let Ok(commit) = id.and_then(|id| repo.find_commit(id)) else {
            continue;
        };
        let blob = commit
            .tree()
            .ok()
            .and_then(|t| t.get_path(rel).ok())
            .map(|e| e.id());
        if blob == last_blob {
            continue;
        }
        last_blob = blob;
        let Some(blob) = blob else { continue };
        let Some(text) = repo
            .find_blob(blob)
            .ok()
            .and_then(|b| String::from_utf8(b.content().to_vec()).ok())
        else {
            continue;
        };
        let time = commit.committer().when();
        out.push(FileRevision {
            seconds: time.seconds(),
            offset_minutes: time.offset_minutes(),
            text,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits `text` as `dir/platform.toml` at `seconds` (UTC offset `offset` minutes).
    fn commit(repo: &Repository, path: &str, text: &str, seconds: i64, offset: i32) {
        let blob = repo.blob(text.as_bytes()).unwrap();
        let mut index = repo.index().unwrap();
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            file_size: text.len() as u32,
            id: blob,
            flags: path.len() as u16,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index.add(&entry).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::new("t", "t@example.com", &git2::Time::new(seconds, offset)).unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &parents)
            .unwrap();
    }

    #[test]
    fn revisions_of_a_file_oldest_first_one_per_change() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let day = 86_400;
        commit(&repo, "svc/platform.toml", "v1", 10 * day, 0);
        commit(&repo, "other.txt", "x", 11 * day, 0); // does not touch it
        commit(&repo, "svc/platform.toml", "v2", 12 * day, -300);
        let found = file_revisions_at(dir.path(), "HEAD", Path::new("svc/platform.toml")).unwrap();
        let got: Vec<(i64, i32, &str)> = found
            .iter()
            .map(|r| (r.seconds, r.offset_minutes, r.text.as_str()))
            .collect();
        assert_eq!(got, vec![(10 * day, 0, "v1"), (12 * day, -300, "v2")]);
        assert!(
            file_revisions_at(dir.path(), "no-such-ref", Path::new("svc/platform.toml")).is_none()
        );
        assert_eq!(
            file_revisions_at(dir.path(), "HEAD", Path::new("nope.toml")).unwrap(),
            vec![]
        );
    }
}
