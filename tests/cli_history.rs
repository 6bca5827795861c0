//! The manifest's history (schema 2): `new` records the creation, each upgrade appends one
//! entry, and a schema-1 manifest is read through v1 → v2, backfilled from git where it can be.

mod common;

use std::path::Path;

use common::{demo, git, scratch};

/// A demo 1.0.0 service `orders` in `dir`, made by the tool (no git), on `today`.
fn demo_new(dir: &Path, today: &str, extra: &[&str]) -> std::path::PathBuf {
    let mut args = vec![
        "new",
        "orders",
        "--template",
        "demo",
        "--template-version",
        "1.0.0",
        "--yes",
    ];
    args.extend_from_slice(extra);
    let out = demo(dir)
        .env("CARGO_PLATFORM_TODAY", today)
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::outcome(&out));
    dir.join("orders")
}

/// The manifest at `root` rewritten as an older tool (schema 1) wrote it: no history.
fn as_schema_1(root: &Path) {
    let path = root.join("platform.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut doc: toml_edit::DocumentMut = text.parse().unwrap();
    doc.remove("history");
    doc["platform"]["schema"] = toml_edit::value(1);
    std::fs::write(&path, doc.to_string()).unwrap();
}

fn manifest(root: &Path) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(root.join("platform.toml")).unwrap()).unwrap()
}

fn status_json(root: &Path, today: &str) -> serde_json::Value {
    let out = demo(root)
        .env("CARGO_PLATFORM_TODAY", today)
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::outcome(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn status_human(root: &Path) -> String {
    let out = demo(root).arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::outcome(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn upgrade(root: &Path, today: &str, extra: &[&str]) {
    let mut args = vec!["upgrade"];
    args.extend_from_slice(extra);
    let out = demo(root)
        .env("CARGO_PLATFORM_TODAY", today)
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::outcome(&out));
}

/// Commits everything in `root` with author and committer date `date` (noon UTC).
fn commit_on(root: &Path, date: &str, message: &str) {
    git(root, &["add", "-A"]);
    let when = format!("{date}T12:00:00+00:00");
    let home = common::home_with_identity();
    let out = std::process::Command::new("git")
        .args(["commit", "-q", "-m", message])
        .current_dir(root)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_AUTHOR_DATE", &when)
        .env("GIT_COMMITTER_DATE", &when)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn new_records_the_creation_in_schema_2() {
    let dir = scratch();
    let root = demo_new(dir.path(), "2026-11-22", &["--no-git"]);
    let m = manifest(&root);
    assert_eq!(m["platform"]["schema"].as_integer(), Some(2));
    let created = &m["history"]["created"];
    assert_eq!(created["date"].as_str(), Some("2026-11-22"));
    assert_eq!(created["template"].as_str(), Some("demo"));
    assert_eq!(created["version"].as_str(), Some("1.0.0"));
    assert_eq!(
        created["tool_version"].as_str(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let json = status_json(&root, "2026-11-23");
    assert_eq!(json["history"]["created"], "2026-11-22");
    assert_eq!(json["history"]["last_upgraded"], serde_json::Value::Null);
}

#[test]
fn an_upgrade_appends_exactly_one_entry_with_its_counts() {
    let dir = scratch();
    let root = demo_new(dir.path(), "2026-11-22", &["--no-git"]);
    // A hand edit far from the template's change: merged, not a conflict.
    let main = root.join("src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("// ours\n{text}")).unwrap();
    upgrade(&root, "2026-12-01", &[]);
    let m = manifest(&root);
    assert_eq!(m["history"]["created"]["date"].as_str(), Some("2026-11-22"));
    let ups = m["history"]["upgrades"].as_array().unwrap();
    assert_eq!(ups.len(), 1, "{ups:?}");
    let up = &ups[0];
    assert_eq!(up["date"].as_str(), Some("2026-12-01"));
    assert_eq!(up["from"].as_str(), Some("1.0.0"));
    assert_eq!(up["to"].as_str(), Some("2.0.0"));
    assert_eq!(up["tool_version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(up["merged"].as_integer(), Some(1), "{up:?}");
    assert_eq!(up["conflicts"].as_integer(), Some(0), "{up:?}");
    assert!(up["updated"].as_integer().unwrap() >= 1, "{up:?}");
    assert_eq!(
        up["migrations_applied"].as_array().unwrap(),
        &vec![toml::Value::String("demo-2.0.0-rename-key".into())]
    );
    assert!(up.get("recovered_from").is_none());
    let json = status_json(&root, "2026-12-02");
    assert_eq!(json["history"]["created"], "2026-11-22");
    assert_eq!(json["history"]["last_upgraded"], "2026-12-01");
    assert_eq!(json["history"]["upgrades"], 1);
    let text = status_human(&root);
    assert!(
        text.contains("\nhistory: created 2026-11-22, last upgraded 2026-12-01 (1 upgrade)\n"),
        "{text}"
    );
    // Nothing left to do: a second run appends nothing.
    upgrade(&root, "2026-12-03", &[]);
    assert_eq!(
        manifest(&root)["history"]["upgrades"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_schema_1_manifest_without_git_has_an_unknown_history_and_is_rewritten_as_schema_2() {
    let dir = scratch();
    let root = demo_new(dir.path(), "2026-11-22", &["--no-git"]);
    as_schema_1(&root);
    let json = status_json(&root, "2026-11-25");
    assert_eq!(json["history"]["created"], serde_json::Value::Null);
    assert_eq!(json["history"]["last_upgraded"], serde_json::Value::Null);
    assert_eq!(json["history"]["known"], false);
    let text = status_human(&root);
    assert!(
        text.contains("\nhistory: created: unknown, never upgraded\n"),
        "{text}"
    );
    // status reads, never writes.
    assert_eq!(manifest(&root)["platform"]["schema"].as_integer(), Some(1));
    upgrade(&root, "2026-12-01", &[]);
    let m = manifest(&root);
    assert_eq!(m["platform"]["schema"].as_integer(), Some(2));
    let history = m["history"].as_table().unwrap();
    assert!(
        history.get("created").is_none(),
        "never invented: {history:?}"
    );
    let ups = history["upgrades"].as_array().unwrap();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0]["from"].as_str(), Some("1.0.0"));
    assert_eq!(ups[0]["date"].as_str(), Some("2026-12-01"));
}

#[test]
fn a_schema_1_manifest_in_git_is_backfilled_from_the_history_of_platform_toml() {
    let dir = scratch();
    let root = demo_new(dir.path(), "2026-01-05", &["--no-git"]);
    git(&root, &["init", "-q"]);
    as_schema_1(&root);
    commit_on(&root, "2026-01-05", "new service");
    // An unrelated commit does not count.
    std::fs::write(root.join("notes.md"), "hello\n").unwrap();
    commit_on(&root, "2026-02-01", "notes");
    upgrade(&root, "2026-03-10", &[]);
    // The tool (this one) read the schema-1 file and recovered its creation from git.
    let m = manifest(&root);
    assert_eq!(m["platform"]["schema"].as_integer(), Some(2));
    assert_eq!(m["history"]["created"]["date"].as_str(), Some("2026-01-05"));
    assert_eq!(m["history"]["created"]["version"].as_str(), Some("1.0.0"));
    assert_eq!(
        m["history"]["created"]["recovered_from"].as_str(),
        Some("git")
    );
    // Now pretend an older tool did that upgrade: the file goes back to schema 1.
    as_schema_1(&root);
    commit_on(&root, "2026-03-10", "upgrade to 2.0.0");
    let json = status_json(&root, "2026-04-01");
    assert_eq!(json["history"]["known"], true);
    assert_eq!(json["history"]["created"], "2026-01-05");
    assert_eq!(json["history"]["last_upgraded"], "2026-03-10");
    assert_eq!(json["history"]["upgrades"], 1);

    // The next write (an eject) stores what git gave, as schema 2.
    let out = demo(&root)
        .env("CARGO_PLATFORM_TODAY", "2026-04-02")
        .args(["eject", "audit", "--reason", "ours"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::outcome(&out));
    let m = manifest(&root);
    assert_eq!(m["platform"]["schema"].as_integer(), Some(2));
    let ups = m["history"]["upgrades"].as_array().unwrap();
    assert_eq!(ups.len(), 1, "{ups:?}");
    assert_eq!(ups[0]["date"].as_str(), Some("2026-03-10"));
    assert_eq!(ups[0]["from"].as_str(), Some("1.0.0"));
    assert_eq!(ups[0]["to"].as_str(), Some("2.0.0"));
    assert_eq!(ups[0]["recovered_from"].as_str(), Some("git"));
    assert!(
        ups[0].get("merged").is_none(),
        "counts git cannot know are absent"
    );
}

#[test]
fn a_future_schema_is_a_clear_error_and_nothing_is_written() {
    let dir = scratch();
    let root = demo_new(dir.path(), "2026-11-22", &["--no-git"]);
    let path = root.join("platform.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("schema = 2", "schema = 4");
    std::fs::write(&path, &text).unwrap();
    for args in [&["status"][..], &["upgrade"][..]] {
        let out = demo(&root).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("manifest schema 4"), "{stderr}");
        assert!(stderr.contains("upgrade the tool"), "{stderr}");
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

/// The committer date (`YYYY-MM-DD`, committer's zone) of `rev` in `root`.
fn commit_date(root: &Path, rev: &str) -> String {
    git(root, &["log", "-1", "--format=%cs", rev])
        .trim()
        .to_string()
}

#[test]
fn backfill_from_commits_made_by_the_tool() {
    let dir = scratch();
    // `new` commits the service; an older tool's file would say schema 1.
    let root = demo_new(dir.path(), "2026-11-22", &[]);
    let created_on = commit_date(&root, "HEAD");
    as_schema_1(&root);
    git(
        &root,
        &["commit", "-q", "-am", "as written by an older tool"],
    );
    let out = demo(&root)
        .env("CARGO_PLATFORM_TODAY", "2026-12-01")
        .args(["upgrade", "--to", "2.0.0", "--commit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::outcome(&out));
    let m = manifest(&root);
    assert_eq!(m["platform"]["schema"].as_integer(), Some(2));
    let created = &m["history"]["created"];
    assert_eq!(created["date"].as_str(), Some(created_on.as_str()));
    assert_eq!(created["recovered_from"].as_str(), Some("git"));
    let ups = m["history"]["upgrades"].as_array().unwrap();
    assert_eq!(ups.len(), 1, "exactly the upgrade just made: {ups:?}");
    assert_eq!(ups[0]["date"].as_str(), Some("2026-12-01"));
    assert!(ups[0].get("recovered_from").is_none());
    assert_eq!(ups[0]["conflicts"].as_integer(), Some(0));

    // Had an older tool made that upgrade commit, git alone would give it back.
    let upgraded_on = commit_date(&root, "HEAD");
    as_schema_1(&root);
    git(&root, &["commit", "-q", "-am", "back to schema 1"]);
    let json = status_json(&root, "2026-12-02");
    assert_eq!(
        json["history"]["created"].as_str(),
        Some(created_on.as_str())
    );
    assert_eq!(
        json["history"]["last_upgraded"].as_str(),
        Some(upgraded_on.as_str())
    );
    assert_eq!(json["history"]["upgrades"], 1);
    assert_eq!(json["history"]["recovered_from_git"], true);
}
