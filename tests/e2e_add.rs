//! End-to-end `add` of a component to a real service: scaffold `service` 3.0.0 (PostgreSQL
//! idempotency store, git), make the edits a team makes — to managed files the messaging wiring
//! also changes and to its own code — and commit them, `upgrade --to 3.1.0`, then
//! `add messaging --set messaging=nats --commit`; check every edit survived, the component's
//! files and wiring are in, platform.toml records the add, and the service builds without
//! warnings and passes its own tests (its messaging tests talk to NATS at 127.0.0.1:4222, the
//! outbox's to PostgreSQL at 127.0.0.1:5432).
//!
//! Refusals (unknown component, unknown choice, a component of a newer release) are
//! tests/cli_add.rs's.
//!
//! Slow (two builds of a generated service), so `#[ignore]`d:
//! `cargo test --test e2e_add -- --include-ignored`. Builds share
//! `$CARGO_PLATFORM_E2E_TARGET` (default `target/e2e`) with the other end-to-end tests.

mod common;

#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const NAME: &str = "e2e-add-orders";
/// The release the service is created at: the newest without messaging.
const FROM: &str = "3.0.0";
/// The release that brings the `messaging` component.
const TO: &str = "3.1.0";
/// What `upgrade --to TO` needs while TO is a draft (`--allow-draft`): nothing, 3.1.0 is released.
const DRAFT_FLAGS: &[&str] = &[];

/// The tool as cargo runs it, with a git identity and no inherited git, fault or draft settings.
fn platform(args: &[&str]) -> Output {
    let home = common::home_with_identity();
    Command::new(env!("CARGO_BIN_EXE_cargo-platform"))
        .arg("platform")
        .args(args)
        .env_remove("CARGO_PLATFORM_FAULT")
        .env_remove("CARGO_PLATFORM_TEMPLATE_DIR")
        .env_remove("CARGO_PLATFORM_ALLOW_DRAFT")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("HOME", home)
        .output()
        .expect("run cargo-platform")
}

/// cargo in the service, in the shared target dir with `harness::e2e_cargo_env()`.
fn cargo(dir: &Path, args: &[&str]) -> Output {
    harness::cargo_in(dir, &harness::e2e_target(), args, &[])
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Replaces exactly one occurrence of `from` in `rel`.
fn edit(dir: &Path, rel: &str, from: &str, to: &str) {
    let text = read(dir, rel);
    assert_eq!(text.matches(from).count(), 1, "{rel}: one `{from}`");
    std::fs::write(dir.join(rel), text.replacen(from, to, 1)).expect("write");
}

fn append(dir: &Path, rel: &str, text: &str) {
    let mut all = read(dir, rel);
    all.push_str(text);
    std::fs::write(dir.join(rel), all).expect("write");
}

fn toml_of(dir: &Path, rel: &str) -> toml::Table {
    toml::from_str(&read(dir, rel)).unwrap_or_else(|e| panic!("{rel} is TOML: {e}"))
}

/// A scratch dir kept (and printed) when the test fails.
struct Work(Option<tempfile::TempDir>);

impl Drop for Work {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.0.take()
        {
            eprintln!(
                "kept the service for a post-mortem: {}",
                dir.keep().display()
            );
        }
    }
}

const PLATFORM_EDIT: &str =
    "            // orders: our issuer rotates its keys hourly (runbook ORD-7).\n";
const CARGO_EDIT: &str = "bytes = \"1\" # orders: ping body\n";
const CONFIG_SECTION: &str =
    "\n# orders: the payment provider\n[orders]\npayment_timeout_ms = 1500\n";

/// The edits a team makes: to managed files `add messaging` also changes (the platform's
/// builder, Cargo.toml, config/default.toml), and to its own code.
fn team_edits(dir: &Path) {
    // A managed file the messaging wiring changes, away from the lines it changes.
    edit(
        dir,
        "src/platform/mod.rs",
        "            // Warm the cache; on failure the first token triggers another try.\n",
        &format!(
            "            // Warm the cache; on failure the first token triggers another try.\n{PLATFORM_EDIT}"
        ),
    );
    // A dependency of their own, with a comment, among the ones messaging adds to.
    edit(
        dir,
        "Cargo.toml",
        "axum = \"0.8\"\n",
        &format!("axum = \"0.8\"\n{CARGO_EDIT}"),
    );
    // Their value for a platform key, and a section of their own.
    edit(
        dir,
        "config/default.toml",
        "record_ttl_secs = 86400",
        "record_ttl_secs = 3600",
    );
    append(dir, "config/default.toml", CONFIG_SECTION);
    // Their own code (seeded): a new route.
    edit(
        dir,
        "src/app/mod.rs",
        "use axum::Router;\n",
        "use axum::Router;\nuse axum::routing::get;\n",
    );
    edit(
        dir,
        "src/app/mod.rs",
        "    let (router, api) = OpenApiRouter::new()\n",
        "    let (router, api) = OpenApiRouter::new()\n        .route(\"/v1/ping\", get(ping))\n",
    );
    append(
        dir,
        "src/app/mod.rs",
        "\n/// `GET /v1/ping`: a cheap probe for our clients.\nasync fn ping() -> bytes::Bytes {\n    bytes::Bytes::from_static(b\"pong\")\n}\n",
    );
}

fn status_of<'a>(plan: &'a Value, path: &str) -> &'a str {
    plan["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|e| e["path"] == path)
        .unwrap_or_else(|| panic!("{path} is in the plan: {plan}"))["status"]
        .as_str()
        .expect("status")
}

#[test]
#[ignore = "end-to-end: scaffolds, upgrades, adds messaging, builds and tests a generated service (NATS, PostgreSQL); run with --include-ignored"]
fn add_messaging_to_a_3_0_0_service_with_team_edits_builds_and_passes_its_tests() {
    let work = Work(Some(
        tempfile::Builder::new()
            .prefix("cargo-platform-e2e-add-")
            .tempdir()
            .expect("tempdir"),
    ));
    let dir: PathBuf = work.0.as_ref().expect("dir").path().join(NAME);
    let dir_arg = dir.to_str().expect("utf-8 path");

    let out = platform(&[
        "new",
        NAME,
        "--template-version",
        FROM,
        "--yes",
        "--set",
        "owner=e2e",
        "--set",
        "idempotency_store=postgres",
        "--path",
        dir_arg,
    ]);
    assert!(out.status.success(), "new\n{}", common::describe(&out));
    team_edits(&dir);
    common::git(&dir, &["add", "-A"]);
    common::git(
        &dir,
        &[
            "commit",
            "-q",
            "-m",
            "orders: ping route, key rotation note, shorter idempotency TTL, payment settings",
        ],
    );

    let mut upgrade = vec!["upgrade", "--path", dir_arg, "--to", TO, "--commit"];
    upgrade.extend_from_slice(DRAFT_FLAGS);
    let out = platform(&upgrade);
    assert_eq!(
        out.status.code(),
        Some(0),
        "upgrade --to {TO}\n{}",
        common::describe(&out)
    );
    assert!(
        !dir.join("src/platform/messaging").exists(),
        "the upgrade keeps messaging = \"none\""
    );

    // The plan: the component's files are new, the edited managed files merged, and the
    // example's event handler (for new services only) is not added to the team's src/app/.
    let add = [
        "add",
        "messaging",
        "--set",
        "messaging=nats",
        "--path",
        dir_arg,
    ];
    let out = platform(&[&add[..], &["--dry-run", "--format", "json"]].concat());
    assert!(
        out.status.success(),
        "add --dry-run\n{}",
        common::describe(&out)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).expect("the plan is JSON");
    assert_eq!(plan["version"], TO, "{plan}");
    assert_eq!(
        plan["set"],
        serde_json::json!([{"key": "messaging", "from": "none", "to": "nats"}]),
        "{plan}"
    );
    for path in ["src/platform/mod.rs", "Cargo.toml", "config/default.toml"] {
        assert_eq!(status_of(&plan, path), "merged", "{path}");
    }
    for path in [
        "src/platform/messaging/mod.rs",
        "src/platform/messaging/consumer.rs",
        "src/platform/messaging/outbox.rs",
        "migrations/outbox/0001_messaging_outbox.sql",
        "tests/messaging.rs",
        "tests/messaging_outbox.rs",
    ] {
        assert_eq!(status_of(&plan, path), "new", "{path}");
    }
    assert_eq!(status_of(&plan, "src/app/items/events.rs"), "kept");
    assert_eq!(status_of(&plan, "src/app/mod.rs"), "unchanged");
    assert!(
        plan["conflicts"].as_array().is_none_or(Vec::is_empty),
        "{plan}"
    );
    assert!(
        common::git(&dir, &["status", "--porcelain"]).is_empty(),
        "a dry run writes nothing"
    );

    let out = platform(&[&add[..], &["--commit"]].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "add\n{}",
        common::describe(&out)
    );
    assert!(
        common::git(&dir, &["status", "--porcelain"]).is_empty(),
        "everything committed"
    );
    assert_eq!(
        common::git(&dir, &["log", "-1", "--format=%s"]).trim(),
        format!("Add messaging to {NAME}: messaging=nats")
    );

    // The team's edits, untouched.
    let platform_rs = read(&dir, "src/platform/mod.rs");
    assert!(platform_rs.contains(PLATFORM_EDIT), "{platform_rs}");
    let manifest_text = read(&dir, "Cargo.toml");
    assert!(manifest_text.contains(CARGO_EDIT), "{manifest_text}");
    let config_text = read(&dir, "config/default.toml");
    assert!(config_text.ends_with(CONFIG_SECTION), "{config_text}");
    let app = read(&dir, "src/app/mod.rs");
    assert!(app.contains(".route(\"/v1/ping\", get(ping))"), "{app}");
    assert!(!app.contains("events"), "src/app/ stays the team's: {app}");
    assert!(!dir.join("src/app/items/events.rs").exists());
    assert!(!dir.join("tests/items_events.rs").exists());

    // The component: its files, and its wiring merged into the edited managed files.
    for path in [
        "src/platform/messaging/mod.rs",
        "src/platform/messaging/broker.rs",
        "src/platform/messaging/nats.rs",
        "src/platform/messaging/consumer.rs",
        "src/platform/messaging/outbox.rs",
        "migrations/outbox/0001_messaging_outbox.sql",
        "tests/messaging.rs",
        "tests/messaging_outbox.rs",
    ] {
        assert!(dir.join(path).is_file(), "{path} added");
    }
    assert!(platform_rs.contains("pub mod messaging;"), "{platform_rs}");
    assert!(
        platform_rs.contains("pub messaging: Messaging,"),
        "{platform_rs}"
    );
    assert!(
        platform_rs.contains("messaging.with_outbox(outbox)"),
        "the PostgreSQL store brings the outbox: {platform_rs}"
    );
    let deps = toml_of(&dir, "Cargo.toml")["dependencies"].clone();
    assert_eq!(deps["bytes"].as_str(), Some("1"), "the team's dependency");
    assert_eq!(deps["async-nats"]["version"].as_str(), Some("0.51"));
    assert_eq!(deps["futures-util"]["version"].as_str(), Some("0.3"));
    let config = toml_of(&dir, "config/default.toml");
    assert_eq!(
        config["idempotency"]["record_ttl_secs"].as_integer(),
        Some(3600),
        "the team's value"
    );
    assert_eq!(
        config["orders"]["payment_timeout_ms"].as_integer(),
        Some(1500),
        "the team's section"
    );
    assert_eq!(
        config["messaging"]["url"].as_str(),
        Some("nats://127.0.0.1:4222")
    );
    assert_eq!(config["messaging"]["stream"].as_str(), Some(NAME));

    // platform.toml: the answer, the version unchanged, the add in the history.
    let recorded = toml_of(&dir, "platform.toml");
    assert_eq!(recorded["platform"]["version"].as_str(), Some(TO));
    assert_eq!(recorded["answers"]["messaging"].as_str(), Some("nats"));
    assert_eq!(
        recorded["answers"]["idempotency_store"].as_str(),
        Some("postgres")
    );
    assert_eq!(
        recorded["files"]["src/platform/messaging/consumer.rs"]["component"].as_str(),
        Some("messaging")
    );
    let adds = recorded["history"]["adds"]
        .as_array()
        .expect("[[history.adds]]");
    assert_eq!(adds.len(), 1, "{adds:?}");
    assert_eq!(adds[0]["component"].as_str(), Some("messaging"));
    assert_eq!(adds[0]["version"].as_str(), Some(TO));
    assert_eq!(adds[0]["set"]["messaging"].as_str(), Some("nats"));
    assert_eq!(adds[0]["conflicts"].as_integer(), Some(0));

    // A second add has nothing to do.
    let out = platform(&[&add[..], &["--format", "json"]].concat());
    assert!(
        out.status.success(),
        "add again\n{}",
        common::describe(&out)
    );
    let again: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(again["outcome"], "unchanged", "{again}");
    assert!(common::git(&dir, &["status", "--porcelain"]).is_empty());

    // It builds without a warning and passes its own tests, the messaging ones among them.
    let out = cargo(&dir, &["build", "--color", "never"]);
    assert!(
        out.status.success(),
        "cargo build\n{}",
        common::describe(&out)
    );
    assert!(
        harness::warnings(&out).is_empty(),
        "warnings:\n{}",
        common::describe(&out)
    );
    let out = cargo(&dir, &["test", "--color", "never"]);
    assert!(
        out.status.success(),
        "cargo test\n{}",
        common::describe(&out)
    );
    assert!(
        harness::warnings(&out).is_empty(),
        "warnings:\n{}",
        common::describe(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for test in [
        "redrive_puts_a_dead_letter_back_and_it_is_processed",
        "a_poison_message_is_delivered_max_deliver_times_then_dead_lettered_once_with_its_trace",
        "the_relay_runs_with_the_consumers_and_the_message_is_handled",
        "accepted_token_and_mutating_request_are_audited",
    ] {
        assert!(
            stdout.contains(&format!("test {test} ... ok")),
            "{test}\n{stdout}"
        );
    }

    // The binary has the component's subcommand.
    let binary = harness::e2e_target().join("debug").join(NAME);
    let out = Command::new(&binary)
        .args(["redrive", "--help"])
        .current_dir(&dir)
        .output()
        .expect("run the service");
    assert!(
        out.status.success(),
        "{NAME} redrive --help\n{}",
        common::describe(&out)
    );
}
