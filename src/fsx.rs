//! Files written atomically: a new service's directory appears whole or not at all (`new`), a
//! single file is replaced by a rename (platform.toml on `eject`). An upgrade's many files go
//! through [`crate::journal`] (all-or-nothing, with `--abort`); git objects through [`crate::git`].

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One change to a service tree, relative to its root (`/`-separated): what an upgrade plans and
/// the journal applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put { path: String, contents: Vec<u8> },
    Remove { path: String },
}

impl Write {
    pub fn path(&self) -> &str {
        match self {
            Write::Put { path, .. } | Write::Remove { path } => path,
        }
    }
}

/// Test-only fault injection: when `CARGO_PLATFORM_FAULT` equals `point`, fail there. Lets the
/// test suite prove that a failure at any step leaves nothing half-written.
pub fn fault(point: &str) -> Result<()> {
    match std::env::var("CARGO_PLATFORM_FAULT") {
        Ok(p) if p == point => Err(Error::new(format!(
            "injected fault at `{point}` (CARGO_PLATFORM_FAULT)"
        ))),
        _ => Ok(()),
    }
}

/// Refuses a target that exists and is not an empty directory.
pub fn check_target_free(target: &Path) -> Result<()> {
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::new(format!(
            "cannot inspect {}: {e}",
            target.display()
        ))),
        Ok(meta) if !meta.is_dir() => Err(Error::new(format!(
            "{} already exists and is not a directory",
            target.display()
        ))
        .hint("choose another name or --path")),
        Ok(_) => {
            let mut entries = fs_err::read_dir(target)?;
            if entries.next().is_some() {
                Err(Error::new(format!(
                    "{} already exists and is not empty",
                    target.display()
                ))
                .hint("choose another name or --path, or remove the directory first"))
            } else {
                Ok(())
            }
        }
    }
}

/// Creates `target` holding `files` (relative paths with `/` separators), all or nothing:
/// everything is written into a hidden temporary directory beside the target, `finish` runs
/// inside it (e.g. git init and commit), and only then is it renamed into place. On any failure
/// the temporary directory — and any parent directories this call created — are removed.
pub fn create_dir_atomically<T>(
    target: &Path,
    files: &[(String, &[u8])],
    finish: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    check_target_free(target)?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let created_parent = create_missing_parents(&parent)?;
    let result = write_and_rename(target, &parent, files, finish);
    if let Some(top) = created_parent.as_ref().filter(|_| result.is_err()) {
        let _ = std::fs::remove_dir_all(top);
    }
    let out = result?;
    // The new name is on disk, and so is each parent directory created for it.
    let mut dirs = vec![parent.clone()];
    if let Some(top) = &created_parent {
        let mut d = parent.as_path();
        loop {
            dirs.push(crate::durable::parent_of(d));
            match d.parent() {
                Some(p) if d != top.as_path() && !p.as_os_str().is_empty() => d = p,
                _ => break,
            }
        }
    }
    crate::durable::sync_dirs(dirs).map_err(|e| {
        e.hint(format!(
            "{} was created, but may not survive a power cut",
            target.display()
        ))
    })?;
    Ok(out)
}

fn write_and_rename<T>(
    target: &Path,
    parent: &Path,
    files: &[(String, &[u8])],
    finish: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let base = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{base}.cargo-platform-"))
        .tempdir_in(parent)
        .map_err(|e| {
            Error::new(format!(
                "cannot create a temporary directory in {}: {e}",
                parent.display()
            ))
        })?;
    for (i, (rel, contents)) in files.iter().enumerate() {
        let path = staging.path().join(rel);
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        fs_err::write(&path, contents)?;
        if i == files.len() / 2 {
            fault("new:write")?;
        }
    }
    let out = finish(staging.path())?;
    // Every file and directory of the new tree (its git repository too) is on disk before the
    // tree gets its name: a crash never leaves a service with torn or empty files.
    crate::durable::sync_tree(staging.path())?;
    fault("new:rename")?;
    // rename(2) replaces an empty directory; elsewhere remove it first.
    if cfg!(not(unix)) && target.is_dir() {
        fs_err::remove_dir(target)?;
    }
    std::fs::rename(staging.path(), target).map_err(|e| {
        Error::new(format!(
            "cannot move the new service into {}: {e}",
            target.display()
        ))
        .hint("nothing was written; check that the directory is free and on the same filesystem")
    })?;
    // The directory now lives at `target`; do not let the guard delete it.
    let _ = staging.keep();
    Ok(out)
}

/// Replaces (or creates) the file at `path` with `bytes`, atomically: a temporary file in the
/// same directory is written, fsynced and renamed over `path`, so readers see the old content or
/// the new, never a torn file. An existing file keeps its permissions.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.cargo-platform-"))
        .tempfile_in(dir)
        .map_err(|e| {
            Error::new(format!(
                "cannot create a temporary file in {}: {e}",
                dir.display()
            ))
        })?;
    let failed = |e: std::io::Error| {
        Error::new(format!(
            "cannot write a temporary file beside {}: {e}",
            path.display()
        ))
    };
    tmp.write_all(bytes).map_err(failed)?;
    match std::fs::metadata(path) {
        Ok(meta) => tmp
            .as_file()
            .set_permissions(meta.permissions())
            .map_err(failed)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let perms = std::fs::Permissions::from_mode(0o644);
                tmp.as_file().set_permissions(perms).map_err(failed)?;
            }
        }
        Err(e) => {
            return Err(Error::new(format!(
                "cannot inspect {}: {e}",
                path.display()
            )));
        }
    }
    tmp.as_file().sync_all().map_err(failed)?;
    fault("write:rename")?;
    tmp.persist(path).map_err(|e| {
        Error::new(format!("cannot replace {}: {}", path.display(), e.error))
            .hint(format!("{} was left as it was", path.display()))
    })?;
    // Make the rename itself durable: the file's data was flushed before it got the name.
    crate::durable::sync_dirs([dir.to_path_buf()]).map_err(|e| {
        e.hint(format!(
            "{} was replaced, but may not survive a power cut",
            path.display()
        ))
    })
}

/// Creates the missing ancestors of `dir`; returns the topmost one created, to undo on failure.
fn create_missing_parents(dir: &Path) -> Result<Option<PathBuf>> {
    let mut missing = None;
    let mut cur = Some(dir);
    while let Some(p) = cur {
        if p.as_os_str().is_empty() || p.exists() {
            break;
        }
        missing = Some(p.to_path_buf());
        cur = p.parent();
    }
    if missing.is_some() {
        fs_err::create_dir_all(dir)?;
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_everything_or_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("a/b/svc");
        let files = vec![("src/main.rs".to_string(), &b"fn main() {}\n"[..])];
        let err = create_dir_atomically(&target, &files, |_| -> Result<()> {
            Err(Error::new("boom"))
        });
        assert!(err.is_err());
        assert!(
            !tmp.path().join("a").exists(),
            "created parents are removed on failure"
        );
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "no staging dir left"
        );

        create_dir_atomically(&target, &files, |dir| {
            assert!(dir.join("src/main.rs").exists());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            std::fs::read(target.join("src/main.rs")).unwrap(),
            b"fn main() {}\n"
        );
        assert_eq!(
            std::fs::read_dir(target.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn write_file_atomically_replaces_keeps_permissions_and_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("platform.toml");
        write_file_atomically(&file, b"one\n").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"one\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
                0o644
            );
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        write_file_atomically(&file, b"two\n").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
                0o640
            );
        }
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        let err = write_file_atomically(&tmp.path().join("missing/dir/f"), b"x").unwrap_err();
        assert!(err.message.contains("missing/dir"), "{}", err.message);
    }

    #[test]
    fn empty_target_is_replaced_but_non_empty_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("svc");
        std::fs::create_dir(&target).unwrap();
        let files = vec![("a".to_string(), &b"x"[..])];
        create_dir_atomically(&target, &files, |_| Ok(())).unwrap();
        let err = create_dir_atomically(&target, &files, |_| Ok(())).unwrap_err();
        assert!(err.message.contains("not empty"));
        std::fs::write(tmp.path().join("file"), "x").unwrap();
        let err = check_target_free(&tmp.path().join("file")).unwrap_err();
        assert!(err.message.contains("not a directory"));
    }
}
