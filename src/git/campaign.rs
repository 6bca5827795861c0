//! A campaign's git work in one repository, without a checkout: read a service from the default
//! branch's tree, write the upgraded tree and its commit into the object database, move the
//! campaign branch (the only visible step, done last), and push it.
//!
//! Nothing here reads or writes the work tree, the index or the stash of the repository.

use std::path::Path;

use git2::build::TreeUpdateBuilder;
use git2::{FileMode, ObjectType, Oid, Repository, Signature, Time, TreeWalkMode, TreeWalkResult};

use crate::error::{Error, Result};
use crate::fsx::Write;

/// Who campaign commits are by: fixed, so the same inputs give the same commit ids.
pub const AUTHOR_NAME: &str = "cargo-platform";
pub const AUTHOR_EMAIL: &str = "platform@localhost";

/// A repository and a commit id as the layers above name them (they never name git2).
pub type Repo = Repository;
pub type CommitId = Oid;

/// Opens the repository at `path` (work tree or bare).
pub fn open(path: &Path) -> Result<Repository> {
    Repository::open(path).map_err(|e| {
        Error::new(format!(
            "{} is not a readable git repository: {}",
            path.display(),
            e.message()
        ))
    })
}

/// Opens the repository at `path` so that every object written through it stays in memory
/// (a dry run: the same computation, nothing on disk). The in-memory backend is owned by the
/// repository's object database from then on, for as long as the repository is open.
pub fn open_in_memory(path: &Path) -> Result<Repository> {
    let repo = open(path)?;
    let odb = repo
        .odb()
        .map_err(|e| fail(&repo, "the object database", e))?;
    odb.add_new_mempack_backend(1000)
        .map_err(|e| fail(&repo, "the object database", e))?;
    drop(odb);
    Ok(repo)
}

/// The work tree of the repository `path` is inside (below its root), and `path` relative to
/// it (`a/b`); `None` when `path` is in no repository's work tree.
pub fn enclosing(path: &Path) -> Option<(std::path::PathBuf, String)> {
    let repo = Repository::discover(path).ok()?;
    let root = repo.workdir()?.canonicalize().ok()?;
    let here = path.canonicalize().ok()?;
    let within = here.strip_prefix(&root).ok()?;
    let parts: Vec<String> = within
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some((root, parts.join("/")))
}

/// The default branch: `origin/HEAD`'s target, else the branch HEAD is on (a bare repository's
/// HEAD too); a detached HEAD without `origin/HEAD` is an error, never a base. Returns the ref as git names it (`refs/remotes/origin/main`, `refs/heads/main`).
pub fn default_branch(repo: &Repository) -> Result<String> {
    if let Ok(origin_head) = repo.find_reference("refs/remotes/origin/HEAD")
        && let Ok(Some(target)) = origin_head.symbolic_target()
    {
        return Ok(target.to_string());
    }
    let head = repo
        .find_reference("HEAD")
        .map_err(|e| fail(repo, "HEAD", e))?;
    match head.symbolic_target() {
        Ok(Some(target)) => Ok(target.to_string()),
        // A detached HEAD is wherever someone last checked out, not a default branch.
        _ => Err(Error::new(format!(
            "{}: HEAD is detached and there is no origin/HEAD, so there is no default branch to \
             start from: give the fleet entry a `ref` (the branch to start from), or check out the \
             default branch there",
            repo_name(repo)
        ))),
    }
}

/// `name` can be a branch (`refs/heads/<name>` is a valid reference name).
pub fn valid_branch_name(name: &str) -> bool {
    git2::Reference::is_valid_name(&format!("refs/heads/{name}"))
}

/// The commit `reference` names.
pub fn resolve<'r>(repo: &'r Repository, reference: &str) -> Result<git2::Commit<'r>> {
    repo.revparse_single(reference)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| fail(repo, reference, e))
}

fn fail(repo: &Repository, what: &str, e: git2::Error) -> Error {
    Error::new(format!(
        "{}: cannot read `{what}`: {}",
        repo_name(repo),
        e.message()
    ))
}

fn repo_name(repo: &Repository) -> String {
    match repo.workdir() {
        Some(dir) => dir.display().to_string(),
        None => repo.path().display().to_string(),
    }
}

/// The service directories (`""`: the root) of `commit`'s tree holding a `file_name`, sorted;
/// `target/`, `.git/` and `node_modules/` are not looked into.
pub fn dirs_with(
    repo: &Repository,
    commit: &git2::Commit<'_>,
    file_name: &str,
) -> Result<Vec<String>> {
    let tree = commit.tree().map_err(|e| fail(repo, "tree", e))?;
    let mut dirs = Vec::new();
    tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
        let name = entry.name().unwrap_or("");
        match entry.kind() {
            Some(ObjectType::Tree) if matches!(name, "target" | ".git" | "node_modules") => {
                TreeWalkResult::Skip
            }
            Some(ObjectType::Blob) if name == file_name => {
                dirs.push(parent.trim_end_matches('/').to_string());
                TreeWalkResult::Ok
            }
            _ => TreeWalkResult::Ok,
        }
    })
    .map_err(|e| fail(repo, "tree", e))?;
    dirs.sort();
    Ok(dirs)
}

/// A file of a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeFile {
    Missing,
    /// A regular file (executable or not), its content.
    File(Vec<u8>),
    /// A symlink, a submodule or a directory: not a regular file.
    Other,
}

/// A service directory of a commit's tree, read as the upgrade planner reads a service.
pub struct TreeDisk<'r> {
    repo: &'r Repository,
    tree: git2::Tree<'r>,
    /// The service directory, `""` for the root.
    dir: String,
}

impl std::fmt::Debug for TreeDisk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TreeDisk({}:{})", self.tree.id(), self.dir)
    }
}

impl<'r> TreeDisk<'r> {
    pub fn new(repo: &'r Repository, commit: &git2::Commit<'r>, dir: &str) -> Result<Self> {
        Ok(TreeDisk {
            repo,
            tree: commit.tree().map_err(|e| fail(repo, "tree", e))?,
            dir: dir.to_string(),
        })
    }

    fn full(&self, rel: &str) -> String {
        join(&self.dir, rel)
    }

    /// The content of the regular file at `rel`, or `None`.
    pub fn read_text(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match self.read(rel)? {
            TreeFile::File(bytes) => Ok(Some(bytes)),
            _ => Ok(None),
        }
    }
}

/// `dir/rel`, either side possibly empty.
pub fn join(dir: &str, rel: &str) -> String {
    match (dir, rel) {
        ("", r) => r.to_string(),
        (d, "") => d.to_string(),
        (d, r) => format!("{d}/{r}"),
    }
}

impl TreeDisk<'_> {
    /// The file at `path` (relative to the service directory).
    pub fn read(&self, path: &str) -> Result<TreeFile> {
        let full = self.full(path);
        let entry = match self.tree.get_path(Path::new(&full)) {
            Ok(entry) => entry,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(TreeFile::Missing),
            Err(e) => return Err(fail(self.repo, &full, e)),
        };
        // Symlinks and submodules are not regular files: never touched.
        let regular = entry.kind() == Some(ObjectType::Blob)
            && matches!(entry.filemode(), 0o100644 | 0o100755);
        if !regular {
            return Ok(TreeFile::Other);
        }
        let blob = self
            .repo
            .find_blob(entry.id())
            .map_err(|e| fail(self.repo, &full, e))?;
        Ok(TreeFile::File(blob.content().to_vec()))
    }

    /// Regular files under `dir` (relative to the service directory), recursively, sorted;
    /// `target/` and `.git/` are not entered.
    pub fn list(&self, dir: &str) -> Result<Vec<String>> {
        let full = self.full(dir);
        let sub = if full.is_empty() {
            self.tree.clone()
        } else {
            match self.tree.get_path(Path::new(&full)) {
                Ok(e) if e.kind() == Some(ObjectType::Tree) => self
                    .repo
                    .find_tree(e.id())
                    .map_err(|e| fail(self.repo, &full, e))?,
                Ok(_) => return Ok(Vec::new()),
                Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(fail(self.repo, &full, e)),
            }
        };
        let mut out = Vec::new();
        sub.walk(TreeWalkMode::PreOrder, |parent, entry| {
            let name = entry.name().unwrap_or("");
            match entry.kind() {
                Some(ObjectType::Tree) if matches!(name, "target" | ".git") => TreeWalkResult::Skip,
                Some(ObjectType::Blob) => {
                    out.push(join(dir, &format!("{parent}{name}")));
                    TreeWalkResult::Ok
                }
                _ => TreeWalkResult::Ok,
            }
        })
        .map_err(|e| fail(self.repo, &full, e))?;
        out.sort();
        Ok(out)
    }
}

/// What a campaign commit is made of.
#[derive(Debug)]
pub struct NewCommit<'a> {
    /// The service directory in the repository (`""`: the root).
    pub dir: &'a str,
    /// The upgrade's writes, relative to the service directory, platform.toml included.
    pub writes: &'a [Write],
    pub message: &'a str,
    /// The day the upgrade is recorded on: the commit is authored at 00:00 UTC that day, and
    /// committed then or at `base`'s commit time, whichever is later (never before its parent).
    pub date: jiff::civil::Date,
}

/// Writes the blobs, trees and the commit of `change` on top of `base` into the object database
/// (no ref moves, no checkout) and returns the commit id. The author and committer are fixed and
/// dated with `base`'s committer time, so the same base and change give the same id.
pub fn write_commit(
    repo: &Repository,
    base: &git2::Commit<'_>,
    change: &NewCommit<'_>,
) -> Result<Oid> {
    let base_tree = base.tree().map_err(|e| fail(repo, "tree", e))?;
    let mut update = TreeUpdateBuilder::new();
    for w in change.writes {
        let full = join(change.dir, w.path());
        match w {
            Write::Put { contents, .. } => {
                let id = repo.blob(contents).map_err(|e| fail(repo, &full, e))?;
                // An executable file stays executable.
                let mode = match base_tree.get_path(Path::new(&full)) {
                    Ok(e) if e.filemode() == 0o100755 => FileMode::BlobExecutable,
                    _ => FileMode::Blob,
                };
                update.upsert(full.as_str(), id, mode);
            }
            Write::Remove { .. } => {
                update.remove(full.as_str());
            }
        }
    }
    let tree_id = update
        .create_updated(repo, &base_tree)
        .map_err(|e| fail(repo, "the upgraded tree", e))?;
    let tree = repo.find_tree(tree_id).map_err(|e| fail(repo, "tree", e))?;
    let authored = change
        .date
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| Error::new(format!("the campaign's date {}: {e}", change.date)))?
        .timestamp()
        .as_second();
    let parent = base.committer().when();
    let committed = match parent.seconds() > authored {
        true => Time::new(parent.seconds(), parent.offset_minutes()),
        false => Time::new(authored, 0),
    };
    let sign = |when: &Time| {
        Signature::new(AUTHOR_NAME, AUTHOR_EMAIL, when).map_err(|e| fail(repo, "signature", e))
    };
    repo.commit(
        None,
        &sign(&Time::new(authored, 0))?,
        &sign(&committed)?,
        change.message,
        &tree,
        &[base],
    )
    .map_err(|e| fail(repo, "the campaign commit", e))
}

/// The commit `refs/heads/<branch>` points at, if the branch exists.
pub fn branch_tip(repo: &Repository, branch: &str) -> Result<Option<Oid>> {
    match repo.find_reference(&format!("refs/heads/{branch}")) {
        Ok(r) => Ok(r.target()),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(fail(repo, branch, e)),
    }
}

/// Whether `tip` is in the history of `base` (a branch merged into it, fast-forward or not).
pub fn merged(repo: &Repository, tip: Oid, base: Oid) -> Result<bool> {
    Ok(tip == base
        || repo
            .graph_descendant_of(base, tip)
            .map_err(|e| fail(repo, &tip.to_string(), e))?)
}

/// The branches under `refs/heads/platform/upgrade-` (names without `refs/heads/`), sorted.
pub fn campaign_branches(repo: &Repository) -> Result<Vec<String>> {
    let refs = repo
        .references_glob("refs/heads/platform/upgrade-*")
        .map_err(|e| fail(repo, "refs/heads/platform/", e))?;
    let mut names: Vec<String> = refs
        .filter_map(|r| r.ok())
        .filter_map(|r| {
            r.name()
                .ok()
                .map(|n| n.trim_start_matches("refs/heads/").to_string())
        })
        .collect();
    names.sort();
    Ok(names)
}

/// The URL of the repository's `origin` remote, if it has one.
pub fn origin_url(repo: &Repository) -> Option<String> {
    repo.find_remote("origin")
        .ok()
        .and_then(|r| r.url().ok().map(str::to_string))
}

/// Commits `a` and `b` make the same change: the same tree on the same parents (their messages
/// may differ).
pub fn same_change(repo: &Repository, a: Oid, b: Oid) -> Result<bool> {
    let find = |id: Oid| {
        repo.find_commit(id)
            .map_err(|e| fail(repo, &id.to_string(), e))
    };
    let (a, b) = (find(a)?, find(b)?);
    Ok(a.tree_id() == b.tree_id() && a.parent_ids().eq(b.parent_ids()))
}

/// Commit `id` is one a campaign wrote: author and committer are the campaign's fixed
/// signature, the message has the campaign's shape, and it has exactly one parent (the default
/// branch's tip it was made on). A commit that is not in the repository is not known to be ours.
pub fn is_campaign_commit(repo: &Repository, id: Oid) -> bool {
    let Ok(c) = repo.find_commit(id) else {
        return false;
    };
    let signed = |s: git2::Signature<'_>| {
        s.name_bytes() == AUTHOR_NAME.as_bytes() && s.email_bytes() == AUTHOR_EMAIL.as_bytes()
    };
    let message = c.message_bytes();
    signed(c.author())
        && signed(c.committer())
        && c.parent_count() == 1
        && message.starts_with(b"Upgrade ")
        && message
            .windows(MESSAGE_MARK.len())
            .any(|w| w == MESSAGE_MARK.as_bytes())
}

/// What every campaign commit message says (after its first line).
pub const MESSAGE_MARK: &str = "(fleet upgrade).";

/// Who made the commits of a campaign branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Its tip is a campaign commit: the campaign may move it.
    Ours,
    /// Someone committed on top of a campaign commit made on `base`.
    OnTopOfOurs { base: Oid },
    /// No campaign commit in its first-parent history (up to 1000 commits back): someone else's
    /// branch of the same name.
    Foreign,
}

/// Where the branch at `tip` stands (see `Standing`).
pub fn standing(repo: &Repository, tip: Oid) -> Result<Standing> {
    if is_campaign_commit(repo, tip) {
        return Ok(Standing::Ours);
    }
    let mut at = repo
        .find_commit(tip)
        .map_err(|e| fail(repo, &tip.to_string(), e))?;
    for _ in 0..1000 {
        let Ok(parent) = at.parent(0) else { break };
        if is_campaign_commit(repo, parent.id()) {
            let base = parent
                .parent_id(0)
                .map_err(|e| fail(repo, &parent.id().to_string(), e))?;
            return Ok(Standing::OnTopOfOurs { base });
        }
        at = parent;
    }
    Ok(Standing::Foreign)
}

/// The work tree that has `refs/heads/<branch>` checked out: the repository's own (not for a bare
/// repository) or one of its `git worktree`s; `None` when no checkout holds it.
pub fn checked_out_in(repo: &Repository, branch: &str) -> Result<Option<std::path::PathBuf>> {
    let name = format!("refs/heads/{branch}");
    let on_it = |r: &Repository| {
        r.find_reference("HEAD")
            .ok()
            .and_then(|h| h.symbolic_target().ok().flatten().map(str::to_string))
            .is_some_and(|t| t == name)
    };
    if let Some(dir) = repo.workdir()
        && on_it(repo)
    {
        return Ok(Some(dir.to_path_buf()));
    }
    let names = repo.worktrees().map_err(|e| fail(repo, "worktrees", e))?;
    for wt in names.iter().filter_map(|n| n.ok().flatten()) {
        let Ok(wt) = repo.find_worktree(wt) else {
            continue;
        };
        if let Ok(r) = Repository::open_from_worktree(&wt)
            && on_it(&r)
        {
            return Ok(Some(wt.path().to_path_buf()));
        }
    }
    Ok(None)
}

/// Points `refs/heads/<branch>` at `commit`, only if it still points at `expected` (`None`: it
/// must not exist), so two runs never overwrite each other's work unseen.
pub fn set_branch(
    repo: &Repository,
    branch: &str,
    commit: Oid,
    expected: Option<Oid>,
) -> Result<()> {
    let name = format!("refs/heads/{branch}");
    let log = format!("cargo-platform fleet upgrade: {branch}");
    let done = match expected {
        None => repo.reference(&name, commit, false, &log),
        Some(old) => repo.reference_matching(&name, commit, true, old, &log),
    };
    done.map(|_| ()).map_err(|e| {
        Error::new(format!(
            "{}: cannot move branch {branch}: {}",
            repo_name(repo),
            e.message()
        ))
        .hint("another run moved it at the same time? run the campaign again")
    })
}

/// Where a pushed branch stands.
#[derive(Debug)]
pub enum Pushed {
    /// The remote had it already.
    Already,
    Pushed,
    /// The remote branch carries commits this campaign did not write: not overwritten (why, and
    /// what to do).
    NotOurs(Error),
}

/// Pushes `refs/heads/<branch>` to `remote` (a remote's name or a URL/path), with lease: the
/// remote branch must be absent, already at `commit`, or at a campaign commit (the lease is the
/// remote tip seen, and the server refuses the push if it moved since); anything else is someone
/// else's work, left alone (`NotOurs`). An `Err` is a push
/// that failed for the operator's reasons (no such remote, credentials, network).
///
/// Runs the `git` command line, not libgit2: this build of libgit2 has neither HTTPS nor SSH
/// transports, and `git push` brings the user's credential helpers and SSH setup, and a real
/// `--force-with-lease` (the server refuses the update if the branch moved after it was read).
pub fn push(repo: &Repository, remote: &str, branch: &str, commit: Oid) -> Result<Pushed> {
    let name = format!("refs/heads/{branch}");
    let listed = git_cli(repo, &["ls-remote", remote, &name])
        .map_err(|e| Error::new(format!("cannot push {branch} to {remote}: {e}")))?;
    let current = listed.lines().find_map(|l| {
        l.split_once('\t')
            .filter(|(_, r)| *r == name)
            .map(|(o, _)| o.to_string())
    });
    let current = match current.as_deref().map(Oid::from_str) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            return Err(Error::new(format!(
                "{remote}: `git ls-remote` printed an unexpected line for {name}"
            )));
        }
    };
    match current {
        Some(c) if c == commit => return Ok(Pushed::Already),
        Some(c) if !is_campaign_commit(repo, c) => {
            return Ok(Pushed::NotOurs(Error::new(format!(
                "{remote}: branch {branch} is at {c}, which this campaign did not write: not overwritten"
            ))
            .hint("someone pushed to the campaign branch; merge or delete it there, then run the campaign again")));
        }
        _ => {}
    }
    let expected = current.map_or_else(String::new, |c| c.to_string());
    git_cli(
        repo,
        &[
            "push",
            "--quiet",
            "--porcelain",
            &format!("--force-with-lease={name}:{expected}"),
            remote,
            &format!("{commit}:{name}"),
        ],
    )
    .map_err(|e| Error::new(format!("cannot push {branch} to {remote}: {e}")))?;
    Ok(Pushed::Pushed)
}

/// Runs `git --git-dir=<repo> <args>`, its stdout, or its stderr's last lines as the error.
fn git_cli(repo: &Repository, args: &[&str]) -> std::result::Result<String, String> {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo.path())
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("cannot run git (needed for --push): {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "Done")
        .collect();
    Err(format!("`git {}` failed: {}", args[0], said.join("; ")))
}

/// Every file of `commit`'s tree (path, content), for materialising it to run `cargo check`.
pub fn files_of(repo: &Repository, commit: Oid, dir: &str) -> Result<Vec<(String, Vec<u8>, bool)>> {
    let c = repo
        .find_commit(commit)
        .map_err(|e| fail(repo, &commit.to_string(), e))?;
    let disk = TreeDisk::new(repo, &c, dir)?;
    let mut out = Vec::new();
    for rel in disk.list("")? {
        let exec = disk
            .tree
            .get_path(Path::new(&disk.full(&rel)))
            .is_ok_and(|e| e.filemode() == 0o100755);
        if let TreeFile::File(bytes) = disk.read(&rel)? {
            out.push((rel, bytes, exec));
        }
    }
    Ok(out)
}
