//! Services inside a cargo workspace (the usual Rust monorepo): `new` joins the workspace as
//! `cargo new` does, and `upgrade`, `status`, `check` and `eject` work from the member.

mod common;

use std::path::{Path, PathBuf};

use common::{git, outcome, platform, scratch, tree};

/// The root manifest of the monorepo the tests build: comments, a multi-line members array with
/// a comment after its last entry, and the workspace's own release profile.
const ROOT: &str = r#"# The monorepo: every service and library of the team.
[workspace]
resolver = "3"
members = [
    "libs/common", # shared code
]

[workspace.package]
edition = "2024"

# Release builds for the whole workspace.
[profile.release]
debug = true
"#;

/// A workspace at `dir/mono` with `root` as its Cargo.toml and one library member.
fn workspace(dir: &Path, root: &str) -> PathBuf {
    let ws = dir.join("mono");
    std::fs::create_dir_all(ws.join("libs/common/src")).unwrap();
    std::fs::write(ws.join("Cargo.toml"), root).unwrap();
    std::fs::write(
        ws.join("libs/common/Cargo.toml"),
        "[package]\nname = \"common\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    std::fs::write(ws.join("libs/common/src/lib.rs"), "pub fn shared() {}\n").unwrap();
    ws
}

/// The workspace as a git repository with everything committed.
fn git_workspace(dir: &Path, root: &str) -> PathBuf {
    let ws = workspace(dir, root);
    git(&ws, &["init", "-q"]);
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-qm", "monorepo"]);
    ws
}

fn new_service(cwd: &Path, path: &str, extra: &[&str]) -> std::process::Output {
    platform(cwd)
        .args(["new", "orders", "--path", path, "--yes", "--set", "owner=t"])
        .args(extra)
        .output()
        .unwrap()
}

/// What cargo itself says: `cargo metadata` run in `dir` (offline, no dependency resolution).
fn cargo_metadata(dir: &Path) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn member_names(meta: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn new_inside_a_workspace_adds_the_member_keeping_the_root_as_it_was_written() {
    let dir = scratch();
    let ws = git_workspace(dir.path(), ROOT);
    let out = new_service(&ws, "services/orders", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));

    let root = std::fs::read_to_string(ws.join("Cargo.toml")).unwrap();
    assert_eq!(
        root,
        ROOT.replace(
            "    \"libs/common\", # shared code\n",
            "    \"libs/common\", # shared code\n    \"services/orders\",\n"
        ),
        "only the member is added; comments, order and the root's profile stay"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let root_manifest = ws.join("Cargo.toml").display().to_string();
    assert!(
        stdout.contains(&format!(
            "workspace: added services/orders to [workspace] members in {root_manifest}"
        )),
        "{stdout}"
    );
    // The template's release profile: cargo ignores it in a member; the output says where it
    // belongs and that the root's profiles were left alone.
    assert!(
        stdout.contains("[profile.release]") && stdout.contains("ignored"),
        "{stdout}"
    );

    // cargo agrees, from the root and from the member.
    let meta = cargo_metadata(&ws);
    assert_eq!(member_names(&meta), ["common", "orders"]);
    let meta = cargo_metadata(&ws.join("services/orders"));
    assert_eq!(
        meta["workspace_root"].as_str().unwrap(),
        ws.canonicalize().unwrap().display().to_string()
    );
    let service = ws.join("services/orders");
    assert!(
        !service.join("Cargo.lock").exists(),
        "the member uses the workspace's lock file"
    );
    assert!(
        !service.join(".git").exists(),
        "the monorepo's repository is the service's"
    );
    assert!(stdout.contains("inside the work tree"), "{stdout}");

    let out = platform(&ws)
        .args([
            "new",
            "billing",
            "--path",
            "services/billing",
            "--yes",
            "--set",
            "owner=t",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["workspace"]["root"], root_manifest);
    assert_eq!(v["workspace"]["member"], "services/billing");
    assert_eq!(v["workspace"]["membership"], "added");
    assert!(
        v["workspace"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("[profile.release]")
    );
    assert_eq!(
        member_names(&cargo_metadata(&ws)),
        ["billing", "common", "orders"]
    );
}

#[test]
fn a_member_already_covered_by_a_glob_leaves_the_root_untouched() {
    let dir = scratch();
    let root = "[workspace]\nresolver = \"3\"\nmembers = [\"libs/*\", \"services/*\"]\n";
    let ws = workspace(dir.path(), root);
    let out = platform(&ws.join("libs"))
        .args([
            "new",
            "orders",
            "--path",
            "../services/orders",
            "--yes",
            "--set",
            "owner=t",
            "--no-git",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert_eq!(
        std::fs::read_to_string(ws.join("Cargo.toml")).unwrap(),
        root
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("workspace: services/orders is already a member (`services/*`)"),
        "{stdout}"
    );
    assert_eq!(member_names(&cargo_metadata(&ws)), ["common", "orders"]);
}

#[test]
fn an_excluded_path_is_not_added_and_the_service_stands_alone() {
    let dir = scratch();
    let root =
        "[workspace]\nresolver = \"3\"\nmembers = [\"libs/common\"]\nexclude = [\"experiments\"]\n";
    let ws = workspace(dir.path(), root);
    let out = new_service(&ws, "experiments/orders", &["--no-git"]);
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert_eq!(
        std::fs::read_to_string(ws.join("Cargo.toml")).unwrap(),
        root
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("excluded"), "{stdout}");
    assert!(!stdout.contains("[profile.release]"), "{stdout}");
    let service = ws.join("experiments/orders");
    let meta = cargo_metadata(&service);
    assert_eq!(
        meta["workspace_root"].as_str().unwrap(),
        service.canonicalize().unwrap().display().to_string()
    );
}

#[test]
fn a_root_without_members_gets_the_key() {
    let dir = scratch();
    let root = "[workspace]\nresolver = \"3\"\n";
    let ws = workspace(dir.path(), root);
    let out = new_service(&ws, "orders", &["--no-git"]);
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert_eq!(
        std::fs::read_to_string(ws.join("Cargo.toml")).unwrap(),
        "[workspace]\nresolver = \"3\"\nmembers = [\"orders\"]\n"
    );
    assert_eq!(member_names(&cargo_metadata(&ws)), ["orders"]);
}

#[test]
fn a_failure_at_any_step_leaves_neither_the_service_nor_the_root_edit() {
    for point in ["new:write", "new:git", "new:workspace", "new:rename"] {
        let dir = scratch();
        // git init and commit only happen outside an existing work tree.
        let ws = if point == "new:git" {
            workspace(dir.path(), ROOT)
        } else {
            git_workspace(dir.path(), ROOT)
        };
        let before = tree(&ws);
        let out = platform(&ws)
            .env("CARGO_PLATFORM_FAULT", point)
            .args([
                "new",
                "orders",
                "--path",
                "services/orders",
                "--yes",
                "--set",
                "owner=t",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{point}: {}", outcome(&out));
        assert_eq!(
            std::fs::read_to_string(ws.join("Cargo.toml")).unwrap(),
            ROOT,
            "{point}: the root manifest is as it was"
        );
        assert_eq!(tree(&ws), before, "{point}: nothing is left behind");
    }
}

#[test]
fn an_unreadable_workspace_manifest_is_an_error_before_anything_is_written() {
    let dir = scratch();
    let ws = workspace(dir.path(), "[workspace\nmembers = [\n");
    let out = new_service(&ws, "services/orders", &["--no-git"]);
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&ws.join("Cargo.toml").display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!ws.join("services").exists());

    // members that is not an array: named, nothing written.
    std::fs::write(ws.join("Cargo.toml"), "[workspace]\nmembers = \"libs/*\"\n").unwrap();
    let out = new_service(&ws, "services/orders", &["--no-git"]);
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("workspace.members"), "{stderr}");
    assert!(!ws.join("services").exists());
}

#[test]
fn upgrade_status_check_and_eject_work_from_the_member_and_the_guard_is_scoped_to_it() {
    let dir = scratch();
    let ws = git_workspace(dir.path(), ROOT);
    let out = new_service(&ws, "services/orders", &["--template-version", "1.0.0"]);
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-qm", "add orders"]);
    let service = ws.join("services/orders");

    // Uncommitted work elsewhere in the monorepo.
    std::fs::write(
        ws.join("libs/common/src/lib.rs"),
        "pub fn shared() {}\n// wip\n",
    )
    .unwrap();
    std::fs::write(ws.join("NOTES.md"), "wip\n").unwrap();

    // 1.0.0 has a pending required migration: `check` finds it out of policy (4).
    for (args, code) in [
        (&["status"][..], 0),
        (&["check"], 4),
        (&["upgrade", "--dry-run"], 0),
    ] {
        let out = platform(&service).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?} from the member: {}",
            outcome(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("orders"),
            "{args:?}: {}",
            outcome(&out)
        );
    }
    let out = platform(&service.join("src"))
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));

    // A dirty file inside the service blocks the upgrade, named relative to the repository.
    std::fs::write(service.join("src/app/mod.rs"), "// edited\n").unwrap();
    let out = platform(&service).arg("upgrade").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("services/orders/src/app/mod.rs"),
        "{stderr}"
    );
    assert!(!stderr.contains("NOTES.md"), "{stderr}");
    git(&ws, &["checkout", "--", "services/orders/src/app/mod.rs"]);

    // Dirt outside the service does not block it.
    let out = platform(&service.join("src"))
        .args(["upgrade", "--commit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Upgraded orders"),
        "{}",
        outcome(&out)
    );
    assert_eq!(
        git(&ws, &["status", "--porcelain"]),
        " M libs/common/src/lib.rs\n?? NOTES.md\n",
        "the upgrade committed the service's files and nothing else"
    );
    assert!(!service.join("Cargo.lock").exists());
    assert_eq!(member_names(&cargo_metadata(&ws)), ["common", "orders"]);
    assert_eq!(
        std::fs::read_to_string(ws.join("Cargo.toml")).unwrap(),
        ROOT.replace(
            "    \"libs/common\", # shared code\n",
            "    \"libs/common\", # shared code\n    \"services/orders\",\n"
        ),
        "upgrade leaves the workspace root alone"
    );

    let out = platform(&ws)
        .args([
            "eject",
            "flags",
            "--path",
            "services/orders",
            "--reason",
            "ours",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let out = platform(&service)
        .args(["eject", "auth", "--reason", "ours"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let out = platform(&service).arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ejected components (off the golden path): 2\n  auth: ejected on ")
            && stdout.contains("\n  flags: ejected on "),
        "{stdout}"
    );
}
