//! `cargo platform upgrade` as a whole process, on the demo template (loaded from the test
//! fixtures through CARGO_PLATFORM_TEMPLATE_DIR): guards, dry run, conflicts, commit, crash
//! recovery with --abort.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{demo, demo_service as service, outcome, scratch};

/// Every file (bytes) and symlink (target) below `root`, except `.git`.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .map(|e| e.unwrap())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let content = if e.path_is_symlink() {
                format!("-> {}", std::fs::read_link(e.path()).unwrap().display()).into_bytes()
            } else if e.file_type().is_dir() {
                b"<dir>".to_vec()
            } else {
                std::fs::read(e.path()).unwrap()
            };
            (rel, content)
        })
        .collect()
}

fn commit_all(root: &Path, message: &str) {
    let repo = git2::Repository::open(root).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.update_all(["*"], None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("Team", "team@example.com").unwrap();
    let parent = repo.head().unwrap().peel_to_commit().unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &[&parent])
        .unwrap();
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap()
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let dir = scratch();
    let svc = service(dir.path());
    let before = snapshot(&svc);
    let out = demo(&svc).args(["upgrade", "--dry-run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "Upgrade orders: demo 1.0.0 → 2.0.0",
        "apply            demo-2.0.0-rename-key (2.0.0, required)",
        "updated    src/main.rs",
        "renamed    new.txt  (from old.txt: moved by the template)",
        "deleted    gone.txt",
        "new        src/audit.rs",
        "Dry run: nothing was written.",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let out = demo(&svc)
        .args(["upgrade", "--dry-run", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["from"], "1.0.0");
    assert_eq!(v["to"], "2.0.0");
    let files = v["files"].as_array().unwrap();
    let status_of = |p: &str| {
        files
            .iter()
            .find(|f| f["path"] == p)
            .map(|f| f["status"].clone())
    };
    assert_eq!(status_of("new.txt"), Some("renamed".into()));
    assert_eq!(status_of("config/default.toml"), Some("updated".into()));
    assert_eq!(snapshot(&svc), before, "a dry run writes nothing");
}

#[test]
fn dirty_tree_is_refused_unless_allowed() {
    let dir = scratch();
    let svc = service(dir.path());
    std::fs::write(svc.join("notes.txt"), "wip").unwrap();
    let before = snapshot(&svc);
    let out = demo(&svc).arg("upgrade").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("uncommitted changes: notes.txt"), "{err}");
    assert!(err.contains("--allow-dirty"), "{err}");
    assert_eq!(snapshot(&svc), before);
    let out = demo(&svc)
        .args(["upgrade", "--allow-dirty"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert_eq!(read(&svc, "notes.txt"), "wip");
}

#[test]
fn upgrade_commits_and_a_rerun_is_a_noop() {
    let dir = scratch();
    let svc = service(dir.path());
    let out = demo(&svc).args(["upgrade", "--commit"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Upgraded orders to demo 2.0.0."));
    assert!(read(&svc, "platform.toml").contains("version = \"2.0.0\""));
    assert!(read(&svc, "platform.toml").contains("id = \"demo-2.0.0-rename-key\""));
    assert!(!svc.join("old.txt").exists() && svc.join("new.txt").exists());
    assert!(!svc.join(".cargo-platform-journal").exists());
    let repo = git2::Repository::open(&svc).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert!(
        head.message()
            .unwrap()
            .starts_with("Upgrade orders: template demo 1.0.0 -> 2.0.0")
    );
    assert_eq!(
        repo.statuses(None).unwrap().len(),
        0,
        "the commit holds every change"
    );

    let after = snapshot(&svc);
    let out = demo(&svc).arg("upgrade").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("already on demo 2.0.0; nothing to do"));
    assert_eq!(snapshot(&svc), after);
}

#[test]
fn conflicts_exit_3_with_markers_or_rej_files() {
    for (mode, expect_rej) in [("markers", false), ("reject", true)] {
        let dir = scratch();
        let svc = service(dir.path());
        std::fs::write(
            svc.join("src/main.rs"),
            "fn main() {\n    println!(\"ours\");\n}\n",
        )
        .unwrap();
        commit_all(&svc, "team edit");
        let out = demo(&svc)
            .args(["upgrade", "--conflict", mode, "--commit"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{mode}: {}", outcome(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("1 conflict(s) remain: src/main.rs"), "{err}");
        assert!(err.contains("not committing"), "{err}");
        let main = read(&svc, "src/main.rs");
        if expect_rej {
            assert_eq!(main, "fn main() {\n    println!(\"ours\");\n}\n");
            assert!(
                read(&svc, "src/main.rs.rej")
                    .contains("+    println!(\"orders v2.0.0 audit=true\");")
            );
        } else {
            assert!(
                main.contains("<<<<<<< yours\n    println!(\"ours\");\n=======\n"),
                "{main}"
            );
            assert!(!svc.join("src/main.rs.rej").exists());
        }
        assert!(
            read(&svc, "platform.toml").contains("version = \"2.0.0\""),
            "the rest of the upgrade is applied"
        );
    }
}

#[test]
fn a_crash_mid_write_is_undone_exactly_by_abort() {
    let dir = scratch();
    let svc = service(dir.path());
    let before = snapshot(&svc);
    let out = demo(&svc)
        .env("CARGO_PLATFORM_FAULT", "upgrade:crash:3")
        .arg("upgrade")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(101), "{}", outcome(&out));
    assert_ne!(snapshot(&svc), before, "the crash left a half-applied tree");
    assert!(svc.join(".cargo-platform-journal").exists());

    let out = demo(&svc).arg("upgrade").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cargo platform upgrade --abort"));
    let out = demo(&svc).args(["upgrade", "--abort"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Aborted the interrupted upgrade"));
    assert_eq!(snapshot(&svc), before, "--abort restores the exact tree");
    let out = demo(&svc).args(["upgrade", "--abort"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "nothing left to abort");
}

#[test]
fn an_error_mid_write_rolls_back_by_itself() {
    let dir = scratch();
    let svc = service(dir.path());
    let before = snapshot(&svc);
    for point in [
        "upgrade:before-journal",
        "upgrade:error:0",
        "upgrade:error:4",
    ] {
        let out = demo(&svc)
            .env("CARGO_PLATFORM_FAULT", point)
            .arg("upgrade")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{point}: {}", outcome(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("nothing was changed"),
            "{point}"
        );
        assert_eq!(snapshot(&svc), before, "{point}: the tree is as it was");
    }
}

#[test]
fn binary_files_symlinks_and_crlf_survive() {
    let dir = scratch();
    let svc = service(dir.path());
    std::fs::write(svc.join("logo.png"), [0x89, b'P', b'N', b'G', 0, 0, 0xff]).unwrap();
    std::os::unix::fs::symlink("src/main.rs", svc.join("main-link.rs")).unwrap();
    std::fs::write(
        svc.join("src/main.rs"),
        "// ours\r\nfn main() {\r\n    println!(\"orders v1.0.0\");\r\n}\r\n",
    )
    .unwrap();
    commit_all(&svc, "team files");
    let out = demo(&svc).arg("upgrade").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert_eq!(
        std::fs::read(svc.join("logo.png")).unwrap(),
        [0x89, b'P', b'N', b'G', 0, 0, 0xff]
    );
    assert_eq!(
        std::fs::read_link(svc.join("main-link.rs")).unwrap(),
        Path::new("src/main.rs")
    );
    assert_eq!(
        read(&svc, "src/main.rs"),
        "// ours\r\nfn main() {\r\n    println!(\"orders v2.0.0 audit=true\");\r\n}\r\n"
    );
}

#[test]
fn eject_during_upgrade_and_exclude() {
    let dir = scratch();
    let svc = service(dir.path());
    let out = demo(&svc)
        .args(["upgrade", "--eject", "extra", "--exclude", "src/main.rs"])
        .output()
        .unwrap();
    // demo 2.0.0 declares a break in `extra`: the upgrade is applied, and needs attention.
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  extra (changed in 2.0.0): core now calls extra::init(config) instead of extra::start()\n    do: rename start to init in your copy of src/pg.rs and take the config"),
        "{text}"
    );
    assert!(
        text.contains("ejected    new.txt  (from old.txt: component `extra` is ejected)"),
        "{text}"
    );
    assert!(text.contains("excluded   src/main.rs"), "{text}");
    assert!(
        svc.join("old.txt").exists() && svc.join("gone.txt").exists(),
        "ejected files untouched"
    );
    assert!(
        read(&svc, "src/main.rs").contains("v1.0.0"),
        "excluded file untouched"
    );
    let manifest = read(&svc, "platform.toml");
    assert!(
        manifest.contains("[components.extra]\nstate = \"ejected\""),
        "{manifest}"
    );

    let out = demo(&svc)
        .args(["upgrade", "--eject", "core"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "flags are validated even when there is nothing to do"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be ejected"));
    // On an up-to-date service --eject is still recorded.
    let out = demo(&svc)
        .args(["upgrade", "--eject", "audit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(read(&svc, "platform.toml").contains("[components.audit]\nstate = \"ejected\""));
}

#[test]
fn bad_flags_are_refused_before_anything_changes() {
    let dir = scratch();
    let svc = service(dir.path());
    let before = snapshot(&svc);
    for (args, msg) in [
        (&["upgrade", "--to", "9.0.0"][..], "has no release 9.0.0"),
        (&["upgrade", "--to", "1.0.0.0"], "is not a version"),
        (
            &["upgrade", "--skip", "nope"],
            "--skip nope: no such migration",
        ),
        (&["upgrade", "--exclude", "["], "not a valid glob"),
        (&["upgrade", "--eject", "core"], "cannot be ejected"),
        (
            &["upgrade", "--eject", "kafka"],
            "unknown component `kafka`",
        ),
    ] {
        let out = demo(&svc).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", outcome(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(msg),
            "{args:?}: {}",
            outcome(&out)
        );
        assert_eq!(snapshot(&svc), before, "{args:?}");
    }
    let out = demo(&svc)
        .args(["upgrade", "--abort", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "--abort conflicts with other flags"
    );
}

/// A 1.0.0 service created with `--eject auth` (real templates, no git).
fn ejected_service(dir: &Path, component: &str) -> std::path::PathBuf {
    let out = common::platform(dir)
        .args([
            "new",
            "orders",
            "--template-version",
            "1.0.0",
            "--eject",
            component,
            "--set",
            "owner=x",
            "--no-git",
            "-y",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    dir.join("orders")
}

#[test]
fn an_ejected_component_that_a_release_breaks_is_an_action_and_exit_3() {
    let dir = scratch();
    let svc = ejected_service(dir.path(), "auth");
    // The dry run lists the action too, and writes nothing.
    let before = snapshot(&svc);
    let out = common::platform(&svc)
        .args(["upgrade", "--dry-run"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Actions for your team") && text.contains("auth (changed in 2.0.0): "),
        "{text}"
    );
    assert_eq!(snapshot(&svc), before);

    let out = common::platform(&svc)
        .args(["upgrade", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions = v["actions"].as_array().unwrap();
    assert!(!actions.is_empty(), "{v}");
    for a in actions {
        assert_eq!(a["component"], "auth", "{v}");
        assert!(a["changed"].as_str().unwrap().contains("hs256_secret") || a["version"] != "2.0.0");
        assert!(!a["action"].as_str().unwrap().is_empty());
    }
    assert!(
        actions
            .iter()
            .any(|a| a["version"] == "2.0.0"
                && a["changed"].as_str().unwrap().contains("SecretString")),
        "{v}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs attention"), "{stderr}");
    assert!(
        read(&svc, "platform.toml").contains("version = \"2.1.0\""),
        "the upgrade was applied"
    );
}

#[test]
fn an_ejected_component_no_release_breaks_upgrades_with_exit_0() {
    let dir = scratch();
    let svc = ejected_service(dir.path(), "flags");
    let out = common::platform(&svc).args(["upgrade"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Actions for your team"));
}

/// A stand-in for cargo (through `CARGO`): records its arguments, writes a Cargo.lock as cargo
/// would, prints compiler errors and fails when `fail` is set.
fn fake_cargo(dir: &Path, fail: bool) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(if fail { "cargo-fails" } else { "cargo-passes" });
    let body = if fail {
        "echo 'error[E0308]: mismatched types' >&2\n\
         echo '  --> src/platform/auth/dev_token.rs:38:16' >&2\n\
         echo 'error: could not compile `orders` (lib) due to 1 previous error' >&2\nexit 101\n"
    } else {
        "echo '    Finished `dev` profile' >&2\nexit 0\n"
    };
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$@\" > \"{}/cargo-args\"\necho lock > Cargo.lock\n{body}",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn verify_failing_keeps_the_journal_for_abort_and_a_pass_clears_it() {
    let dir = scratch();
    let svc = service(dir.path());
    let before = snapshot(&svc);
    let out = demo(&svc)
        .env("CARGO", fake_cargo(dir.path(), true))
        .args(["upgrade", "--verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs attention"), "{stderr}");
    assert!(stderr.contains("cargo check --all-targets"), "{stderr}");
    assert!(
        stderr.contains("error[E0308]: mismatched types")
            && stderr.contains("--> src/platform/auth/dev_token.rs:38:16"),
        "the compiler's first errors are shown: {stderr}"
    );
    assert!(stderr.contains("upgrade --abort"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("cargo-args")).unwrap(),
        "check --all-targets\n"
    );
    assert!(read(&svc, "platform.toml").contains("version = \"2.0.0\""));
    // Another upgrade is refused while the check has not passed.
    let out = demo(&svc).args(["upgrade"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    // --abort restores the tree exactly, the Cargo.lock the check wrote included.
    let out = demo(&svc).args(["upgrade", "--abort"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert_eq!(snapshot(&svc), before);

    // Failing again (JSON for a bot this time), then fixed: `upgrade --verify` checks again and
    // keeps the upgrade.
    let out = demo(&svc)
        .env("CARGO", fake_cargo(dir.path(), true))
        .args(["upgrade", "--verify", "--commit", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verify"]["passed"], false, "{v}");
    assert_eq!(v["verify"]["command"], "cargo check --all-targets", "{v}");
    assert_eq!(
        v["verify"]["first_errors"][0], "error[E0308]: mismatched types",
        "{v}"
    );
    assert_eq!(
        v["commit"],
        serde_json::Value::Null,
        "a failed check is not committed"
    );
    let out = demo(&svc)
        .env("CARGO", fake_cargo(dir.path(), false))
        .args(["upgrade", "--verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("passed"));
    assert!(!svc.join(".cargo-platform-journal").exists());
    assert!(read(&svc, "platform.toml").contains("version = \"2.0.0\""));
    let out = demo(&svc).args(["upgrade", "--abort"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing left to abort: {}",
        outcome(&out)
    );
}

#[test]
fn verify_passing_upgrades_and_drops_the_journal() {
    let dir = scratch();
    let svc = service(dir.path());
    let out = demo(&svc)
        .env("CARGO", fake_cargo(dir.path(), false))
        .args(["upgrade", "--verify", "--commit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(!svc.join(".cargo-platform-journal").exists());
    assert!(read(&svc, "platform.toml").contains("version = \"2.0.0\""));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Committed"));
}

#[test]
fn commit_waits_for_the_actions_of_ejected_components() {
    let dir = scratch();
    let svc = service(dir.path());
    let out = demo(&svc)
        .args(["upgrade", "--eject", "extra", "--commit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not committing (--commit)"),
        "{}",
        outcome(&out)
    );
    assert_eq!(
        common::git(&svc, &["rev-list", "--count", "HEAD"]).trim(),
        "1",
        "nothing committed while the team's changes are pending"
    );
}
