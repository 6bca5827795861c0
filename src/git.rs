//! The one module that talks to git (git2, no OpenSSL).

use std::path::{Path, PathBuf};

use git2::{IndexAddOption, Repository, RepositoryInitOptions, Signature};

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

/// Initialises a repository in `dir`, adds every file (honouring .gitignore) and commits.
pub fn init_and_commit(dir: &Path, message: &str) -> Result<Commit> {
    let fail = |what: &str, e: git2::Error| Error::new(format!("git: {what} in {}: {}", dir.display(), e.message()));
    let mut opts = RepositoryInitOptions::new();
    opts.mkdir(false);
    let repo = Repository::init_opts(dir, &opts).map_err(|e| fail("cannot initialise a repository", e))?;
    let mut index = repo.index().map_err(|e| fail("cannot open the index", e))?;
    index
        .add_all(["*"], IndexAddOption::DEFAULT, None)
        .map_err(|e| fail("cannot add files", e))?;
    index.write().map_err(|e| fail("cannot write the index", e))?;
    let tree_id = index.write_tree().map_err(|e| fail("cannot write the tree", e))?;
    let tree = repo.find_tree(tree_id).map_err(|e| fail("cannot read the tree", e))?;
    let (sig, author) = match repo.signature() {
        Ok(sig) => {
            let author = Author {
                name: sig.name().unwrap_or(FALLBACK_NAME).to_string(),
                email: sig.email().unwrap_or(FALLBACK_EMAIL).to_string(),
                from_config: true,
            };
            (sig, author)
        }
        Err(_) => {
            let sig = Signature::now(FALLBACK_NAME, FALLBACK_EMAIL).map_err(|e| fail("cannot make a signature", e))?;
            let author = Author {
                name: FALLBACK_NAME.into(),
                email: FALLBACK_EMAIL.into(),
                from_config: false,
            };
            (sig, author)
        }
    };
    crate::fsx::fault("new:git")?;
    let id = repo
        .commit(Some("HEAD"), &sig, &sig, message, &tree, &[])
        .map_err(|e| fail("cannot commit", e))?;
    Ok(Commit {
        id: id.to_string(),
        author,
    })
}
