//! `cargo platform add` as a whole process. On the demo template with the fixture release
//! `tests/fixtures/releases/demo-3.0.0` laid over a copy of it as demo 3.0.0 (a component
//! switched by a choice with two values that turn it on, one switched by a yes/no question); and
//! once on the embedded `service` template.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{DEMO_TEMPLATES, git, outcome, scratch, settings};

const RELEASE_3: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/releases/demo-3.0.0"
);

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

/// A copy of the demo templates with the fixture release as demo 3.0.0.
fn templates() -> tempfile::TempDir {
    let tmp = scratch();
    copy_tree(Path::new(DEMO_TEMPLATES), tmp.path());
    copy_tree(Path::new(RELEASE_3), &tmp.path().join("demo/3.0.0"));
    tmp
}

/// The tool in `cwd` with the templates in `templates`.
fn tool(cwd: &Path, templates: &Path) -> Command {
    let mut cmd = common::platform(cwd);
    cmd.env("CARGO_PLATFORM_TEMPLATE_DIR", templates)
        .env("CARGO_PLATFORM_TODAY", "2026-12-02");
    cmd
}

/// A demo service `orders` created in `dir` by `new` (newest release unless `args` say), with
/// `args` added: a git repository with one commit.
fn service(dir: &Path, templates: &Path, args: &[&str]) -> PathBuf {
    let out = tool(dir, templates)
        .args(["new", "orders", "--template", "demo", "--yes"])
        .args(args)
        .output()
        .expect("run new");
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    dir.join("orders")
}

/// Every file below `root` (bytes), except `.git`.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(root).unwrap();
            let rel = rel.to_string_lossy().replace('\\', "/");
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// The tree without platform.toml, as text where it is text (for readable diffs).
fn files_but_manifest(root: &Path) -> BTreeMap<String, String> {
    snapshot(root)
        .into_iter()
        .filter(|(p, _)| p != "platform.toml")
        .map(|(p, b)| (p, String::from_utf8_lossy(&b).into_owned()))
        .collect()
}

fn manifest(root: &Path) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(root.join("platform.toml")).unwrap()).unwrap()
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `add` brings in exactly what `new` with the new answer renders: new files, the dependency,
/// the config key and the wiring; platform.toml records the answers, the files' hashes and a
/// `[[history.adds]]` entry.
#[test]
fn add_brings_in_exactly_what_new_renders_with_the_answer() {
    let t = templates();
    for (add, answer) in [
        (
            &["messaging", "--set", "messaging=nats"][..],
            "messaging=nats",
        ),
        (
            &["messaging", "--set", "messaging=kafka"],
            "messaging=kafka",
        ),
        // A component switched by a yes/no question is turned on without --set.
        (&["cache"], "cache=true"),
    ] {
        let dir = scratch();
        let svc = service(dir.path(), t.path(), &[]);
        let out = tool(&svc, t.path()).arg("add").args(add).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{add:?}: {}", outcome(&out));
        let fresh_dir = scratch();
        let fresh = service(fresh_dir.path(), t.path(), &["--set", answer]);
        assert_eq!(
            files_but_manifest(&svc),
            files_but_manifest(&fresh),
            "{add:?}: the same tree as `new --set {answer}`"
        );
        let (got, want) = (manifest(&svc), manifest(&fresh));
        for table in ["answers", "components", "files"] {
            assert_eq!(got[table], want[table], "{add:?}: [{table}]");
        }
        assert_eq!(got["platform"]["version"].as_str(), Some("3.0.0"));
        // The add is on the record, so the manifest is schema 3; a fresh one stays 2.
        assert_eq!(got["platform"]["schema"].as_integer(), Some(3), "{add:?}");
        assert_eq!(want["platform"]["schema"].as_integer(), Some(2), "{add:?}");
        let (key, value) = answer.split_once('=').unwrap();
        let adds = got["history"]["adds"].as_array().expect("[[history.adds]]");
        assert_eq!(adds.len(), 1, "{add:?}");
        assert_eq!(adds[0]["component"].as_str(), Some(add[0]));
        assert_eq!(adds[0]["version"].as_str(), Some("3.0.0"));
        assert_eq!(adds[0]["date"].as_str(), Some("2026-12-02"));
        assert_eq!(
            adds[0]["set"][key].to_string().trim_matches('"'),
            value,
            "{add:?}"
        );
        assert_eq!(adds[0]["conflicts"].as_integer(), Some(0));
        assert!(adds[0]["updated"].as_integer().unwrap() > 0);
        assert!(
            got["history"].get("upgrades").is_none(),
            "an add is not an upgrade"
        );
    }
    // What the messaging choice brings, spelled out (the comparison above holds it to `new`).
    let dir = scratch();
    let svc = service(dir.path(), t.path(), &[]);
    tool(&svc, t.path())
        .args(["add", "messaging", "--set", "messaging=nats"])
        .assert()
        .code(0);
    assert!(read(&svc, "Cargo.toml").contains("\nasync-nats = \"0.42\"\n"));
    assert!(
        read(&svc, "config/default.toml")
            .contains("\n[messaging]\nurl = \"nats://127.0.0.1:4222\"\n")
    );
    assert!(read(&svc, "src/main.rs").starts_with("mod messaging;\n"));
    assert!(read(&svc, "src/main.rs").contains("    messaging::start(&config.messaging_url);\n"));
    assert_eq!(
        read(&svc, "src/messaging.rs").lines().next(),
        Some("//! Messaging over nats.")
    );
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let t = templates();
    let dir = scratch();
    let svc = service(dir.path(), t.path(), &[]);
    let before = snapshot(&svc);
    let out = tool(&svc, t.path())
        .args(["add", "messaging", "--set", "messaging=nats", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    settings().bind(|| insta::assert_snapshot!("add_dry_run", stdout(&out)));
    assert_eq!(snapshot(&svc), before, "a dry run writes nothing");

    let out = tool(&svc, t.path())
        .args(["add", "cache", "--dry-run", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["command"], "add");
    assert_eq!(v["outcome"], "planned");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["applied"], false);
    assert_eq!(
        v["set"],
        serde_json::json!([{ "key": "cache", "from": false, "to": true }])
    );
    let status = |p: &str| {
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == p)
            .map(|f| f["status"].clone())
    };
    assert_eq!(status("src/cache.rs"), Some("new".into()));
    assert_eq!(status("src/main.rs"), Some("updated".into()));
    assert_eq!(snapshot(&svc), before, "a dry run writes nothing");
}

/// The team's edits in a managed file and in Cargo.toml are merged with what `add` brings; after
/// it, `status` reports exactly the team's edits.
#[test]
fn team_edits_are_merged_three_way() {
    let t = templates();
    let dir = scratch();
    let svc = service(dir.path(), t.path(), &[]);
    let main = read(&svc, "src/main.rs");
    let team = |s: &str| s.replace("println!(\"port {}\"", "println!(\"listening on {}\"");
    std::fs::write(svc.join("src/main.rs"), team(&main)).unwrap();
    let cargo = read(&svc, "Cargo.toml");
    std::fs::write(svc.join("Cargo.toml"), format!("{cargo}tokio = \"1\"\n")).unwrap();
    git(&svc, &["commit", "-qam", "team edits"]);

    let out = tool(&svc, t.path())
        .args(["add", "messaging", "--set", "messaging=nats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let text = stdout(&out);
    assert!(text.contains("  merged     src/main.rs\n"), "{text}");
    assert!(text.contains("  merged     Cargo.toml\n"), "{text}");

    let fresh_dir = scratch();
    let fresh = service(fresh_dir.path(), t.path(), &["--set", "messaging=nats"]);
    assert_eq!(
        read(&svc, "src/main.rs"),
        team(&read(&fresh, "src/main.rs"))
    );
    let merged = read(&svc, "Cargo.toml");
    assert!(merged.contains("\nasync-nats = \"0.42\"\n"), "{merged}");
    assert!(merged.contains("\ntokio = \"1\"\n"), "{merged}");
    let adds = &manifest(&svc)["history"]["adds"][0];
    assert_eq!(adds["merged"].as_integer(), Some(2));

    let out = tool(&svc, t.path())
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let edits: Vec<&str> = v["local_edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(edits, ["Cargo.toml", "src/main.rs"], "{v}");
}

/// The team edited the line the wiring goes after: a conflict, left as markers (or a `.rej`
/// file), exit 3, the rest applied and recorded.
#[test]
fn a_conflict_exits_3_and_is_listed() {
    let t = templates();
    for style in ["markers", "reject"] {
        let dir = scratch();
        let svc = service(dir.path(), t.path(), &[]);
        let team = read(&svc, "src/main.rs").replace("\"ready\"", "\"ready to serve\"");
        std::fs::write(svc.join("src/main.rs"), &team).unwrap();
        git(&svc, &["commit", "-qam", "team edit"]);
        let out = tool(&svc, t.path())
            .args([
                "add",
                "messaging",
                "--set",
                "messaging=nats",
                "--conflict",
                style,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{style}: {}", outcome(&out));
        let text = stdout(&out);
        assert!(text.contains("1 conflict remains: src/main.rs\n"), "{text}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("error:"));
        let main = read(&svc, "src/main.rs");
        if style == "markers" {
            assert!(
                main.contains(
                    "<<<<<<< yours\n    println!(\"ready to serve\");\n=======\n    println!(\"ready\");\n    messaging::start(&config.messaging_url);\n>>>>>>> template demo 3.0.0 with messaging=nats\n"
                ),
                "{main}"
            );
        } else {
            // The clean hunks are applied; the conflicting one keeps the team's lines and the
            // template's side goes to the .rej file.
            assert!(!main.contains("<<<<<<<"), "{main}");
            assert!(main.starts_with("mod messaging;\n"), "{main}");
            assert!(
                main.contains("    println!(\"ready to serve\");\n}\n"),
                "{main}"
            );
            let rej = read(&svc, "src/main.rs.rej");
            assert!(
                rej.contains("messaging::start(&config.messaging_url);"),
                "{rej}"
            );
        }
        assert!(
            svc.join("src/messaging.rs").is_file(),
            "the rest is applied"
        );
        let m = manifest(&svc);
        assert_eq!(m["answers"]["messaging"].as_str(), Some("nats"));
        assert_eq!(m["history"]["adds"][0]["conflicts"].as_integer(), Some(1));
    }
}

/// A crash mid-write leaves a journal: every command refuses until `add --abort` (the same as
/// `upgrade --abort`) restores the tree byte for byte.
#[test]
fn a_crash_mid_write_is_rolled_back_exactly_by_abort() {
    let t = templates();
    for abort in [["add", "--abort"], ["upgrade", "--abort"]] {
        let dir = scratch();
        let svc = service(dir.path(), t.path(), &[]);
        let before = snapshot(&svc);
        let out = tool(&svc, t.path())
            .env("CARGO_PLATFORM_FAULT", "upgrade:crash:2")
            .args(["add", "messaging", "--set", "messaging=nats"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(101), "{}", outcome(&out));
        assert_ne!(snapshot(&svc), before, "the crash left a half-written tree");

        let out = tool(&svc, t.path())
            .args(["add", "messaging", "--set", "messaging=nats"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("cargo platform upgrade --abort"));

        let out = tool(&svc, t.path()).args(abort).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{abort:?}: {}", outcome(&out));
        assert_eq!(snapshot(&svc), before, "{abort:?} restores the exact tree");
        let out = tool(&svc, t.path()).args(abort).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "nothing left to abort");
        // The journal is the same for both commands: the message names both.
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no interrupted upgrade or add to abort"),
            "{abort:?}: {}",
            outcome(&out)
        );
    }
}

#[test]
fn a_dirty_tree_is_refused_unless_allowed() {
    let t = templates();
    let dir = scratch();
    let svc = service(dir.path(), t.path(), &[]);
    std::fs::write(svc.join("notes.txt"), "wip").unwrap();
    let before = snapshot(&svc);
    let out = tool(&svc, t.path())
        .args(["add", "messaging", "--set", "messaging=nats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: the git work tree has uncommitted changes: notes.txt"),
        "{err}"
    );
    assert!(err.contains("--allow-dirty"), "{err}");
    assert_eq!(snapshot(&svc), before, "nothing written");
    let out = tool(&svc, t.path())
        .args([
            "add",
            "messaging",
            "--set",
            "messaging=nats",
            "--allow-dirty",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(svc.join("src/messaging.rs").is_file());
    assert_eq!(read(&svc, "notes.txt"), "wip");
}

/// A service upgraded to 3.0.0 gets messaging like one created there; after an upgrade with
/// `--exclude`, `add` needs the same `--exclude` (the merge base is proven only outside it).
#[test]
fn after_an_upgrade_add_works_and_honours_the_same_exclude() {
    let t = templates();
    let dir = scratch();
    let svc = service(dir.path(), t.path(), &["--template-version", "2.0.0"]);
    tool(&svc, t.path())
        .args(["upgrade", "--commit"])
        .assert()
        .code(0);
    tool(&svc, t.path())
        .args(["add", "messaging", "--set", "messaging=nats"])
        .assert()
        .code(0);
    let fresh_dir = scratch();
    let fresh = service(fresh_dir.path(), t.path(), &["--set", "messaging=nats"]);
    assert_eq!(files_but_manifest(&svc), files_but_manifest(&fresh));

    let dir = scratch();
    let svc = service(dir.path(), t.path(), &["--template-version", "2.0.0"]);
    tool(&svc, t.path())
        .args(["upgrade", "--exclude", "src/main.rs", "--commit"])
        .assert()
        .code(0);
    let before = snapshot(&svc);
    let out = tool(&svc, t.path())
        .args(["add", "messaging", "--set", "messaging=nats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("src/main.rs: the render differs from the recorded hash"),
        "{err}"
    );
    assert!(err.contains("--exclude those paths"), "{err}");
    assert_eq!(snapshot(&svc), before, "nothing written");

    let out = tool(&svc, t.path())
        .args([
            "add",
            "messaging",
            "--set",
            "messaging=nats",
            "--exclude",
            "src/main.rs",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(
        stdout(&out).contains("  excluded   src/main.rs\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        read(&svc, "src/main.rs").as_bytes(),
        &before["src/main.rs"][..]
    );
    assert!(svc.join("src/messaging.rs").is_file());
    let m = manifest(&svc);
    assert_eq!(
        m["files"]["src/main.rs"]["sha256"],
        toml::from_str::<toml::Table>(std::str::from_utf8(&before["platform.toml"]).unwrap())
            .unwrap()["files"]["src/main.rs"]["sha256"],
        "the record of an excluded file stays what the platform last wrote there"
    );
}

/// Every refusal says what is valid, exits 1 and writes nothing.
#[test]
fn bad_requests_say_what_is_valid_and_write_nothing() {
    let t = templates();
    let dir = scratch();
    let svc = service(dir.path(), t.path(), &[]);
    // cache on and extra ejected, committed, so the cases below see a clean tree.
    tool(&svc, t.path()).args(["add", "cache"]).assert().code(0);
    tool(&svc, t.path())
        .args(["eject", "extra", "--reason", "our own store"])
        .assert()
        .code(0);
    git(&svc, &["add", "-A"]);
    git(&svc, &["commit", "-qm", "cache, extra ejected"]);
    let old_dir = scratch();
    let old = service(old_dir.path(), t.path(), &["--template-version", "2.0.0"]);

    let cases: [(&str, &Path, &[&str]); 10] = [
        ("add_unknown_component", &svc, &["add", "kafka"]),
        (
            "add_component_of_a_newer_release",
            &old,
            &["add", "messaging"],
        ),
        (
            "add_ejected_component",
            &svc,
            &["add", "extra", "--set", "store=postgres"],
        ),
        (
            "add_not_a_choice",
            &svc,
            &["add", "messaging", "--set", "messaging=rabbitmq"],
        ),
        (
            "add_question_of_another_component",
            &svc,
            &["add", "messaging", "--set", "store=postgres"],
        ),
        (
            "add_unknown_question",
            &svc,
            &["add", "messaging", "--set", "colour=red"],
        ),
        ("add_needs_a_choice", &svc, &["add", "messaging"]),
        (
            "add_turns_off",
            &svc,
            &["add", "cache", "--set", "cache=false"],
        ),
        (
            "add_set_without_equals",
            &svc,
            &["add", "messaging", "--set", "messaging"],
        ),
        (
            "add_not_a_bool",
            &svc,
            &["add", "cache", "--set", "cache=maybe"],
        ),
    ];
    for (name, root, args) in cases {
        let before = snapshot(root);
        let out = tool(root, t.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", outcome(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
        assert_eq!(snapshot(root), before, "{args:?}: nothing written");
        settings().bind(|| insta::assert_snapshot!(name, outcome(&out)));
    }
}

/// Asking for what the service already has: a message, exit 0, nothing written.
#[test]
fn nothing_to_change_says_so_and_writes_nothing() {
    let t = templates();
    let dir = scratch();
    let svc = service(dir.path(), t.path(), &["--set", "cache=true"]);
    let before = snapshot(&svc);
    for (args, says) in [
        (
            &["add", "cache"][..],
            "nothing to add: component `cache` is already on (cache = true)",
        ),
        (
            &["add", "messaging", "--set", "messaging=none"],
            "nothing to add: the service already has messaging = none",
        ),
        (
            &["add", "core"],
            "nothing to add: component `core` is always on in demo 3.0.0 (no question switches its files)",
        ),
    ] {
        let out = tool(&svc, t.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", outcome(&out));
        let text = stdout(&out);
        assert!(
            text.starts_with(&format!("orders: {says}")),
            "{args:?}: {text}"
        );
        assert!(text.ends_with("; nothing written\n"), "{text}");
        assert_eq!(snapshot(&svc), before, "{args:?}: nothing written");
    }
    let out = tool(&svc, t.path())
        .args(["add", "cache", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "unchanged");
    assert_eq!(v["applied"], false);
    assert!(v["reason"].as_str().unwrap().contains("already on"), "{v}");
}

#[test]
fn commit_commits_the_change() {
    let t = templates();
    let dir = scratch();
    let svc = service(dir.path(), t.path(), &[]);
    let out = tool(&svc, t.path())
        .args(["add", "messaging", "--set", "messaging=kafka", "--commit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(stdout(&out).contains("Committed "), "{}", stdout(&out));
    assert_eq!(
        git(&svc, &["status", "--porcelain"]),
        "",
        "everything committed"
    );
    let message = git(&svc, &["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with("Add messaging to orders: messaging=kafka\n"),
        "{message}"
    );
    assert!(read(&svc, "Cargo.toml").contains("\nrdkafka = \"0.37\"\n"));
}

/// On the embedded `service` template: the idempotency store chosen after creation brings what
/// `new` with that answer brings (the PostgreSQL store, its migration, sqlx, the config), except
/// in the team's seeded files, which `add` never touches.
#[test]
fn on_the_service_template_a_store_choice_matches_new() {
    let new = |dir: &Path, extra: &[&str]| {
        let out = common::platform(dir)
            .env("CARGO_PLATFORM_TODAY", "2026-12-02")
            .args(["new", "orders", "--yes", "--set", "owner=payments"])
            .args(["--template-version", "3.0.0"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
        dir.join("orders")
    };
    let dir = scratch();
    let svc = new(dir.path(), &[]);
    let out = common::platform(&svc)
        .env("CARGO_PLATFORM_TODAY", "2026-12-02")
        .args(["add", "idempotency", "--set", "idempotency_store=postgres"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let fresh_dir = scratch();
    let fresh = new(fresh_dir.path(), &["--set", "idempotency_store=postgres"]);

    let m = manifest(&fresh);
    let seeded: Vec<String> = m["files"]
        .as_table()
        .unwrap()
        .iter()
        .filter(|(_, f)| f["mode"].as_str() == Some("seeded"))
        .map(|(p, _)| p.clone())
        .collect();
    let platform_owned = |root: &Path| {
        let mut files = files_but_manifest(root);
        files.retain(|p, _| !seeded.contains(p));
        files
    };
    assert_eq!(platform_owned(&svc), platform_owned(&fresh));
    let got = manifest(&svc);
    for table in ["answers", "components", "files"] {
        assert_eq!(got[table], m[table], "[{table}]");
    }
    assert!(svc.join("migrations/0001_idempotency_keys.sql").is_file());
    assert!(svc.join("src/platform/idempotency/postgres.rs").is_file());
    assert!(read(&svc, "Cargo.toml").contains("sqlx"));
    // The same seeded files exist on both sides: `add` creates none and deletes none.
    let paths = |root: &Path| snapshot(root).into_keys().collect::<Vec<_>>();
    assert_eq!(paths(&svc), paths(&fresh));
}

/// A component only a draft release brings: the error names the release and the opt-in.
#[test]
fn a_component_of_a_draft_release_names_the_release_and_the_opt_in() {
    let t = templates();
    let release = t.path().join("demo/3.0.0/release.toml");
    let text = std::fs::read_to_string(&release).unwrap();
    std::fs::write(
        &release,
        text.replace("summary = ", "draft = true\nsummary = "),
    )
    .unwrap();
    let dir = scratch();
    let svc = service(dir.path(), t.path(), &[]);
    let before = snapshot(&svc);
    let out = tool(&svc, t.path())
        .args(["add", "cache"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    settings().bind(|| insta::assert_snapshot!("add_component_of_a_draft_release", outcome(&out)));
    assert_eq!(snapshot(&svc), before, "nothing written");
}
