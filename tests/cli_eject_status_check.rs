//! `eject`, `status` and `check` on a service scaffolded from the embedded `service` template:
//! what they record, what they report, their exit codes, and that errors change nothing.

mod common;

use std::path::{Path, PathBuf};

use common::{outcome, platform, scratch, settings, tree};

/// `new orders` in `dir` (pinned to `version` when given); returns the service root.
fn scaffold(dir: &Path, version: Option<&str>) -> PathBuf {
    let mut cmd = platform(dir);
    cmd.args(["new", "orders", "--yes", "--set", "owner=t", "--no-git"]);
    if let Some(v) = version {
        cmd.args(["--template-version", v]);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    dir.join("orders")
}

fn manifest(root: &Path) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(root.join("platform.toml")).unwrap()).unwrap()
}

/// The recorded files of `component` with `mode`, from platform.toml.
fn files_of(root: &Path, component: &str, mode: &str) -> Vec<String> {
    manifest(root)["files"]
        .as_table()
        .unwrap()
        .iter()
        .filter(|(_, f)| {
            f["component"].as_str() == Some(component) && f["mode"].as_str() == Some(mode)
        })
        .map(|(p, _)| p.clone())
        .collect()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status_json(root: &Path) -> serde_json::Value {
    let out = platform(root)
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn eject_records_the_component_keeps_comments_and_status_shows_it() {
    let dir = scratch();
    let root = scaffold(dir.path(), None);
    let manifest_path = root.join("platform.toml");
    let original = std::fs::read_to_string(&manifest_path).unwrap();
    let commented = original.replacen("[answers]", "# reviewed by the payments team\n[answers]", 1);
    std::fs::write(&manifest_path, &commented).unwrap();
    let auth_files: Vec<String> = manifest(&root)["files"]
        .as_table()
        .unwrap()
        .iter()
        .filter(|(_, f)| f["component"].as_str() == Some("auth"))
        .map(|(p, _)| p.clone())
        .collect();
    assert!(
        !auth_files.is_empty(),
        "the service template gives auth some files"
    );

    let out = platform(&root)
        .args(["eject", "auth", "--reason", "we terminate mTLS at the mesh"])
        .env("CARGO_PLATFORM_TODAY", "2026-12-01")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Ejected auth (we terminate mTLS at the mesh) on 2026-12-01"),
        "{text}"
    );
    assert!(text.contains("upgrades will skip"), "{text}");
    for f in &auth_files {
        assert!(
            text.contains(&format!("    {f}\n")),
            "{f} listed in: {text}"
        );
    }

    let after = std::fs::read_to_string(&manifest_path).unwrap();
    assert!(
        after.contains("# reviewed by the payments team\n[answers]"),
        "comment kept: {after}"
    );
    let m = manifest(&root);
    let auth = &m["components"]["auth"];
    assert_eq!(auth["state"].as_str(), Some("ejected"));
    assert_eq!(
        auth["reason"].as_str(),
        Some("we terminate mTLS at the mesh")
    );
    assert_eq!(auth["date"].as_str(), Some("2026-12-01"));
    assert_eq!(
        m["components"]["logging"]["state"].as_str(),
        Some("managed"),
        "others untouched"
    );
    assert!(
        tree(&root).iter().all(|p| !p.contains(".cargo-platform-")),
        "no temporary file left"
    );

    // status shows it, human and JSON; edits to its files are the team's business.
    let managed_auth = files_of(&root, "auth", "managed");
    if let Some(f) = managed_auth.first() {
        std::fs::write(root.join(f), "// ours now\n").unwrap();
    }
    let out = platform(&root).arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let text = stdout(&out);
    assert!(
        text.contains("ejected components (off the golden path): 1"),
        "{text}"
    );
    assert!(
        text.contains("  auth: ejected on 2026-12-01 — we terminate mTLS at the mesh"),
        "{text}"
    );
    assert!(
        text.contains("local edits to platform files: none"),
        "{text}"
    );
    let v = status_json(&root);
    assert_eq!(
        v["ejected"],
        serde_json::json!([{ "component": "auth", "reason": "we terminate mTLS at the mesh", "date": "2026-12-01" }])
    );

    // Ejecting again keeps the original record and says so.
    let out = platform(&root)
        .args(["eject", "auth", "--reason", "another reason"])
        .env("CARGO_PLATFORM_TODAY", "2027-01-15")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(
        stdout(&out).contains("auth is already ejected on 2026-12-01"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&manifest_path).unwrap(),
        after,
        "record kept byte for byte"
    );
}

#[test]
fn eject_refuses_core_and_unknown_components_before_writing_anything() {
    let dir = scratch();
    let root = scaffold(dir.path(), Some("1.0.0"));
    let before = std::fs::read(root.join("platform.toml")).unwrap();
    let files_before = tree(&root);
    let s = settings();
    for (snapshot, args) in [
        ("eject_core", &["eject", "core"][..]),
        ("eject_unknown", &["eject", "kafka"]),
        // A valid name first does not get written when a later one is bad.
        ("eject_valid_then_unknown", &["eject", "auth", "kafka"]),
    ] {
        let out = platform(&root).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", outcome(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("hint: ejectable components: "),
            "{args:?}: {err}"
        );
        for c in [
            "auth",
            "flags",
            "idempotency",
            "logging",
            "metrics",
            "tracing",
        ] {
            assert!(err.contains(c), "{c} listed: {err}");
        }
        let hint = err
            .lines()
            .find(|l| l.contains("hint: ejectable components: "))
            .unwrap();
        assert!(!hint.contains("core"), "core is not offered: {hint}");
        assert_eq!(
            std::fs::read(root.join("platform.toml")).unwrap(),
            before,
            "{args:?}: manifest unchanged"
        );
        assert_eq!(tree(&root), files_before, "{args:?}: nothing written");
        s.bind(|| insta::assert_snapshot!(snapshot, outcome(&out)));
    }
}

#[test]
fn a_failed_manifest_write_leaves_the_manifest_as_it_was() {
    let dir = scratch();
    let root = scaffold(dir.path(), None);
    let before = std::fs::read(root.join("platform.toml")).unwrap();
    let files_before = tree(&root);
    let out = platform(&root)
        .args(["eject", "auth"])
        .env("CARGO_PLATFORM_FAULT", "write:rename")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("injected fault"),
        "{}",
        outcome(&out)
    );
    assert_eq!(std::fs::read(root.join("platform.toml")).unwrap(), before);
    assert_eq!(tree(&root), files_before, "no temporary file left behind");
}

#[test]
fn eject_refuses_while_an_interrupted_upgrade_is_pending_and_status_warns() {
    let dir = scratch();
    let root = scaffold(dir.path(), None);
    let before = std::fs::read(root.join("platform.toml")).unwrap();
    std::fs::create_dir(root.join(".cargo-platform-journal")).unwrap();
    let out = platform(&root).args(["eject", "auth"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("upgrade --abort"),
        "{}",
        outcome(&out)
    );
    assert_eq!(std::fs::read(root.join("platform.toml")).unwrap(), before);

    let out = platform(&root).arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: an interrupted upgrade"),
        "{}",
        outcome(&out)
    );
    assert_eq!(status_json(&root)["upgrade_in_flight"], true);
}

#[test]
fn status_reports_edited_and_deleted_platform_files_but_not_seeded_ones() {
    let dir = scratch();
    let root = scaffold(dir.path(), None);
    let out = platform(&root).arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let text = stdout(&out);
    assert!(text.starts_with("orders: template service "), "{text}");
    assert!(
        text.contains("(newest)"),
        "a fresh service is on the newest version: {text}"
    );
    assert!(text.contains("\nsupport: "), "{text}");
    assert!(text.contains("pending migrations: none"), "{text}");
    assert!(text.contains("ejected components: none"), "{text}");
    assert!(
        text.contains("local edits to platform files: none"),
        "{text}"
    );

    let managed = files_of(&root, "core", "managed");
    assert!(managed.len() >= 2, "core has managed files: {managed:?}");
    let (edited, deleted) = (&managed[0], &managed[1]);
    let seeded = manifest(&root)["files"]
        .as_table()
        .unwrap()
        .iter()
        .find(|(_, f)| f["mode"].as_str() == Some("seeded"))
        .map(|(p, _)| p.clone())
        .expect("the template seeds some files");
    let mut content = std::fs::read(root.join(edited)).unwrap();
    content.extend_from_slice(b"\n# a local edit\n");
    std::fs::write(root.join(edited), content).unwrap();
    std::fs::remove_file(root.join(deleted)).unwrap();
    std::fs::write(root.join(&seeded), "the team's own words\n").unwrap();
    // Files the manifest does not record are never looked at.
    std::fs::create_dir_all(root.join("target/debug")).unwrap();
    std::fs::write(root.join("target/debug/orders"), "build output").unwrap();

    let out = platform(&root).arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let text = stdout(&out);
    assert!(text.contains("local edits to platform files: 2"), "{text}");
    assert!(
        text.contains(&format!("  edited           {edited} (core, managed)")),
        "{text}"
    );
    assert!(
        text.contains(&format!("  deleted locally  {deleted} (core, managed)")),
        "{text}"
    );
    assert!(
        !text.contains(&seeded),
        "seeded files are the team's: {text}"
    );

    let v = status_json(&root);
    let edits = v["local_edits"].as_array().unwrap();
    assert_eq!(edits.len(), 2, "{edits:?}");
    let change_of = |p: &str| {
        edits
            .iter()
            .find(|e| e["path"] == p)
            .map(|e| e["change"].clone())
    };
    assert_eq!(change_of(edited), Some("edited".into()));
    assert_eq!(change_of(deleted), Some("deleted".into()));
}

#[test]
fn status_json_is_one_document_with_everything() {
    let dir = scratch();
    let root = scaffold(dir.path(), None);
    let v = status_json(&root);
    let newest = {
        let out = platform(dir.path())
            .args(["templates", "--format", "json"])
            .output()
            .unwrap();
        let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        t["templates"][0]["newest"].clone()
    };
    assert_eq!(v["name"], "orders");
    assert_eq!(v["template"], "service");
    assert_eq!(v["version"], newest);
    assert_eq!(v["newest"], newest);
    assert_eq!(v["up_to_date"], true);
    assert!(v["support"]["state"].is_string(), "{v}");
    for key in [
        "pending_migrations",
        "skipped_migrations",
        "ejected",
        "local_edits",
    ] {
        assert_eq!(v[key], serde_json::json!([]), "{key}: {v}");
    }
    assert_eq!(v["policy"]["ok"], true, "{v}");
    assert_eq!(v["upgrade_in_flight"], false, "{v}");
}

#[test]
fn check_passes_on_a_fresh_service() {
    let dir = scratch();
    let root = scaffold(dir.path(), None);
    let out = platform(&root).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(
        stdout(&out).contains("ok: orders on service "),
        "{}",
        stdout(&out)
    );
    assert!(out.stderr.is_empty(), "{}", outcome(&out));
}

/// `check` on a service pinned to 1.0.0, on a day far in the future: it fails exactly when the
/// embedded catalogue says 1.0.0 has an end of support or a newer release has a required
/// migration, and lists each reason on its own line.
#[test]
fn check_on_an_old_release_follows_the_catalogue() {
    let dir = scratch();
    let root = scaffold(dir.path(), Some("1.0.0"));
    let out = platform(dir.path())
        .args(["templates", "--format", "json"])
        .output()
        .unwrap();
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let versions = t["templates"][0]["versions"].as_array().unwrap();
    let v1 = versions.iter().find(|v| v["version"] == "1.0.0").unwrap();
    let end_of_support = v1["support"]["end_of_support"].as_str();
    let required: Vec<&str> = versions
        .iter()
        .filter(|v| v["version"] != "1.0.0")
        .flat_map(|v| v["migrations"].as_array().unwrap())
        .filter(|m| m["required"] == true)
        .map(|m| m["id"].as_str().unwrap())
        .collect();

    let out = platform(&root)
        .arg("check")
        .env("CARGO_PLATFORM_TODAY", "2999-01-01")
        .output()
        .unwrap();
    let text = stdout(&out);
    match end_of_support {
        Some(end) => assert!(
            text.contains(&format!("out-of-support: service 1.0.0 reached end of support on {end}; run cargo platform upgrade")),
            "{text}"
        ),
        None => assert!(!text.contains("out-of-support"), "no window, never out of support: {text}"),
    }
    for id in &required {
        assert!(
            text.contains(&format!("pending-required-migration: {id} (")),
            "{id}: {text}"
        );
    }
    if end_of_support.is_some() || !required.is_empty() {
        assert_eq!(out.status.code(), Some(4), "{}", outcome(&out));
        // An outcome, not an error: said on stdout, nothing on stderr.
        assert!(
            text.contains("\nout of policy: orders on service 1.0.0 has "),
            "{text}"
        );
        assert!(out.stderr.is_empty(), "{}", outcome(&out));
    } else {
        assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    }

    // The day before end of support, only a pending required migration can fail it.
    if let Some(end) = end_of_support {
        let day_before = end
            .parse::<jiff::civil::Date>()
            .unwrap()
            .yesterday()
            .unwrap();
        let out = platform(&root)
            .arg("check")
            .env("CARGO_PLATFORM_TODAY", day_before.to_string())
            .output()
            .unwrap();
        assert!(!stdout(&out).contains("out-of-support"), "{}", stdout(&out));
        assert_eq!(
            out.status.code(),
            Some(if required.is_empty() { 0 } else { 4 }),
            "{}",
            outcome(&out)
        );
    }
}

/// The demo fixture template (through `CARGO_PLATFORM_TEMPLATE_DIR`): its 1.0.0 is deprecated
/// from 2026-06-01 and supported until 2026-12-31; its 2.0.0 ships a required migration.
fn demo_on(root: &Path, cmd: &str, today: &str) -> std::process::Output {
    common::demo(root)
        .arg(cmd)
        .env("CARGO_PLATFORM_TODAY", today)
        .output()
        .unwrap()
}

#[test]
fn check_and_status_on_a_release_with_a_support_window_and_a_required_migration() {
    let dir = scratch();
    let out = common::demo(dir.path())
        .args([
            "new",
            "orders",
            "--template",
            "demo",
            "--template-version",
            "1.0.0",
        ])
        .args(["--yes", "--no-git"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let root = dir.path().join("orders");
    let pending =
        "pending-required-migration: demo-2.0.0-rename-key (2.0.0): Rename a config key\n";

    // Before deprecation: only the pending required migration fails it.
    let out = demo_on(&root, "check", "2026-03-01");
    assert_eq!(out.status.code(), Some(4), "{}", outcome(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{pending}out of policy: orders on demo 1.0.0 has 1 failing finding\nnext: run `cargo platform upgrade` (`cargo platform status` shows what it involves)\n"
        )
    );
    assert!(out.stderr.is_empty(), "{}", outcome(&out));
    let text = stdout(&demo_on(&root, "status", "2026-03-01"));
    assert!(text.starts_with("orders: template demo 1.0.0 (newest is 2.0.0, 1 release behind: cargo platform upgrade)\n"), "{text}");
    assert!(text.contains("support: supported; deprecated from 2026-06-01, supported until 2026-12-31 (305 days left)\n"), "{text}");
    assert!(text.contains("pending migrations: 1\n  demo-2.0.0-rename-key (2.0.0, required): Rename a config key\n"), "{text}");

    // Deprecated: a warning line, after the failure.
    let out = demo_on(&root, "check", "2026-07-01");
    assert_eq!(out.status.code(), Some(4), "{}", outcome(&out));
    assert!(stdout(&out).starts_with(pending), "{}", stdout(&out));
    assert!(stdout(&out).contains("\ndeprecated: demo 1.0.0 is deprecated since 2026-06-01 and reaches end of support on 2026-12-31;"), "{}", stdout(&out));

    // Past end of support: both failures, one line each; the whole report is under review.
    let out = demo_on(&root, "check", "2027-01-01");
    assert_eq!(out.status.code(), Some(4), "{}", outcome(&out));
    settings().bind(|| {
        insta::assert_snapshot!(
            "check_out_of_policy",
            format!("stdout:\n{}{}", stdout(&out), outcome(&out))
        )
    });
    let text = stdout(&demo_on(&root, "status", "2027-01-01"));
    assert!(
        text.contains("support: OUT OF SUPPORT: its last supported day was 2026-12-31 (1 day ago)"),
        "{text}"
    );

    // With the migration in the ledger, only the support window counts.
    let path = root.join("platform.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    let ledger = |status: &str| {
        format!(
            "{original}\n[[migrations]]\nid = \"demo-2.0.0-rename-key\"\nstatus = \"{status}\"\ndate = \"2026-05-01\"\n"
        )
    };
    std::fs::write(&path, ledger("applied")).unwrap();
    let out = demo_on(&root, "check", "2026-07-01");
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(stdout(&out).starts_with("deprecated: "), "{}", stdout(&out));
    assert!(
        stdout(&out).ends_with("ok: orders on demo 1.0.0 is within policy\n"),
        "{}",
        stdout(&out)
    );
    let out = demo_on(&root, "check", "2027-01-01");
    assert_eq!(out.status.code(), Some(4), "{}", outcome(&out));
    assert!(stdout(&out).starts_with("out-of-support: demo 1.0.0 reached end of support on 2026-12-31; run cargo platform upgrade\n"));
    assert!(
        !stdout(&out).contains("pending-required-migration"),
        "{}",
        stdout(&out)
    );

    // Skipped on the record: not pending, still visible, a warning only.
    std::fs::write(&path, ledger("skipped")).unwrap();
    let out = demo_on(&root, "check", "2026-03-01");
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(
        stdout(&out).starts_with(
            "skipped-required-migration: demo-2.0.0-rename-key (2.0.0): skipped on 2026-05-01"
        ),
        "{}",
        stdout(&out)
    );
    let text = stdout(&demo_on(&root, "status", "2026-03-01"));
    assert!(text.contains("pending migrations: none\n"), "{text}");
    assert!(text.contains("skipped migrations: 1\n  demo-2.0.0-rename-key (2.0.0, required, skipped on 2026-05-01): Rename a config key\n"), "{text}");
}

#[test]
fn a_bad_today_override_is_an_error() {
    let dir = scratch();
    let root = scaffold(dir.path(), None);
    for cmd in ["status", "check"] {
        let out = platform(&root)
            .arg(cmd)
            .env("CARGO_PLATFORM_TODAY", "31/12/2026")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("CARGO_PLATFORM_TODAY=`31/12/2026` is not a date")
        );
    }
}

#[test]
fn outside_a_service_every_command_fails_with_a_hint() {
    let dir = scratch();
    let s = settings();
    for (snapshot, args) in [
        ("status_outside_a_service", &["status"][..]),
        ("check_outside_a_service", &["check"]),
        ("eject_outside_a_service", &["eject", "auth"]),
        ("status_path_without_manifest", &["status", "--path", "."]),
    ] {
        let out = platform(dir.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("hint: "),
            "{}",
            outcome(&out)
        );
        s.bind(|| insta::assert_snapshot!(snapshot, outcome(&out)));
    }
    assert_eq!(tree(dir.path()), Vec::<String>::new());
}

#[test]
fn a_manifest_from_a_newer_tool_asks_to_upgrade_the_tool() {
    let dir = scratch();
    let root = scaffold(dir.path(), None);
    let path = root.join("platform.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("schema = 2", "schema = 99", 1);
    std::fs::write(&path, &text).unwrap();
    let s = settings();
    for args in [&["status"][..], &["check"], &["eject", "auth"]] {
        let out = platform(&root).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", outcome(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("manifest schema 99") && err.contains("upgrade the tool"),
            "{args:?}: {err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{args:?}");
        if args == ["status"] {
            s.bind(|| insta::assert_snapshot!("status_newer_manifest_schema", outcome(&out)));
        }
    }
}

#[test]
fn a_misspelt_ledger_status_is_an_error_naming_the_key_not_an_applied_migration() {
    let dir = scratch();
    let root = scaffold(dir.path(), Some("1.0.0"));
    let out = platform(&root).args(["upgrade"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let path = root.join("platform.toml");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "status = \"applied\"",
        "status = \"skiped\"",
        1,
    );
    std::fs::write(&path, &text).unwrap();
    let s = settings();
    for args in [
        &["status"][..],
        &["check"],
        &["upgrade"],
        &["eject", "auth"],
    ] {
        let out = platform(&root).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", outcome(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(
                "platform.toml: migrations[0].status: unknown value \"skiped\"; expected applied or skipped"
            ),
            "{args:?}: {err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{args:?}");
        if args == ["status"] {
            s.bind(|| insta::assert_snapshot!("status_misspelt_ledger_status", outcome(&out)));
        }
    }
}
