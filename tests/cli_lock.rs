//! One run at a time: while another process holds a service's lock, `new`, `upgrade`,
//! `upgrade --abort` and `eject` refuse at once naming its pid and write nothing, and `status`
//! and `check` say a run is in progress rather than calling its journal interrupted. A journal
//! nobody holds (a crashed run) is still reported as interrupted, and `--abort` undoes it.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use common::{demo, demo_service, outcome, scratch};

const LOCK: &str = ".cargo-platform.lock";
const JOURNAL: &str = ".cargo-platform-journal";

/// Every file below `root` (bytes; directories as `<dir>`), `.git` aside.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
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
        .collect()
}

/// Holds the lock at `path` as another cargo-platform run would: locked, with our pid in it.
fn hold(path: &Path) -> File {
    let mut f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.lock().unwrap();
    f.write_all(std::process::id().to_string().as_bytes())
        .unwrap();
    f
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_second_run_refuses_while_another_holds_the_service() {
    let dir = scratch();
    let svc = demo_service(dir.path());
    let held = hold(&svc.join(LOCK));
    let before = snapshot(&svc);
    let refusal = format!(
        "error: another cargo-platform (pid {}) is changing this service",
        std::process::id()
    );

    let runs: [&[&str]; 5] = [
        &["upgrade"],
        &["upgrade", "--allow-dirty"],
        &["upgrade", "--dry-run"],
        &["eject", "extra"],
        &["upgrade", "--abort"],
    ];
    for args in runs {
        let out = demo(&svc).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", outcome(&out));
        assert!(
            stderr(&out).contains(&refusal),
            "{args:?}: {}",
            outcome(&out)
        );
        assert_eq!(snapshot(&svc), before, "{args:?} wrote nothing");
    }

    // A live upgrade's journal: `--abort` must not roll it back, and status/check must not
    // call it interrupted.
    std::fs::create_dir(svc.join(JOURNAL)).unwrap();
    let before = snapshot(&svc);
    let out = demo(&svc).args(["upgrade", "--abort"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    assert!(stderr(&out).contains(&refusal), "{}", outcome(&out));
    assert_eq!(
        snapshot(&svc),
        before,
        "--abort left the live journal alone"
    );
    for cmd in ["status", "check"] {
        let out = demo(&svc)
            .env("CARGO_PLATFORM_TODAY", "2026-11-22")
            .arg(cmd)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "warning: an upgrade is in progress (pid {})",
                std::process::id()
            )),
            "{cmd}: {}",
            outcome(&out)
        );
        assert!(!err.contains("interrupted"), "{cmd}: {}", outcome(&out));
        assert!(!err.contains("--abort`"), "{cmd}: {}", outcome(&out));
    }
    drop(held);
}

#[test]
fn new_refuses_while_another_run_creates_the_same_directory() {
    let dir = scratch();
    let held = hold(&dir.path().join(".orders.cargo-platform.lock"));
    let out = demo(dir.path())
        .args(["new", "orders", "--template", "demo", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    assert!(
        stderr(&out).contains(&format!(
            "error: another cargo-platform (pid {}) is changing this service",
            std::process::id()
        )),
        "{}",
        outcome(&out)
    );
    assert_eq!(
        common::tree(dir.path()),
        [".orders.cargo-platform.lock"],
        "nothing written"
    );
    drop(held);

    // Once it is free, `new` takes it and leaves no lock file behind.
    std::fs::remove_file(dir.path().join(".orders.cargo-platform.lock")).unwrap();
    let out = demo(dir.path())
        .args(["new", "orders", "--template", "demo", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let top: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, ["orders"]);
    assert!(!dir.path().join("orders").join(LOCK).exists());
}

#[test]
fn a_journal_nobody_holds_is_interrupted_and_abort_undoes_it() {
    let dir = scratch();
    let svc = demo_service(dir.path());
    let before = snapshot(&svc);
    // A crash mid-apply (the process dies as with kill -9: no clean-up) leaves the journal and
    // its lock file, but no holder.
    let out = demo(&svc)
        .env("CARGO_PLATFORM_FAULT", "upgrade:crash:2")
        .arg("upgrade")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(101), "{}", outcome(&out));
    assert!(svc.join(JOURNAL).exists());

    for cmd in ["status", "check"] {
        let out = demo(&svc)
            .env("CARGO_PLATFORM_TODAY", "2026-11-22")
            .arg(cmd)
            .output()
            .unwrap();
        assert!(
            stderr(&out).contains("warning: an interrupted upgrade left its journal"),
            "{cmd}: {}",
            outcome(&out)
        );
    }
    let out = demo(&svc)
        .args(["upgrade", "--allow-dirty"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    assert!(
        stderr(&out).contains("an interrupted upgrade left its journal"),
        "{}",
        outcome(&out)
    );
    let out = demo(&svc).args(["upgrade", "--abort"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert_eq!(
        snapshot(&svc),
        before,
        "--abort restores the exact tree, no lock file left"
    );
}

#[test]
fn a_run_leaves_no_lock_file_and_is_not_refused_by_its_own() {
    let dir = scratch();
    let svc = demo_service(dir.path());
    let out = demo(&svc).args(["eject", "extra"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(!svc.join(LOCK).exists());
    common::git(&svc, &["commit", "-qam", "eject"]);
    // The dirty-tree guard does not count the run's own lock file.
    let out = demo(&svc).arg("upgrade").output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        outcome(&out)
    );
    assert!(!svc.join(LOCK).exists());
}

#[test]
fn a_live_upgrade_is_in_progress_until_killed_then_interrupted_and_abort_restores() {
    let dir = scratch();
    let svc = demo_service(dir.path());
    let before = snapshot(&svc);
    let home = common::home_with_identity();
    // A real upgrade, stopped half-way through its writes.
    let mut live = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-platform"))
        .args(["platform", "upgrade"])
        .current_dir(&svc)
        .env("CARGO_PLATFORM_TEMPLATE_DIR", common::DEMO_TEMPLATES)
        .env("CARGO_PLATFORM_FAULT", "upgrade:hang:2")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("HOME", home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal = svc.join(JOURNAL).join("journal.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !journal.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the upgrade never staged"
        );
        assert!(
            live.try_wait().unwrap().is_none(),
            "the upgrade exited early"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = live.id();

    let out = demo(&svc).arg("status").output().unwrap();
    assert!(
        stderr(&out).contains(&format!("warning: an upgrade is in progress (pid {pid})")),
        "{}",
        outcome(&out)
    );
    for args in [&["upgrade", "--allow-dirty"][..], &["upgrade", "--abort"]] {
        let out = demo(&svc).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", outcome(&out));
        assert!(
            stderr(&out).contains(&format!(
                "error: another cargo-platform (pid {pid}) is changing this service"
            )),
            "{args:?}: {}",
            outcome(&out)
        );
    }

    // kill -9: no clean-up runs, the kernel drops the lock.
    live.kill().unwrap();
    live.wait().unwrap();
    let out = demo(&svc).arg("status").output().unwrap();
    assert!(
        stderr(&out).contains("warning: an interrupted upgrade left its journal"),
        "{}",
        outcome(&out)
    );
    let out = demo(&svc).args(["upgrade", "--abort"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert_eq!(
        snapshot(&svc),
        before,
        "--abort restores the exact tree, no lock file left"
    );
}
