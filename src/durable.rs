//! Making what a command wrote durable, per file: flush those files' data and the directories
//! whose entries changed — never the whole filesystem.
//!
//! A `syncfs` (what the journal used to do) also waits for every other process's dirty data
//! on that filesystem: an upgrade that takes 15 ms on a quiet disk took 360–870 ms while a build
//! or a copy was writing. `fdatasync` of a file waits for that file's data and the metadata
//! needed to read it back; `fsync` of a directory for its entries (a new name, a rename in or
//! out, a removal). Neither waits for the filesystem's other dirty data (on ext4 with
//! `data=ordered` a commit still writes out other files' blocks allocated in the same
//! transaction, but not the gigabytes a copy left in the page cache, as `syncfs` must).
//!
//! Cost: each flush may wait for a filesystem journal commit and a disk cache flush. The files
//! of one batch are flushed concurrently, from a few threads: every file's write-out starts at
//! once instead of one after the other, and flushes that wait for the same journal transaction
//! share one commit (jbd2's and XFS's group commit) — the effect git's `core.fsyncMethod =
//! batch` gets from `sync_file_range`, without relying on one file's flush covering another's.
//!
//! On Windows a directory cannot be opened for flushing, and NTFS journals its metadata itself:
//! [`sync_dirs`] does nothing there.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// At most this many flushes run at once.
const MAX_THREADS: usize = 16;

/// Flushes the data of each file in `paths` (`fdatasync`), concurrently; returns once all of
/// them are on disk, or the first error.
pub fn sync_files(paths: &[PathBuf]) -> Result<()> {
    for_each_concurrently(paths, |path| {
        open_for_sync(path)
            .and_then(|f| f.sync_data())
            .map_err(|e| flush_failed(path, e))
    })
}

/// Flushes the entries of each directory in `dirs` (`fsync`), concurrently, each once.
pub fn sync_dirs(dirs: impl IntoIterator<Item = PathBuf>) -> Result<()> {
    let dirs: Vec<PathBuf> = dirs
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if cfg!(windows) {
        return Ok(());
    }
    for_each_concurrently(&dirs, |dir| {
        File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(|e| flush_failed(dir, e))
    })
}

/// Flushes every file and directory below `root`, `root` included: a tree written in a staging
/// directory, before it is renamed into place.
pub fn sync_tree(root: &Path) -> Result<()> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in walkdir::WalkDir::new(root) {
        let entry =
            entry.map_err(|e| Error::new(format!("cannot read {}: {e}", root.display())))?;
        if entry.file_type().is_dir() {
            dirs.push(entry.into_path());
        } else if entry.file_type().is_file() {
            files.push(entry.into_path());
        }
    }
    sync_files(&files)?;
    sync_dirs(dirs)
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn open_for_sync(path: &Path) -> std::io::Result<File> {
    // Windows flushes only through a handle opened for writing; elsewhere a read-only one
    // works, and is all a read-only file (git's objects) allows.
    if cfg!(windows) {
        File::options().write(true).open(path)
    } else {
        File::open(path)
    }
}

fn flush_failed(path: &Path, e: std::io::Error) -> Error {
    Error::new(format!("cannot flush {} to disk: {e}", path.display()))
}

fn for_each_concurrently(items: &[PathBuf], op: impl Fn(&Path) -> Result<()> + Sync) -> Result<()> {
    match items {
        [] => Ok(()),
        [one] => op(one),
        _ => {
            let threads = items.len().min(MAX_THREADS);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let op = &op;
                        s.spawn(move || {
                            items
                                .iter()
                                .skip(t)
                                .step_by(threads)
                                .try_for_each(|p| op(p))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| bail!("a flush thread panicked"))
                    })
                    .collect::<Result<Vec<()>>>()
                    .map(|_| ())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_files_and_dirs_and_names_the_path_that_fails() {
        let t = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for i in 0..40 {
            let p = t.path().join(format!("d{}/f{i}", i % 3));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "x").unwrap();
            files.push(p);
        }
        sync_files(&files).unwrap();
        sync_dirs(files.iter().map(|p| parent_of(p))).unwrap();
        sync_tree(t.path()).unwrap();
        files.push(t.path().join("missing"));
        let err = sync_files(&files).unwrap_err();
        assert!(err.message.contains("missing"), "{}", err.message);
        assert_eq!(parent_of(Path::new("f")), PathBuf::from("."));
    }
}
