//! End-to-end monorepo: a cargo workspace in one git repository, two services scaffolded into
//! it at `service` 1.0.0, one of them upgraded to the newest release from its own directory;
//! then `cargo build` and `cargo test` at the workspace root build both services against the
//! workspace's one Cargo.lock and pass their own tests.
//!
//! Slow (builds two generated services), so `#[ignore]`d:
//! `cargo test --test e2e_workspace -- --include-ignored`. Builds share
//! `$CARGO_PLATFORM_E2E_TARGET` (default `target/e2e`) with the other end-to-end tests.

mod common;

#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

use std::path::Path;
use std::process::{Command, Output};

/// The tool as cargo runs it in `cwd`, with a git identity and no inherited settings.
fn platform(cwd: &Path, args: &[&str]) -> Output {
    let home = common::home_with_identity();
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-platform"))
        .arg("platform")
        .args(args)
        .current_dir(cwd)
        .env_remove("CARGO_PLATFORM_FAULT")
        .env_remove("CARGO_PLATFORM_TEMPLATE_DIR")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("HOME", home)
        .output()
        .expect("run cargo-platform");
    assert!(
        out.status.success(),
        "cargo platform {args:?}\n{}",
        common::describe(&out)
    );
    out
}

fn cargo(dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .envs(harness::e2e_cargo_env())
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo {args:?}\n{}",
        common::describe(&out)
    );
    out
}

/// Warnings in cargo's output other than the one cargo gives for a member's own
/// `[profile.release]` (which `new` reports and leaves in place).
fn unexpected_warnings(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.trim_start().starts_with("warning"))
        .filter(|l| !l.contains("profiles for the non root package will be ignored"))
        .map(str::to_owned)
        .collect()
}

#[test]
#[ignore = "end-to-end: two generated services in one cargo workspace, built and tested; run with --include-ignored"]
fn two_services_in_one_workspace_one_upgraded_build_and_pass_their_tests() {
    let dir = tempfile::Builder::new()
        .prefix("cp-e2e-workspace-")
        .tempdir()
        .unwrap();
    let ws = dir.path().join("mono");
    std::fs::create_dir(&ws).unwrap();
    let root = "# The team's monorepo.\n[workspace]\nresolver = \"3\"\nmembers = []\n";
    std::fs::write(ws.join("Cargo.toml"), root).unwrap();
    std::fs::write(ws.join(".gitignore"), "/target\n").unwrap();
    common::git(&ws, &["init", "-q"]);
    common::git(&ws, &["add", "-A"]);
    common::git(&ws, &["commit", "-qm", "monorepo"]);

    for name in ["e2e-ws-orders", "e2e-ws-billing"] {
        let path = format!("services/{name}");
        let out = platform(
            &ws,
            &[
                "new",
                name,
                "--path",
                &path,
                "--template-version",
                "1.0.0",
                "--set",
                "owner=payments",
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("workspace: added {path} to [workspace] members")),
            "{stdout}"
        );
        assert!(!ws.join(&path).join(".git").exists());
    }
    assert_eq!(
        std::fs::read_to_string(ws.join("Cargo.toml")).unwrap(),
        "# The team's monorepo.\n[workspace]\nresolver = \"3\"\nmembers = [\"services/e2e-ws-billing\", \"services/e2e-ws-orders\"]\n"
    );
    common::git(&ws, &["add", "-A"]);
    common::git(&ws, &["commit", "-qm", "two services"]);

    // Work in progress elsewhere in the monorepo does not block the service's upgrade.
    std::fs::write(ws.join("NOTES.md"), "wip\n").unwrap();
    let orders = ws.join("services/e2e-ws-orders");
    let out = platform(&orders, &["upgrade", "--commit"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Upgraded e2e-ws-orders to service"),
        "{stdout}"
    );
    assert_eq!(
        common::git(&ws, &["status", "--porcelain"]),
        "?? NOTES.md\n"
    );
    let status = platform(&orders, &["status", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_ne!(status["version"], "1.0.0", "{status}");
    let billing = platform(
        &ws,
        &[
            "status",
            "--path",
            "services/e2e-ws-billing",
            "--format",
            "json",
        ],
    );
    let billing: serde_json::Value = serde_json::from_slice(&billing.stdout).unwrap();
    assert_eq!(billing["version"], "1.0.0", "{billing}");

    // Both services, one lock file, at the workspace root.
    let build = cargo(&ws, &["build", "--workspace", "--color", "never"]);
    assert_eq!(unexpected_warnings(&build), Vec::<String>::new());
    assert!(ws.join("Cargo.lock").is_file());
    for service in ["e2e-ws-orders", "e2e-ws-billing"] {
        assert!(
            !ws.join("services")
                .join(service)
                .join("Cargo.lock")
                .exists(),
            "{service} uses the workspace's Cargo.lock"
        );
    }
    let test = cargo(&ws, &["test", "--workspace", "--color", "never"]);
    assert_eq!(unexpected_warnings(&test), Vec::<String>::new());
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(
        !stdout.contains("test result: FAILED"),
        "{}",
        common::describe(&test)
    );
    let stderr = String::from_utf8_lossy(&test.stderr);
    for service in ["e2e_ws_orders", "e2e_ws_billing"] {
        assert!(
            stderr.lines().any(|l| l.trim_start().starts_with("Running")
                && l.contains(&format!("deps/{service}-"))),
            "{service}'s own tests ran\n{}",
            common::describe(&test)
        );
    }
}
