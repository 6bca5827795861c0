//! Reading a service from a git ref's tree without a checkout (bare mirrors work): the fleet's
//! `--ref`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use git2::Oid;
use git2::{ObjectType, Repository, TreeWalkMode, TreeWalkResult};

use crate::error::{Error, Result};

/// Directories never looked into for services (as on disk).
const SKIP: [&str; 3] = ["target", ".git", "node_modules"];

/// `dir` is a git repository: a work tree with `.git`, or a bare repository (a mirror).
pub fn is_repository(dir: &Path) -> bool {
    dir.join(".git").exists()
        || (dir.join("HEAD").is_file() && dir.join("objects").is_dir() && dir.join("refs").is_dir())
}

/// The tree of one ref of one repository.
pub struct RefTree {
    repo: Repository,
    tree: Oid,
    /// The tree id of every directory [`RefTree::dirs_with`] walked through, so that
    /// [`RefTree::dir`] need not parse the root tree again (a monorepo's root can be large).
    dirs: RefCell<HashMap<String, Oid>>,
    /// The repository, as given.
    pub repo_path: PathBuf,
    /// The ref, as given (a branch, tag, commit, or any revision git understands).
    pub reference: String,
}

impl std::fmt::Debug for RefTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RefTree({}@{})",
            self.repo_path.display(),
            self.reference
        )
    }
}

impl RefTree {
    /// Opens `repo` (work tree or bare) and resolves `reference` to its tree.
    pub fn open(repo_path: &Path, reference: &str) -> Result<RefTree> {
        // Reading only: libgit2 re-hashes (SHA-1, with collision detection) every object it
        // inflates to check it against its id, which was a sixth of a fleet report's time over
        // 300 bare mirrors (perf). git itself does not verify on read either (`fsck` does).
        git2::opts::strict_hash_verification(false);
        let repo = Repository::open(repo_path).map_err(|e| {
            Error::new(format!(
                "{} is not a readable git repository: {}",
                repo_path.display(),
                e.message()
            ))
        })?;
        let tree = repo
            .revparse_single(reference)
            .and_then(|object| object.peel_to_tree())
            .map_err(|e| {
                Error::new(format!(
                    "{} has no ref `{reference}`: {}",
                    repo_path.display(),
                    e.message()
                ))
            })?
            .id();
        Ok(RefTree {
            repo,
            tree,
            dirs: RefCell::new(HashMap::new()),
            repo_path: repo_path.to_path_buf(),
            reference: reference.to_string(),
        })
    }

    /// The directory `dir` (`/`-separated, `""` for the root) of the tree, parsed once so that
    /// reading many files in it does not parse the root tree again for each.
    pub fn dir(&self, dir: &str) -> Result<TreeDir<'_>> {
        let known = self.dirs.borrow().get(dir).copied();
        let id = match known {
            Some(id) => id,
            None if dir.is_empty() => self.tree,
            None => {
                let root = self
                    .repo
                    .find_tree(self.tree)
                    .map_err(|e| self.fail(dir, e))?;
                root.get_path(Path::new(dir))
                    .map_err(|e| self.fail(dir, e))?
                    .id()
            }
        };
        let tree = self.repo.find_tree(id).map_err(|e| self.fail(dir, e))?;
        Ok(TreeDir {
            owner: self,
            tree,
            dir: dir.to_string(),
        })
    }

    /// The committed versions of `rel` (relative to the repository root) on the first-parent
    /// line of the ref, oldest first, as [`super::file_revisions`] has them for a work tree;
    /// `None` when the ref names no commit (a tree) or its history cannot be read.
    pub fn file_revisions(&self, rel: &str) -> Option<Vec<super::FileRevision>> {
        let commit = self
            .repo
            .revparse_single(&self.reference)
            .ok()?
            .peel_to_commit()
            .ok()?;
        super::revisions(&self.repo, commit.id(), Path::new(rel))
    }

    fn fail(&self, rel: &str, e: git2::Error) -> Error {
        Error::new(format!(
            "cannot read {rel} at {}@{}: {}",
            self.repo_path.display(),
            self.reference,
            e.message()
        ))
    }

    /// The directories (relative, `/`-separated, `""` for the root) whose `file_name` is a file
    /// in the tree, sorted; `target/`, `.git/` and `node_modules/` are not looked into.
    pub fn dirs_with(&self, file_name: &str) -> Result<Vec<String>> {
        let fail = |e: git2::Error| {
            Error::new(format!(
                "cannot walk {}@{}: {}",
                self.repo_path.display(),
                self.reference,
                e.message()
            ))
        };
        let tree = self.repo.find_tree(self.tree).map_err(fail)?;
        let mut dirs = Vec::new();
        let mut ids = self.dirs.borrow_mut();
        tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
            let name = entry.name().unwrap_or("");
            match entry.kind() {
                Some(ObjectType::Tree) if SKIP.contains(&name) => TreeWalkResult::Skip,
                Some(ObjectType::Tree) => {
                    ids.insert(format!("{parent}{name}"), entry.id());
                    TreeWalkResult::Ok
                }
                Some(ObjectType::Blob) if name == file_name => {
                    dirs.push(parent.trim_end_matches('/').to_string());
                    TreeWalkResult::Ok
                }
                _ => TreeWalkResult::Ok,
            }
        })
        .map_err(fail)?;
        dirs.sort();
        Ok(dirs)
    }
}

/// One directory of a ref's tree.
pub struct TreeDir<'r> {
    owner: &'r RefTree,
    tree: git2::Tree<'r>,
    dir: String,
}

impl std::fmt::Debug for TreeDir<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TreeDir({:?}, {})", self.owner, self.dir)
    }
}

impl TreeDir<'_> {
    /// The id of the blob at `rel` (relative to this directory), or `None` when there is no file
    /// there. Equal ids are equal contents, in any repository: callers may cache what they
    /// derive from a blob by its id.
    pub fn blob_id(&self, rel: &str) -> Result<Option<Oid>> {
        let entry = match self.tree.get_path(Path::new(rel)) {
            Ok(entry) => entry,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(self.owner.fail(&self.path(rel), e)),
        };
        Ok((entry.kind() == Some(ObjectType::Blob)).then(|| entry.id()))
    }

    /// The content of blob `id`, found at `rel` (named in errors).
    pub fn read_blob(&self, rel: &str, id: Oid) -> Result<Vec<u8>> {
        let blob = self
            .owner
            .repo
            .find_blob(id)
            .map_err(|e| self.owner.fail(&self.path(rel), e))?;
        Ok(blob.content().to_vec())
    }

    /// The file at `rel`, or `None` when there is none.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match self.blob_id(rel)? {
            Some(id) => self.read_blob(rel, id).map(Some),
            None => Ok(None),
        }
    }

    fn path(&self, rel: &str) -> String {
        if self.dir.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.dir)
        }
    }
}
