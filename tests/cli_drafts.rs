//! Draft releases (`draft = true` in release.toml): never a default (`new`, `upgrade`, `status`,
//! `check`, `templates`), rendered only when named and opted in (`--allow-draft` or
//! `CARGO_PLATFORM_ALLOW_DRAFT=1`), and only the newest release may be one. Runs the CLI against a
//! copy of the demo template with a draft 3.0.0 added.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{DEMO_TEMPLATES, outcome, scratch};

const DRAFT_3: &str = r#"version = "3.0.0"
date = "2026-12-01"
summary = "Third, under construction"
draft = true
changelog = ["adds draft.txt"]

[files."draft.txt"]
component = "core"
mode = "managed"
"#;

/// A copy of the demo templates with a draft 3.0.0 that adds `draft.txt`.
fn templates_with_draft() -> tempfile::TempDir {
    let tmp = scratch();
    copy_tree(Path::new(DEMO_TEMPLATES), tmp.path());
    let v3 = tmp.path().join("demo/3.0.0");
    std::fs::create_dir_all(v3.join("files")).expect("mkdir");
    std::fs::write(v3.join("release.toml"), DRAFT_3).expect("write");
    std::fs::write(
        v3.join("files/draft.txt"),
        "drafted in {{ template_version }}\n",
    )
    .expect("write");
    tmp
}

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

/// The tool in `cwd` with the templates in `templates`, the opt-in not inherited.
fn tool(cwd: &Path, templates: &Path) -> Command {
    let mut cmd = common::platform(cwd);
    cmd.env("CARGO_PLATFORM_TEMPLATE_DIR", templates)
        .env("CARGO_PLATFORM_TODAY", "2026-12-02")
        .env_remove("CARGO_PLATFORM_ALLOW_DRAFT");
    cmd
}

fn version_of(service: &Path) -> String {
    let text = std::fs::read_to_string(service.join("platform.toml")).expect("platform.toml");
    let doc: toml::Table = text.parse().expect("toml");
    doc["platform"]["version"]
        .as_str()
        .expect("version")
        .to_string()
}

fn new(cwd: &Path, templates: &Path, extra: &[&str]) -> std::process::Output {
    tool(cwd, templates)
        .args(["new", "orders", "--template", "demo", "--yes", "--no-git"])
        .args(extra)
        .output()
        .expect("run new")
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", outcome(out));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn new_renders_the_newest_release_not_the_draft() {
    let templates = templates_with_draft();
    let dir = scratch();
    let out = new(dir.path(), templates.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let service = dir.path().join("orders");
    assert_eq!(version_of(&service), "2.0.0");
    assert!(!service.join("draft.txt").exists());
}

#[test]
fn new_refuses_a_draft_without_the_opt_in_and_writes_nothing() {
    let templates = templates_with_draft();
    let dir = scratch();
    let out = new(
        dir.path(),
        templates.path(),
        &["--template-version", "3.0.0"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("template `demo` 3.0.0 is a draft"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pass --allow-draft (or set CARGO_PLATFORM_ALLOW_DRAFT=1)"),
        "{stderr}"
    );
    assert!(stderr.contains("the newest release is 2.0.0"), "{stderr}");
    assert!(!dir.path().join("orders").exists());
}

#[test]
fn new_renders_a_draft_with_the_flag_or_the_env() {
    let templates = templates_with_draft();
    for how in ["flag", "env"] {
        let dir = scratch();
        let mut cmd = tool(dir.path(), templates.path());
        cmd.args([
            "new",
            "orders",
            "--template",
            "demo",
            "--yes",
            "--no-git",
            "--template-version",
            "3.0.0",
        ]);
        match how {
            "flag" => cmd.arg("--allow-draft"),
            _ => cmd.env("CARGO_PLATFORM_ALLOW_DRAFT", "1"),
        };
        let out = cmd.output().expect("run new");
        assert_eq!(out.status.code(), Some(0), "{how}: {}", outcome(&out));
        let service = dir.path().join("orders");
        assert_eq!(version_of(&service), "3.0.0", "{how}");
        assert_eq!(
            std::fs::read_to_string(service.join("draft.txt")).expect("draft.txt"),
            "drafted in 3.0.0\n"
        );
    }
    // `CARGO_PLATFORM_ALLOW_DRAFT=0` is no opt-in.
    let dir = scratch();
    let out = tool(dir.path(), templates.path())
        .env("CARGO_PLATFORM_ALLOW_DRAFT", "0")
        .args(["new", "orders", "--template", "demo", "--yes", "--no-git"])
        .args(["--template-version", "3.0.0"])
        .output()
        .expect("run new");
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
}

/// A demo 1.0.0 service in git, with the draft templates.
fn old_service(dir: &Path, templates: &Path) -> PathBuf {
    let out = tool(dir, templates)
        .args(["new", "orders", "--template", "demo", "--yes"])
        .args(["--template-version", "1.0.0"])
        .output()
        .expect("run new");
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    dir.join("orders")
}

#[test]
fn upgrade_goes_to_the_newest_release_and_to_a_draft_only_when_asked_and_allowed() {
    let templates = templates_with_draft();
    let dir = scratch();
    let service = old_service(dir.path(), templates.path());

    let plan = json(
        &tool(&service, templates.path())
            .args(["upgrade", "--dry-run", "--format", "json"])
            .output()
            .expect("upgrade"),
    );
    assert_eq!(plan["to"], "2.0.0", "{plan}");

    let out = tool(&service, templates.path())
        .args(["upgrade", "--to", "3.0.0"])
        .output()
        .expect("upgrade");
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("3.0.0 is a draft"), "{stderr}");
    assert!(stderr.contains("--allow-draft"), "{stderr}");
    assert_eq!(version_of(&service), "1.0.0", "nothing written");

    let out = tool(&service, templates.path())
        .args(["upgrade", "--to", "3.0.0", "--allow-draft"])
        .output()
        .expect("upgrade");
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert_eq!(version_of(&service), "3.0.0");
    assert!(service.join("draft.txt").exists());

    // On the draft, `upgrade` has no default target: it says why instead of "--to asks for".
    let out = tool(&service, templates.path())
        .args(["upgrade", "--dry-run"])
        .output()
        .expect("upgrade");
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "the service is on demo 3.0.0, newer than the newest release 2.0.0: 3.0.0 is a draft"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("--to asks for"), "{stderr}");
}

#[test]
fn status_check_and_templates_call_the_newest_release_newest() {
    let templates = templates_with_draft();
    let dir = scratch();
    let service = old_service(dir.path(), templates.path());

    let status = json(
        &tool(&service, templates.path())
            .args(["status", "--format", "json"])
            .output()
            .expect("status"),
    );
    assert_eq!(status["newest"], "2.0.0", "{status}");
    assert_eq!(status["releases_behind"], 1, "{status}");

    let listed = json(
        &tool(dir.path(), templates.path())
            .args(["templates", "--format", "json"])
            .output()
            .expect("templates"),
    );
    let demo = &listed["templates"][0];
    assert_eq!(demo["newest"], "2.0.0");
    let flags: Vec<(String, bool, bool)> = demo["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap().to_string(),
                v["newest"].as_bool().unwrap(),
                v["draft"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        vec![
            ("3.0.0".to_string(), false, true),
            ("2.0.0".to_string(), true, false),
            ("1.0.0".to_string(), false, false),
        ]
    );

    let human = tool(dir.path(), templates.path())
        .arg("templates")
        .output()
        .expect("templates");
    assert_eq!(human.status.code(), Some(0), "{}", outcome(&human));
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains(
            "  3.0.0 (2026-12-01) [draft: only with --allow-draft] — Third, under construction"
        ),
        "{text}"
    );
    assert!(
        text.contains("  2.0.0 (2026-06-01) [newest] — Second"),
        "{text}"
    );
}

#[test]
fn a_draft_that_is_not_the_newest_release_is_refused_at_load() {
    let templates = templates_with_draft();
    let v4 = templates.path().join("demo/4.0.0");
    std::fs::create_dir_all(&v4).expect("mkdir");
    std::fs::write(
        v4.join("release.toml"),
        "version = \"4.0.0\"\ndate = \"2026-12-02\"\nsummary = \"Fourth\"\n",
    )
    .expect("write");
    let dir = scratch();
    let out = tool(dir.path(), templates.path())
        .arg("templates")
        .output()
        .expect("templates");
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "demo/3.0.0/release.toml: `draft = true`, but only the newest release (4.0.0) may be a draft"
        ),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
