//! All-or-nothing changes to a service tree: stage everything, write a journal, apply with
//! renames, then drop the journal. A crash at any moment leaves either the old tree or a
//! journal from which `cargo platform upgrade --abort` restores the old tree exactly.
//!
//! # Durability, and what a crash at each point leaves
//!
//! Only the change's own files and the directories whose entries it changes are flushed (see
//! [`crate::durable`]), in this order:
//!
//! 1. Stage: every new content is written to `new/<i>` in the journal directory, and the journal
//!    to `journal.json.tmp`; then the data of all of them is flushed (`fdatasync`, concurrently).
//!    *Crash here:* no `journal.json`, the tree untouched; `--abort` (or `status`) sees a journal
//!    directory without a journal and just removes it.
//! 2. Commit the journal: `journal.json.tmp` is renamed to `journal.json`, then the directories
//!    `new/`, the journal directory and the service root are flushed (`fsync`), so the journal,
//!    the names of the staged files and the journal directory itself are on disk before the
//!    first rename in the tree. The staged data was durable before the journal named it, so a
//!    journal that survives a crash never points at a torn staged file. *Crash before the
//!    flushes finish:* either no `journal.json` (as in 1.), or a journal whose entries are all
//!    still unapplied — the tree is untouched and `--abort` removes the journal.
//! 3. Apply: per entry, the old file is renamed to `backup/<i>` and `new/<i>` renamed into
//!    place. No flush in between: journaling filesystems (ext4, XFS, btrfs) persist metadata
//!    operations in the order they were made, so after a crash a prefix of the renames is on
//!    disk, each entry is unapplied, half-applied (old file in `backup/`) or applied, and
//!    `--abort` handles each (see [`restore`]). This is the guarantee the crash scenario tests
//!    (tests/scenarios 19 and 20) exercise, unchanged.
//! 4. Make the renames durable: every directory whose entries changed is flushed — the parent
//!    of each target, the parent of each directory created, `new/` and `backup/`. *Crash here:*
//!    as in 3.; the journal is still there.
//! 5. Remove the journal directory, `journal.json` first (see [`finish`]), then flush the service root: once the command reports
//!    success the new tree stays, and no journal comes back after a power cut. The renames were
//!    durable (4.) before the journal's removal could be, so a tree without a journal is never
//!    a half-applied one. *Crash before the flush:* the journal may come back with every entry
//!    applied; `--abort` then restores the old tree exactly.
//!
//! [`restore`] flushes the same way: the directories it renamed files back into before it
//! removes the journal, and the root after.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable;
use crate::error::{Error, Result};
use crate::fsx::Write;

/// The journal directory, at the service root, present only while a change is in flight.
pub const DIR: &str = ".cargo-platform-journal";

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    entries: Vec<JournalEntry>,
    /// Directories the change creates, parents first; removed again on abort.
    created_dirs: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct JournalEntry {
    path: String,
    /// The file existed before: its old bytes are in `backup/<index>`.
    existed: bool,
    /// The new content is in `new/<index>`; otherwise the file is removed.
    put: bool,
}

pub fn in_flight(root: &Path) -> bool {
    root.join(DIR).exists()
}

/// Marker in the journal directory: the upgrade was applied in full and waits for
/// `upgrade --verify` to pass. It lists the [`GUARDED`] files as they were before.
const VERIFY_PENDING: &str = "verify-pending.json";

/// Files no upgrade writes but the verification (`cargo check`) may create or change. Their
/// state before is kept with the journal, so `--abort` restores them too.
const GUARDED: &[&str] = &["Cargo.lock"];

#[derive(Debug, Serialize, Deserialize)]
struct Guarded {
    path: String,
    /// Its old bytes are in `guard/<index>`; otherwise the file did not exist.
    existed: bool,
}

/// True while an applied upgrade waits for `upgrade --verify` (its journal is kept for `--abort`).
pub fn verify_pending(root: &Path) -> bool {
    root.join(DIR).join(VERIFY_PENDING).is_file()
}

/// Refuses to start while an interrupted upgrade's journal is present.
pub fn check_clear(root: &Path) -> Result<()> {
    if verify_pending(root) {
        return Err(Error::new(format!(
            "an applied upgrade has not passed `cargo check` yet; its journal is in {}",
            root.join(DIR).display()
        ))
        .hint(
            "fix the errors, then run `cargo platform upgrade --verify` to check again and keep it",
        )
        .hint("or run `cargo platform upgrade --abort` to restore the tree as it was before it"));
    }
    if in_flight(root) {
        return Err(Error::new(format!(
            "an interrupted upgrade left its journal in {}",
            root.join(DIR).display()
        ))
        .hint("run `cargo platform upgrade --abort` to restore the tree as it was before it"));
    }
    Ok(())
}

/// Applies `writes` under `root` all-or-nothing. On an error the tree is restored before
/// returning it.
pub fn apply(root: &Path, writes: &[Write]) -> Result<()> {
    apply_inner(root, writes, false)
}

/// Applies `writes` like [`apply`], but keeps the journal afterwards, so that `--abort` can still
/// restore the tree exactly (the [`GUARDED`] files included) until [`verified`] drops it.
pub fn apply_unverified(root: &Path, writes: &[Write]) -> Result<()> {
    apply_inner(root, writes, true)
}

/// The verification passed: drop the journal kept by [`apply_unverified`].
pub fn verified(root: &Path) -> Result<()> {
    if verify_pending(root) {
        // The same order as after any applied change: never a journal with part of its backups.
        finish(&root.join(DIR))?;
    }
    Ok(())
}

/// Keeps a copy of every guarded file the writes do not touch, and marks the journal as
/// waiting for verification.
fn guard(root: &Path, dir: &Path, writes: &[Write]) -> Result<()> {
    fs_err::create_dir_all(dir.join("guard"))?;
    let mut guarded = Vec::new();
    for (i, path) in GUARDED
        .iter()
        .filter(|p| writes.iter().all(|w| w.path() != **p))
        .enumerate()
    {
        let existed = root.join(path).is_file();
        if existed {
            fs_err::copy(root.join(path), dir.join("guard").join(i.to_string()))?;
        }
        guarded.push(Guarded {
            path: path.to_string(),
            existed,
        });
    }
    let text =
        serde_json::to_vec_pretty(&guarded).map_err(|e| Error::new(format!("journal: {e}")))?;
    write_staged(&dir.join(VERIFY_PENDING), &text)
}

fn apply_inner(root: &Path, writes: &[Write], keep: bool) -> Result<()> {
    check_clear(root)?;
    let dir = root.join(DIR);
    let staged = stage(root, &dir, writes).and_then(|j| {
        if keep {
            guard(root, &dir, writes).map(|()| j)
        } else {
            Ok(j)
        }
    });
    let journal = match staged {
        Ok(j) => j,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.hint("nothing was changed"));
        }
    };
    match apply_staged(root, &dir, &journal) {
        Ok(()) if keep => Ok(()),
        Ok(()) => {
            finish(&dir)?;
            durable::sync_dirs([root.to_path_buf()])
        }
        Err(e) => match restore(root) {
            Ok(_) => Err(e.hint("the tree was restored; nothing was changed")),
            Err(restore_err) => Err(e.hint(format!(
                "restoring failed too ({restore_err}); run `cargo platform upgrade --abort`"
            ))),
        },
    }
}

fn stage(root: &Path, dir: &Path, writes: &[Write]) -> Result<Journal> {
    fs_err::create_dir_all(dir.join("new"))?;
    fs_err::create_dir_all(dir.join("backup"))?;
    let mut entries = Vec::new();
    let mut created_dirs: Vec<String> = Vec::new();
    let mut staged = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        let target = root.join(w.path());
        let existed = match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_file() => true,
            Ok(_) => bail!(
                "{} is not a regular file; refusing to replace it",
                target.display()
            ),
            Err(_) => false,
        };
        if let Write::Put { contents, .. } = w {
            let path = dir.join("new").join(i.to_string());
            write_staged(&path, contents)?;
            staged.push(path);
            let mut missing = Vec::new();
            let mut p = target.parent();
            while let Some(d) = p {
                if d == root || d.exists() {
                    break;
                }
                let rel = d
                    .strip_prefix(root)
                    .unwrap_or(d)
                    .to_string_lossy()
                    .replace('\\', "/");
                if !created_dirs.contains(&rel) {
                    missing.push(rel);
                }
                p = d.parent();
            }
            created_dirs.extend(missing.into_iter().rev());
        }
        entries.push(JournalEntry {
            path: w.path().to_string(),
            existed,
            put: matches!(w, Write::Put { .. }),
        });
    }
    let journal = Journal {
        entries,
        created_dirs,
    };
    let text =
        serde_json::to_vec_pretty(&journal).map_err(|e| Error::new(format!("journal: {e}")))?;
    crate::fsx::fault("upgrade:before-journal")?;
    // Steps 1 and 2 of the module docs: the staged data and the journal's are flushed before
    // the journal appears (atomically, by a rename), and its name before the tree is touched.
    let tmp = dir.join("journal.json.tmp");
    write_staged(&tmp, &text)?;
    staged.push(tmp.clone());
    durable::sync_files(&staged)?;
    fs_err::rename(&tmp, dir.join("journal.json"))?;
    durable::sync_dirs([dir.join("new"), dir.to_path_buf(), root.to_path_buf()])?;
    Ok(journal)
}

fn apply_staged(root: &Path, dir: &Path, journal: &Journal) -> Result<()> {
    for d in &journal.created_dirs {
        fs_err::create_dir_all(root.join(d))?;
    }
    for (i, e) in journal.entries.iter().enumerate() {
        crash_point(i)?;
        apply_one(root, dir, i, e)?;
    }
    crash_point(journal.entries.len())?;
    durable::sync_dirs(changed_dirs(root, dir, journal))
}

/// Every directory whose entries applying (or restoring) `journal` changes.
fn changed_dirs(root: &Path, dir: &Path, journal: &Journal) -> Vec<PathBuf> {
    let targets = journal.entries.iter().map(|e| root.join(&e.path));
    let created = journal.created_dirs.iter().map(|d| root.join(d));
    targets
        .chain(created)
        .map(|p| durable::parent_of(&p))
        .chain([dir.join("new"), dir.join("backup")])
        .collect()
}

/// The order in which [`finish`] removes the journal directory of an applied change: the
/// journal first, then everything else below the directory, children before parents, the
/// directory itself last. A crash cuts this sequence short (unlinks persist in order, as the
/// module docs assume): with the journal gone first, what is left is a journal directory
/// without a journal, which `--abort` just removes. Removing `backup/` first (as
/// `remove_dir_all` may, in the directory's hash order) would leave a journal whose backups
/// are partly gone, and `--abort` would then undo only part of the change.
fn removal_order(dir: &Path) -> Result<Vec<PathBuf>> {
    let journal = dir.join("journal.json");
    // Then the mark of a change waiting for `--verify`: without a journal it would stand for
    // nothing and keep refusing upgrades.
    let pending = dir.join(VERIFY_PENDING);
    let mut order = vec![journal.clone()];
    if pending.is_file() {
        order.push(pending.clone());
    }
    for entry in walkdir::WalkDir::new(dir)
        .contents_first(true)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| Error::new(format!("cannot read {}: {e}", dir.display())))?;
        if entry.path() != journal && entry.path() != pending {
            order.push(entry.into_path());
        }
    }
    Ok(order)
}

/// Removes the journal directory of a change that was applied in full.
fn finish(dir: &Path) -> Result<()> {
    for path in removal_order(dir)? {
        if path.is_dir() {
            fs_err::remove_dir(&path)?;
        } else {
            fs_err::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Applies entry `i`: the old file (if any) moves aside to `backup/i` — a rename, so restoring
/// it brings back the very same file — and the new content moves into place.
fn apply_one(root: &Path, dir: &Path, i: usize, e: &JournalEntry) -> Result<()> {
    let target = root.join(&e.path);
    let backup = dir.join("backup").join(i.to_string());
    if e.existed {
        fs_err::rename(&target, &backup)?;
    }
    if e.put {
        let staged = dir.join("new").join(i.to_string());
        if let (true, Ok(meta)) = (e.existed, std::fs::metadata(&backup)) {
            let _ = std::fs::set_permissions(&staged, meta.permissions());
        }
        fs_err::rename(&staged, &target)?;
    }
    Ok(())
}

/// Test hook: `CARGO_PLATFORM_FAULT=upgrade:crash:N` kills the process (no clean-up, as a power
/// cut would) before applying entry N; `upgrade:error:N` fails there instead; `upgrade:hang:N`
/// waits there until killed (a live upgrade, for tests of the lock).
fn crash_point(i: usize) -> Result<()> {
    if let Ok(p) = std::env::var("CARGO_PLATFORM_FAULT") {
        if p == format!("upgrade:hang:{i}") {
            eprintln!("injected hang before journal entry {i} (CARGO_PLATFORM_FAULT)");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        if p == format!("upgrade:crash:{i}") {
            eprintln!("injected crash before journal entry {i} (CARGO_PLATFORM_FAULT)");
            std::process::exit(101);
        }
        if p == format!("upgrade:error:{i}") {
            bail!("injected fault before journal entry {i} (CARGO_PLATFORM_FAULT)");
        }
    }
    Ok(())
}

/// What `--abort` did.
#[derive(Debug)]
pub struct Restored {
    pub files: usize,
    /// False when the journal was never completed (the tree had not been touched).
    pub had_journal: bool,
}

/// Restores the tree from the journal and removes it.
pub fn restore(root: &Path) -> Result<Restored> {
    let dir = root.join(DIR);
    if !dir.exists() {
        return Err(Error::new(format!(
            "no interrupted upgrade or add to abort in {}",
            root.display()
        ))
            .hint(format!(
                "`--abort` undoes an upgrade or add that was cut off; to undo a finished one, use git on the service's directory only: `git -C {0} checkout -- . && git -C {0} clean -fd`",
                root.display()
            )));
    }
    let journal_path = dir.join("journal.json");
    if !journal_path.exists() {
        // Cut off while staging: the tree was never touched.
        fs_err::remove_dir_all(&dir)?;
        return Ok(Restored {
            files: 0,
            had_journal: false,
        });
    }
    let text = fs_err::read(&journal_path)?;
    let journal: Journal = serde_json::from_slice(&text)
        .map_err(|e| Error::new(format!("{} is damaged: {e}", journal_path.display())))?;
    let mut files = 0;
    let pending = dir.join(VERIFY_PENDING);
    if pending.is_file() {
        let guarded: Vec<Guarded> = serde_json::from_slice(&fs_err::read(&pending)?)
            .map_err(|e| Error::new(format!("{} is damaged: {e}", pending.display())))?;
        for (i, g) in guarded.iter().enumerate() {
            let target = root.join(&g.path);
            let copy = dir.join("guard").join(i.to_string());
            if g.existed {
                // Absent only when an earlier --abort was cut off after putting it back.
                if copy.is_file() {
                    fs_err::rename(&copy, &target)?;
                }
            } else if target.is_file() {
                fs_err::remove_file(&target)?;
            }
        }
    }
    for (i, e) in journal.entries.iter().enumerate().rev() {
        let target = root.join(&e.path);
        let backup = dir.join("backup").join(i.to_string());
        let staged = dir.join("new").join(i.to_string());
        if e.existed {
            // Moved aside by apply: put the original back (over any new content).
            if backup.exists() {
                fs_err::rename(&backup, &target)?;
                files += 1;
            }
        } else if e.put && !staged.exists() && std::fs::symlink_metadata(&target).is_ok() {
            // Created by apply: remove it.
            fs_err::remove_file(&target)?;
            files += 1;
        }
    }
    for d in journal.created_dirs.iter().rev() {
        let _ = std::fs::remove_dir(root.join(d));
    }
    // The old files are back for good before the journal can go (see the module docs).
    durable::sync_dirs(
        changed_dirs(root, &dir, &journal)
            .into_iter()
            .filter(|d| d.is_dir()),
    )?;
    fs_err::remove_dir_all(&dir)?;
    durable::sync_dirs([root.to_path_buf()])?;
    Ok(Restored {
        files,
        had_journal: true,
    })
}

/// Writes a staged file without waiting for the disk: [`stage`] flushes them all at once.
fn write_staged(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut f = fs_err::File::create(path)?;
    f.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(root)
            .min_depth(1)
            .into_iter()
            .map(|e| e.unwrap())
            .map(|e| {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                let bytes = if e.file_type().is_file() {
                    std::fs::read(e.path()).unwrap()
                } else {
                    b"<dir>".to_vec()
                };
                (rel, bytes)
            })
            .collect();
        out.sort();
        out
    }

    fn fixture() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("src")).unwrap();
        std::fs::write(t.path().join("src/a.rs"), "a").unwrap();
        std::fs::write(t.path().join("gone.txt"), "gone").unwrap();
        t
    }

    fn writes() -> Vec<Write> {
        vec![
            Write::Put {
                path: "src/a.rs".into(),
                contents: b"a2".to_vec(),
            },
            Write::Put {
                path: "new/dir/b.rs".into(),
                contents: b"b".to_vec(),
            },
            Write::Remove {
                path: "gone.txt".into(),
            },
        ]
    }

    #[test]
    fn applies_everything() {
        let t = fixture();
        apply(t.path(), &writes()).unwrap();
        assert_eq!(std::fs::read(t.path().join("src/a.rs")).unwrap(), b"a2");
        assert_eq!(std::fs::read(t.path().join("new/dir/b.rs")).unwrap(), b"b");
        assert!(!t.path().join("gone.txt").exists());
        assert!(!in_flight(t.path()));
    }

    #[test]
    fn restore_after_a_partial_apply_is_exact() {
        let t = fixture();
        let before = snapshot(t.path());
        let dir = t.path().join(DIR);
        let journal = stage(t.path(), &dir, &writes()).unwrap();
        // Apply only the first two entries, and half of the third, as if the process died there.
        for d in &journal.created_dirs {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        for (i, e) in journal.entries.iter().enumerate().take(2) {
            apply_one(t.path(), &dir, i, e).unwrap();
        }
        std::fs::rename(t.path().join("gone.txt"), dir.join("backup/2")).unwrap();
        assert!(in_flight(t.path()));
        assert!(check_clear(t.path()).unwrap_err().hints[0].contains("--abort"));
        let restored = restore(t.path()).unwrap();
        assert!(restored.had_journal);
        assert_eq!(snapshot(t.path()), before);
    }

    #[test]
    fn a_verified_change_drops_its_journal_first_then_its_verify_mark() {
        // After a crash part-way through, neither half a journal nor a mark that keeps refusing
        // upgrades without a journal behind it may be left.
        let t = fixture();
        apply_unverified(t.path(), &writes()).unwrap();
        let dir = t.path().join(DIR);
        assert!(verify_pending(t.path()));
        let order = removal_order(&dir).unwrap();
        assert_eq!(order[0], dir.join("journal.json"));
        assert_eq!(order[1], dir.join(VERIFY_PENDING));
        assert_eq!(order.last(), Some(&dir));
        verified(t.path()).unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn a_crash_while_the_journal_of_an_applied_change_is_removed_never_rolls_back_part_of_it() {
        // Journaling filesystems persist unlinks in order: a crash leaves a prefix of them done.
        let t = fixture();
        let old_tree = snapshot(t.path());
        let dir = t.path().join(DIR);
        let journal = stage(t.path(), &dir, &writes()).unwrap();
        apply_staged(t.path(), &dir, &journal).unwrap();
        let applied = snapshot(t.path());
        let order = removal_order(&dir).unwrap();
        let new_tree: Vec<_> = applied
            .iter()
            .filter(|(p, _)| !p.starts_with(DIR))
            .cloned()
            .collect();
        for done in 0..=order.len() {
            let copy = tempfile::tempdir().unwrap();
            for (rel, bytes) in &applied {
                let to = copy.path().join(rel);
                if bytes == b"<dir>" {
                    std::fs::create_dir_all(&to).unwrap();
                } else {
                    std::fs::write(&to, bytes).unwrap();
                }
            }
            for p in &order[..done] {
                let p = copy.path().join(p.strip_prefix(t.path()).unwrap());
                if p.is_dir() {
                    std::fs::remove_dir(&p).unwrap();
                } else {
                    std::fs::remove_file(&p).unwrap();
                }
            }
            if in_flight(copy.path()) {
                restore(copy.path()).unwrap();
            }
            let after = snapshot(copy.path());
            assert!(
                after == new_tree || after == old_tree,
                "after a crash with {done} of {} removals done ({:?} next), --abort leaves a mix of the old and new trees: {after:?}",
                order.len(),
                order.get(done),
            );
        }
    }

    #[test]
    fn restore_without_a_complete_journal_just_cleans_up() {
        let t = fixture();
        let before = snapshot(t.path());
        std::fs::create_dir_all(t.path().join(DIR).join("new")).unwrap();
        let restored = restore(t.path()).unwrap();
        assert!(!restored.had_journal);
        assert_eq!(snapshot(t.path()), before);
        assert!(restore(t.path()).is_err(), "nothing to abort");
    }

    #[test]
    fn an_unverified_apply_keeps_the_journal_until_verified_and_abort_is_exact() {
        for lock_before in [None, Some("lock v1")] {
            let t = fixture();
            if let Some(lock) = lock_before {
                std::fs::write(t.path().join("Cargo.lock"), lock).unwrap();
            }
            let before = snapshot(t.path());
            apply_unverified(t.path(), &writes()).unwrap();
            assert_eq!(std::fs::read(t.path().join("src/a.rs")).unwrap(), b"a2");
            assert!(verify_pending(t.path()));
            assert!(check_clear(t.path()).unwrap_err().hints[0].contains("--verify"));
            // The check writes Cargo.lock, and fails: --abort restores everything, the lock too.
            std::fs::write(t.path().join("Cargo.lock"), "lock v2").unwrap();
            let restored = restore(t.path()).unwrap();
            assert!(restored.had_journal);
            assert_eq!(snapshot(t.path()), before, "lock before: {lock_before:?}");
        }
        // A passing check drops the journal and keeps the upgrade.
        let t = fixture();
        apply_unverified(t.path(), &writes()).unwrap();
        verified(t.path()).unwrap();
        assert!(!in_flight(t.path()));
        assert_eq!(std::fs::read(t.path().join("src/a.rs")).unwrap(), b"a2");
        check_clear(t.path()).unwrap();
    }
}
