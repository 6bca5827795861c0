//! End-to-end upgrade of a real service: scaffold `service` 1.0.0 (memory store, git), make the
//! edits a team makes and commit them, `cargo platform upgrade --commit` to the newest release,
//! then check every kind of change landed without losing an edit — and that the upgraded
//! service builds without warnings and passes its own tests.
//!
//! Slow (two builds of a generated service), so `#[ignore]`d:
//! `cargo test --test e2e_upgrade -- --include-ignored`. Builds share
//! `$CARGO_PLATFORM_E2E_TARGET` (default `target/e2e`) with the other end-to-end tests.

mod common;

#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const NAME: &str = "e2e-upgrade-orders";
/// The newest release of `service`: where `upgrade` goes by default.
const NEWEST: &str = "3.1.0";

/// The tool as cargo runs it, with a git identity and no inherited git or fault settings.
fn platform(args: &[&str]) -> Output {
    let home = common::home_with_identity();
    Command::new(env!("CARGO_BIN_EXE_cargo-platform"))
        .arg("platform")
        .args(args)
        .env_remove("CARGO_PLATFORM_FAULT")
        .env_remove("CARGO_PLATFORM_TEMPLATE_DIR")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("HOME", home)
        .output()
        .expect("run cargo-platform")
}

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

/// The edits a team makes in its first weeks, on every kind of file an upgrade must respect.
fn team_edits(dir: &Path) {
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
        "    Ok(Router::new().merge(items::router(items)))",
        "    Ok(Router::new()\n        .route(\"/v1/ping\", get(ping))\n        .merge(items::router(items)))\n}\n\n/// `GET /v1/ping`: a cheap probe for our clients.\nasync fn ping() -> bytes::Bytes {\n    bytes::Bytes::from_static(b\"pong\")",
    );
    // A managed file the release also edits, far from the release's changes.
    edit(
        dir,
        "src/platform/http/mod.rs",
        "fn is_problem(",
        "// orders: our gateway sends problem+json too; keep this check in sync (runbook ORD-23).\nfn is_problem(",
    );
    // The managed file the release renames.
    edit(
        dir,
        "src/platform/http/observe.rs",
        "            latency_ms = elapsed.as_secs_f64() * 1000.0,\n",
        "            latency_ms = elapsed.as_secs_f64() * 1000.0,\n            service = env!(\"CARGO_PKG_NAME\"),\n",
    );
    // A dependency of their own, with a comment.
    edit(
        dir,
        "Cargo.toml",
        "axum = \"0.8\"\n",
        "axum = \"0.8\"\nbytes = \"1\" # orders: ping body\n",
    );
    // Their value under the config key the release renames, and a profile of their own.
    edit(
        dir,
        "config/default.toml",
        "ttl_secs = 86400",
        "ttl_secs = 3600",
    );
    std::fs::write(
        dir.join("config/staging.toml"),
        "# orders: the staging profile (APP_ENV=staging)\n[server]\nhost = \"0.0.0.0\"\n\n[idempotency]\nttl_secs = 600\n",
    )
    .expect("write staging.toml");
}

fn status_of<'a>(plan: &'a Value, path: &str) -> (&'a str, Option<&'a str>) {
    let entry = plan["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|e| e["path"] == path)
        .unwrap_or_else(|| panic!("{path} is in the plan: {plan}"));
    (
        entry["status"].as_str().expect("status"),
        entry["from"].as_str(),
    )
}

#[test]
#[ignore = "end-to-end: scaffolds, upgrades, builds and tests a generated service; run with --include-ignored"]
fn service_1_0_0_with_team_edits_upgrades_to_the_newest() {
    let work = Work(Some(
        tempfile::Builder::new()
            .prefix("cargo-platform-e2e-upgrade-")
            .tempdir()
            .expect("tempdir"),
    ));
    let dir: PathBuf = work.0.as_ref().expect("dir").path().join(NAME);
    let dir_arg = dir.to_str().expect("utf-8 path");

    let out = platform(&[
        "new",
        NAME,
        "--template-version",
        "1.0.0",
        "--yes",
        "--set",
        "owner=e2e",
        "--set",
        "idempotency_store=memory",
        "--path",
        dir_arg,
    ]);
    assert!(out.status.success(), "new\n{}", common::describe(&out));
    assert_eq!(
        common::git(&dir, &["rev-list", "--count", "HEAD"]).trim(),
        "1",
        "new commits the scaffold"
    );

    team_edits(&dir);
    common::git(&dir, &["add", "-A"]);
    common::git(
        &dir,
        &[
            "commit",
            "-q",
            "-m",
            "orders: ping route, service name in the access log, shorter idempotency TTL, staging profile",
        ],
    );

    // The plan says what will happen to each kind of change.
    let out = platform(&[
        "upgrade",
        "--path",
        dir_arg,
        "--dry-run",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "upgrade --dry-run\n{}",
        common::describe(&out)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).expect("the plan is JSON");
    assert_eq!(plan["from"], "1.0.0", "{plan}");
    assert_eq!(plan["to"], NEWEST, "{plan}");
    assert_eq!(
        status_of(&plan, "src/platform/http/telemetry.rs"),
        ("renamed", Some("src/platform/http/observe.rs"))
    );
    assert_eq!(
        status_of(&plan, "src/platform/http/request_id.rs").0,
        "deleted"
    );
    assert_eq!(status_of(&plan, "src/platform/http/mod.rs").0, "merged");
    assert_eq!(status_of(&plan, "Cargo.toml").0, "merged");
    assert_eq!(status_of(&plan, "config/default.toml").0, "merged");
    assert_eq!(status_of(&plan, "config/staging.toml").0, "updated");
    assert_eq!(status_of(&plan, "src/platform/audit.rs").0, "new");
    assert_eq!(status_of(&plan, "tests/audit.rs").0, "new");
    assert_eq!(status_of(&plan, "src/app/mod.rs").0, "unchanged");
    // 2.1.0: the platform reference moves to a managed file; the seeded README stays the team's.
    assert_eq!(status_of(&plan, "docs/platform.md").0, "new");
    assert_eq!(status_of(&plan, "README.md").0, "unchanged");
    assert!(
        plan["conflicts"].as_array().is_none_or(Vec::is_empty),
        "{plan}"
    );
    let migrations: Vec<(&str, &str)> = plan["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        migrations,
        [
            ("service-2.0.0-rename-idempotency-ttl", "apply"),
            ("service-2.0.0-audit", "apply"),
            ("service-2.1.0-platform-docs", "apply")
        ]
    );
    assert!(
        common::git(&dir, &["status", "--porcelain"]).is_empty(),
        "a dry run writes nothing"
    );

    let out = platform(&["upgrade", "--path", dir_arg, "--commit"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "upgrade --commit\n{}",
        common::describe(&out)
    );
    assert!(
        common::git(&dir, &["status", "--porcelain"]).is_empty(),
        "everything committed"
    );
    assert_eq!(
        common::git(&dir, &["log", "-1", "--format=%s"]).trim(),
        format!("Upgrade {NAME}: template service 1.0.0 -> {NEWEST}")
    );

    // The rename carried the team's edit; the deleted module's contents moved into it.
    assert!(!dir.join("src/platform/http/observe.rs").exists());
    assert!(!dir.join("src/platform/http/request_id.rs").exists());
    let telemetry = read(&dir, "src/platform/http/telemetry.rs");
    assert!(
        telemetry.contains("            service = env!(\"CARGO_PKG_NAME\"),\n"),
        "{telemetry}"
    );
    assert!(
        telemetry.contains("pub fn is_sane(") && telemetry.contains("pub struct RequestId("),
        "{telemetry}"
    );
    // Both changes to the edited managed file.
    let http = read(&dir, "src/platform/http/mod.rs");
    assert!(http.contains(
        "// orders: our gateway sends problem+json too; keep this check in sync (runbook ORD-23).\n"
    ));
    assert!(
        http.contains("crate::platform::audit::middleware"),
        "{http}"
    );
    assert!(
        http.contains("pub mod telemetry;") && !http.contains("pub mod observe;"),
        "{http}"
    );
    // Seeded code untouched; new audit files in place.
    assert!(read(&dir, "src/app/mod.rs").contains(".route(\"/v1/ping\", get(ping))"));
    assert!(read(&dir, "src/platform/audit.rs").contains("pub const TARGET: &str = \"audit\";"));
    assert!(dir.join("tests/audit.rs").is_file());
    // The managed platform reference documents the renamed key; the seeded README is untouched.
    let platform_md = read(&dir, "docs/platform.md");
    assert!(
        platform_md.contains("`idempotency.record_ttl_secs` | `APP_IDEMPOTENCY__RECORD_TTL_SECS`"),
        "{platform_md}"
    );
    assert!(
        !platform_md.contains("APP_IDEMPOTENCY__TTL_SECS"),
        "{platform_md}"
    );

    // Cargo.toml: the team's dependency (and its comment) kept, the platform's new crates added.
    let manifest_text = read(&dir, "Cargo.toml");
    assert!(
        manifest_text.contains("bytes = \"1\" # orders: ping body"),
        "{manifest_text}"
    );
    let deps = toml_of(&dir, "Cargo.toml")["dependencies"].clone();
    assert_eq!(deps["bytes"].as_str(), Some("1"));
    assert_eq!(
        deps["rand"]["version"].as_str(),
        Some("0.9"),
        "the platform's new crate"
    );
    assert_eq!(
        deps["secrecy"]["version"].as_str(),
        Some("0.10"),
        "the platform's new crate"
    );

    // The renamed config key keeps the team's values, in the shipped and in their own files.
    let default = toml_of(&dir, "config/default.toml");
    assert_eq!(
        default["idempotency"]["record_ttl_secs"].as_integer(),
        Some(3600)
    );
    assert!(
        default["idempotency"].get("ttl_secs").is_none(),
        "{default}"
    );
    assert_eq!(default["audit"]["enabled"].as_bool(), Some(true));
    let staging = toml_of(&dir, "config/staging.toml");
    assert_eq!(
        staging["idempotency"]["record_ttl_secs"].as_integer(),
        Some(600)
    );
    assert!(
        staging["idempotency"].get("ttl_secs").is_none(),
        "{staging}"
    );
    assert_eq!(staging["server"]["host"].as_str(), Some("0.0.0.0"));
    assert!(read(&dir, "config/staging.toml").starts_with("# orders: the staging profile"));

    // The ledger.
    let recorded = toml_of(&dir, "platform.toml");
    assert_eq!(recorded["platform"]["version"].as_str(), Some(NEWEST));
    let ledger: Vec<(&str, &str)> = recorded["migrations"]
        .as_array()
        .expect("[[migrations]]")
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ledger,
        [
            ("service-2.0.0-rename-idempotency-ttl", "applied"),
            ("service-2.0.0-audit", "applied"),
            ("service-2.1.0-platform-docs", "applied")
        ]
    );

    // A second upgrade is a no-op.
    let out = platform(&[
        "upgrade",
        "--path",
        dir_arg,
        "--dry-run",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", common::describe(&out));
    let again: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        again["hops"].as_array().is_some_and(Vec::is_empty),
        "{again}"
    );

    // It builds without a warning and passes its own tests (the audit tests among them).
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("test accepted_token_and_mutating_request_are_audited ... ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("test dev_token_is_accepted_locally ... ok"),
        "{stdout}"
    );

    // The team's staging profile loads with the renamed key; the old env var is refused by name.
    let binary = harness::e2e_target().join("debug").join(NAME);
    let run = |env: &[(&str, &str)]| {
        Command::new(&binary)
            .args(["dev-token", "--sub", "alice"])
            .current_dir(&dir)
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .expect("run the service")
    };
    let out = run(&[("APP_ENV", "staging")]);
    assert!(
        out.status.success(),
        "staging profile loads\n{}",
        common::describe(&out)
    );
    let out = run(&[("APP_IDEMPOTENCY__TTL_SECS", "60")]);
    assert!(!out.status.success(), "the old key is refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ttl_secs"),
        "{}",
        common::describe(&out)
    );
}
