//! One run at a time: `new`, `upgrade` (and `--abort`) and `eject` hold an exclusive lock on
//! the service while they change it, so a second run refuses at once instead of mistaking a
//! live upgrade's journal for an interrupted one.
//!
//! The lock is an advisory `flock` (std's `File::try_lock`) on a small lock file that holds the
//! holder's pid, for the message. The operating system drops the lock when the process exits in
//! any way (a crash, `kill -9`, a power cut), so a stale lock never blocks anyone: a lock file
//! nobody holds is simply taken over.
//!
//! Where the lock file lives:
//! - a service: [`FILE_NAME`] at its root, for the length of the run;
//! - `new`, whose directory does not exist yet: beside it, in the nearest directory that
//!   exists, as `.<path>.cargo-platform.lock` (`.orders.cargo-platform.lock` for `new orders`).
//!
//! The holder removes the file before it lets go of the lock, so nothing is left behind to
//! commit; only a crash leaves one, which the next run takes over and removes. (A run that
//! opened the file just before it was removed may then lock a file that no longer has a name:
//! [`acquire`] checks that the file it locked is still the one at the path, and starts over
//! when it is not.) The upgrade's dirty-tree guard ignores the service's own lock file.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// The lock file at a service's root, present only while a run holds it (or after a crash).
pub const FILE_NAME: &str = ".cargo-platform.lock";

/// A held lock; dropping it removes the lock file and releases the lock.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Remove the name first, then unlock (closing the file): see the module docs.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// The process that holds a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Its pid as recorded in the lock file (`None` when it had not written it yet).
    pub pid: Option<u32>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid}"),
            None => f.write_str("pid unknown"),
        }
    }
}

/// Locks the service at `root` for a run that changes it, or refuses when another run holds it.
pub fn service(root: &Path) -> Result<Lock> {
    if !root.is_dir() {
        return Err(Error::new(format!("{} is not a directory", root.display()))
            .hint("pass the service's root directory with --path"));
    }
    let path = root.join(FILE_NAME);
    acquire(&path).map_err(|refused| match refused {
        Refused::Held(holder) => held(holder, &path).hint(
            "if it is an upgrade, its journal is not an interrupted one: do not run `cargo platform upgrade --abort` while it runs",
        ),
        Refused::Io(e) => e,
    })
}

/// Refuses, as [`service`] does, when another run holds the service's lock; takes no lock.
pub fn check_free(root: &Path) -> Result<()> {
    match holder(root) {
        Some(h) => Err(held(h, &root.join(FILE_NAME))),
        None => Ok(()),
    }
}

/// Locks the directory `new` is about to create at `target`, or refuses when another run holds it.
pub fn new_service(target: &Path) -> Result<Lock> {
    let path = new_lock_path(target);
    acquire(&path).map_err(|refused| match refused {
        Refused::Held(holder) => held(holder, &path),
        Refused::Io(e) => e,
    })
}

/// The live process holding the service's lock, if any. Never creates the lock file; probes with
/// a shared lock held for an instant (a run starting at that instant retries, see [`acquire`]).
pub fn holder(root: &Path) -> Option<Holder> {
    let path = root.join(FILE_NAME);
    let file = File::open(&path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(TryLockError::WouldBlock) => Some(read_holder(&path)),
        Err(TryLockError::Error(_)) => None,
    }
}

fn held(holder: Holder, path: &Path) -> Error {
    Error::new(format!(
        "another cargo-platform ({holder}) is changing this service"
    ))
    .hint(format!(
        "wait for it to finish, then run this again (it holds {}, released when it exits)",
        path.display()
    ))
}

enum Refused {
    Held(Holder),
    Io(Error),
}

/// How long a run waits for a lock held only by a momentary probe ([`holder`]) before it
/// concludes that another run holds it.
const PROBE_GRACE: Duration = Duration::from_millis(50);

fn acquire(path: &Path) -> std::result::Result<Lock, Refused> {
    let io = |what: &str, e: std::io::Error| {
        Refused::Io(Error::new(format!(
            "cannot {what} the lock file {}: {e}",
            path.display()
        )))
    };
    let started = std::time::Instant::now();
    loop {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io("create", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) if started.elapsed() < PROBE_GRACE => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(TryLockError::WouldBlock) => return Err(Refused::Held(read_holder(path))),
            Err(TryLockError::Error(e)) => return Err(io("lock", e)),
        }
        if !still_named(&file, path) {
            // Its holder removed it as we opened it: lock the file that is there now.
            continue;
        }
        let pid = std::process::id().to_string();
        file.set_len(0).map_err(|e| io("write", e))?;
        file.write_all(pid.as_bytes()).map_err(|e| io("write", e))?;
        return Ok(Lock {
            file,
            path: path.to_path_buf(),
        });
    }
}

/// Whether `file` is still the file named `path`.
fn still_named(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

fn read_holder(path: &Path) -> Holder {
    // The holder writes its pid right after locking: give it a moment if it is not there yet.
    for _ in 0..10 {
        let mut text = String::new();
        if let Ok(mut f) = File::open(path) {
            let _ = f.read_to_string(&mut text);
        }
        if let Ok(pid) = text.trim().parse() {
            return Holder { pid: Some(pid) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Holder { pid: None }
}

/// `new`'s lock file: in the nearest existing ancestor of `target`, named after the path from
/// there, so two runs creating the same directory meet at the same file.
pub fn new_lock_path(target: &Path) -> PathBuf {
    let target = std::path::absolute(target).unwrap_or_else(|_| target.to_path_buf());
    let mut base = target.parent();
    while let Some(dir) = base {
        if dir.is_dir() {
            break;
        }
        base = dir.parent();
    }
    let base = base.unwrap_or(Path::new("."));
    let rest: Vec<String> = target
        .strip_prefix(base)
        .unwrap_or(&target)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    base.join(format!(".{}.cargo-platform.lock", rest.join("%")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_and_the_file_goes_with_the_lock() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(holder(t.path()), None);
        let lock = service(t.path()).unwrap();
        let me = Some(std::process::id());
        assert_eq!(holder(t.path()), Some(Holder { pid: me }));
        let err = service(t.path()).unwrap_err();
        assert_eq!(
            err.message,
            format!(
                "another cargo-platform (pid {}) is changing this service",
                std::process::id()
            )
        );
        drop(lock);
        assert!(!t.path().join(FILE_NAME).exists(), "no lock file left");
        assert_eq!(holder(t.path()), None);
        drop(service(t.path()).unwrap());
    }

    #[test]
    fn a_stale_lock_file_is_taken_over() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(FILE_NAME), "4194999").unwrap();
        assert_eq!(holder(t.path()), None, "nobody holds it");
        let lock = service(t.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join(FILE_NAME)).unwrap(),
            std::process::id().to_string()
        );
        drop(lock);
        assert!(!t.path().join(FILE_NAME).exists());
    }

    #[test]
    fn new_locks_beside_the_target_in_the_nearest_existing_directory() {
        let t = tempfile::tempdir().unwrap();
        let base = std::path::absolute(t.path()).unwrap();
        assert_eq!(
            new_lock_path(&t.path().join("orders")),
            base.join(".orders.cargo-platform.lock")
        );
        assert_eq!(
            new_lock_path(&t.path().join("a/b/orders")),
            base.join(".a%b%orders.cargo-platform.lock")
        );
        let lock = new_service(&t.path().join("orders")).unwrap();
        assert!(new_service(&t.path().join("orders")).is_err());
        drop(lock);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }
}
