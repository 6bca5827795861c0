//! Seeded files marked `new_only = true`: written by `new`, never added by `upgrade` or `add` to a
//! service created without them (an example wired into a new service's own seeded code, which an
//! existing service's code does not call — service 3.0.0's tests/contract.rs is one). Runs the
//! CLI against a copy of the demo template with a 3.0.0 that adds one such file and one plain
//! seeded file.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{DEMO_TEMPLATES, git, outcome, scratch};

const V3: &str = r#"version = "3.0.0"
date = "2026-12-01"
summary = "Third"
changelog = ["adds an example for new services and a seeded notes file"]

[files."tests/example.rs"]
component = "core"
mode = "seeded"
new_only = true

[files."NOTES.md"]
component = "core"
mode = "seeded"
"#;

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let dest = to.join(entry.path().strip_prefix(from).expect("prefix"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// The demo templates plus a 3.0.0 with `release` as its release.toml.
fn templates(release: &str) -> tempfile::TempDir {
    let tmp = scratch();
    copy_tree(Path::new(DEMO_TEMPLATES), tmp.path());
    let v3 = tmp.path().join("demo/3.0.0");
    std::fs::create_dir_all(v3.join("files/tests")).expect("mkdir");
    std::fs::write(v3.join("release.toml"), release).expect("write");
    std::fs::write(
        v3.join("files/tests/example.rs"),
        "// calls the example in a new service's own code\n",
    )
    .expect("write");
    std::fs::write(v3.join("files/NOTES.md"), "# Notes\n").expect("write");
    tmp
}

fn tool(cwd: &Path, templates: &Path) -> Command {
    let mut cmd = common::platform(cwd);
    cmd.env("CARGO_PLATFORM_TEMPLATE_DIR", templates)
        .env("CARGO_PLATFORM_TODAY", "2026-12-02");
    cmd
}

fn service(dir: &Path, templates: &Path, version: &str) -> PathBuf {
    let out = tool(dir, templates)
        .args(["new", "orders", "--template", "demo", "--yes"])
        .args(["--template-version", version])
        .output()
        .expect("run new");
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    dir.join("orders")
}

fn manifest(svc: &Path) -> toml::Table {
    std::fs::read_to_string(svc.join("platform.toml"))
        .expect("platform.toml")
        .parse()
        .expect("toml")
}

#[test]
fn new_writes_it_and_upgrade_leaves_it_out_on_the_record() {
    let t = templates(V3);
    let dir = scratch();
    let fresh = service(dir.path(), t.path(), "3.0.0");
    assert!(fresh.join("tests/example.rs").is_file(), "new writes it");
    assert!(manifest(&fresh)["files"].get("tests/example.rs").is_some());

    let dir = scratch();
    let svc = service(dir.path(), t.path(), "2.0.0");
    let out = tool(&svc, t.path())
        .args(["upgrade", "--dry-run", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "tests/example.rs")
        .unwrap_or_else(|| panic!("the plan lists it: {plan}"));
    assert_eq!(entry["status"], "kept", "{entry}");
    assert!(
        entry["detail"]
            .as_str()
            .unwrap()
            .contains("seeded for new services only"),
        "{entry}"
    );

    let out = tool(&svc, t.path()).args(["upgrade"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(!svc.join("tests/example.rs").exists(), "not added");
    assert!(
        svc.join("NOTES.md").is_file(),
        "a plain seeded file is added"
    );
    let m = manifest(&svc);
    assert_eq!(m["platform"]["version"].as_str(), Some("3.0.0"));
    assert!(m["files"].get("tests/example.rs").is_none(), "not recorded");
    assert!(m["files"].get("NOTES.md").is_some());

    // Nothing left to do, and nothing reported as the team's edit.
    git(&svc, &["add", "-A"]);
    git(&svc, &["commit", "-qm", "upgraded"]);
    let out = tool(&svc, t.path())
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["local_edits"], serde_json::json!([]), "{status}");
    let out = tool(&svc, t.path()).args(["upgrade"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(!svc.join("tests/example.rs").exists());
}

#[test]
fn new_only_on_a_file_that_is_not_seeded_is_refused_at_load() {
    let t = templates(&V3.replace(
        "mode = \"seeded\"\nnew_only = true",
        "mode = \"managed\"\nnew_only = true",
    ));
    let dir = scratch();
    let out = tool(dir.path(), t.path())
        .args(["new", "orders", "--template", "demo", "--yes", "--no-git"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("[files.\"tests/example.rs\"] new_only = true, but its mode is not `seeded`"),
        "{stderr}"
    );
    assert!(!dir.path().join("orders").exists(), "nothing written");
}
