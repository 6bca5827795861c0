//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// Runs the git CLI in `dir` with the test identity, outside any repository the test runner
/// is in (`GIT_DIR`, `GIT_WORK_TREE` cleared); panics with git's stderr when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let home = home_with_identity();
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("HOME", home)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A HOME whose git config names `Test Author <test@example.com>`.
pub fn home_with_identity() -> PathBuf {
    const CONFIG: &str = "[user]\n\tname = Test Author\n\temail = test@example.com\n";
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("home-with-identity");
    std::fs::create_dir_all(&home).expect("home");
    let config = home.join(".gitconfig");
    // Tests run in parallel and read this file while others set it up: never truncate it in
    // place (a reader would see no identity), replace it atomically and only when it differs.
    if std::fs::read_to_string(&config).ok().as_deref() != Some(CONFIG) {
        let mut tmp = tempfile::NamedTempFile::new_in(&home).expect("temp gitconfig");
        std::io::Write::write_all(&mut tmp, CONFIG.as_bytes()).expect("gitconfig");
        tmp.persist(&config).expect("gitconfig");
    }
    home
}

/// A HOME with no git identity at all.
pub fn home_without_identity() -> PathBuf {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("home-without-identity");
    std::fs::create_dir_all(&home).expect("home");
    home
}

/// The tool, run as cargo runs it (`cargo-platform platform …`) in `cwd`, with a fixed git
/// identity and no inherited git or fault-injection settings.
pub fn platform(cwd: &Path) -> Command {
    let mut cmd = Command::cargo_bin("cargo-platform").expect("binary");
    let home = home_with_identity();
    cmd.current_dir(cwd)
        .arg("platform")
        .env_remove("CARGO_PLATFORM_FAULT")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("HOME", home);
    cmd
}

/// insta settings: snapshots in the top-level `snapshots/`, temp paths redacted.
pub fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.add_filter(r"/[^\s]*/cp-test-[A-Za-z0-9]+", "[TMP]");
    s
}

/// Exit code and stderr together, for snapshotting what a user reads.
/// A finished process's status, stdout and stderr, for a failing assertion's message.
pub fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn outcome(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    format!("exit: {:?}\nstderr:\n{stderr}", out.status.code())
}

/// Every entry below `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.expect("walk")
                .path()
                .strip_prefix(dir)
                .expect("prefix")
                .display()
                .to_string()
        })
        .collect();
    out.sort();
    out
}

/// A fresh scratch directory that is not inside any git work tree.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cp-test-")
        .tempdir_in(std::env::temp_dir())
        .expect("tempdir")
}

/// The demo template's directory (1.0.0 → 2.0.0 makes every kind of change an upgrade carries).
pub const DEMO_TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/templates");

/// The tool, with the demo template in place of the embedded ones.
pub fn demo(cwd: &Path) -> Command {
    let mut cmd = platform(cwd);
    cmd.env("CARGO_PLATFORM_TEMPLATE_DIR", DEMO_TEMPLATES);
    cmd
}

/// A demo 1.0.0 service `orders` created by the tool in `dir`: a git repository with one commit.
pub fn demo_service(dir: &Path) -> PathBuf {
    let out = demo(dir)
        .env("CARGO_PLATFORM_TODAY", "2026-11-22")
        .args([
            "new",
            "orders",
            "--template",
            "demo",
            "--template-version",
            "1.0.0",
            "--yes",
        ])
        .output()
        .expect("run new");
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    dir.join("orders")
}
