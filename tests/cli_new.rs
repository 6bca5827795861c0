//! `cargo platform new`: every error case (exit code, message, nothing written) and the
//! success paths (files, manifest, git, JSON).

mod common;

use common::{outcome, platform, scratch, settings, tree};

/// Runs `new` with `args` in a fresh scratch directory and asserts it failed with exit 1 and
/// wrote nothing at all. Returns exit code + stderr for a snapshot.
fn fails_cleanly(args: &[&str]) -> String {
    let dir = scratch();
    let out = platform(dir.path()).arg("new").args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    assert!(
        out.stdout.is_empty(),
        "stdout must stay empty on error: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        tree(dir.path()),
        Vec::<String>::new(),
        "nothing may be written"
    );
    outcome(&out)
}

#[test]
fn invalid_names_are_refused_before_anything_is_written() {
    let cases = [
        ("", "it is empty"),
        ("..", "does not start with a lowercase letter"),
        ("/", "does not start with a lowercase letter"),
        ("a/b", "contains '/'"),
        ("../escape", "does not start with a lowercase letter"),
        ("my service", "contains ' '"),
        ("Orders", "does not start with a lowercase letter"),
        ("orDers", "contains 'D'"),
        ("billing_api", "contains '_'"),
        ("1st", "does not start with a lowercase letter"),
        ("x-", "ends with `-`"),
        ("fn", "reserved word"),
        (&"a".repeat(64), "64 characters long"),
    ];
    for (name, why) in cases {
        let got = fails_cleanly(&[name, "--yes", "--set", "owner=t"]);
        assert!(got.contains("invalid service name"), "{name}: {got}");
        assert!(got.contains(why), "{name}: {got}");
        assert!(
            got.contains("hint: a service name is 1 to 63"),
            "{name}: {got}"
        );
    }
    settings().bind(|| {
        insta::assert_snapshot!("new_invalid_name", fails_cleanly(&["My Service", "--yes"]))
    });
}

#[test]
fn answer_errors_name_the_key_and_the_valid_options() {
    let s = settings();
    s.bind(|| {
        insta::assert_snapshot!(
            "new_missing_required_answer",
            fails_cleanly(&["orders", "--yes"])
        );
        insta::assert_snapshot!(
            "new_unknown_key",
            fails_cleanly(&["orders", "--yes", "--set", "owner=t", "--set", "colour=red"])
        );
        insta::assert_snapshot!(
            "new_wrong_type",
            fails_cleanly(&[
                "orders",
                "--yes",
                "--set",
                "owner=t",
                "--set",
                "port=eighty"
            ])
        );
        insta::assert_snapshot!(
            "new_out_of_range",
            fails_cleanly(&["orders", "--yes", "--set", "owner=t", "--set", "port=70000"])
        );
        insta::assert_snapshot!(
            "new_not_a_choice",
            fails_cleanly(&[
                "orders",
                "--yes",
                "--set",
                "owner=t",
                "--set",
                "idempotency_store=mongo"
            ])
        );
        insta::assert_snapshot!(
            "new_pattern_mismatch",
            fails_cleanly(&["orders", "--yes", "--set", "owner=Team A"])
        );
        insta::assert_snapshot!(
            "new_set_without_equals",
            fails_cleanly(&["orders", "--yes", "--set", "owner"])
        );
    });
}

#[test]
fn answers_file_errors() {
    let s = settings();
    s.bind(|| {
        insta::assert_snapshot!(
            "new_answers_file_missing",
            fails_cleanly(&["orders", "--yes", "--answers", "/nonexistent/answers.toml"])
        );
    });
    let files = scratch();
    let bad = files.path().join("bad.toml");
    std::fs::write(&bad, "owner = \n").unwrap();
    let got = fails_cleanly(&["orders", "--yes", "--answers", bad.to_str().unwrap()]);
    assert!(got.contains("bad.toml is not valid TOML"), "{got}");
    let typed = files.path().join("typed.toml");
    std::fs::write(&typed, "owner = \"t\"\nport = true\n").unwrap();
    let got = fails_cleanly(&["orders", "--yes", "--answers", typed.to_str().unwrap()]);
    assert!(
        got.contains("`port` must be a whole number, got `true`"),
        "{got}"
    );
    assert!(got.contains("typed.toml: port"), "{got}");
}

#[test]
fn template_and_version_errors_list_what_exists() {
    let s = settings();
    s.bind(|| {
        insta::assert_snapshot!(
            "new_unknown_template",
            fails_cleanly(&["orders", "--yes", "--template", "lambda"])
        );
        insta::assert_snapshot!(
            "new_unknown_version",
            fails_cleanly(&[
                "orders",
                "--yes",
                "--set",
                "owner=t",
                "--template-version",
                "9.9.9"
            ])
        );
    });
    let got = fails_cleanly(&["orders", "--yes", "--template-version", "latest"]);
    assert!(got.contains("`latest` is not a version"), "{got}");
}

#[test]
fn eject_errors_list_the_ejectable_components() {
    let s = settings();
    s.bind(|| {
        insta::assert_snapshot!(
            "new_eject_unknown",
            fails_cleanly(&["orders", "--yes", "--set", "owner=t", "--eject", "kafka"])
        );
        insta::assert_snapshot!(
            "new_eject_core",
            fails_cleanly(&["orders", "--yes", "--set", "owner=t", "--eject", "core"])
        );
    });
}

#[test]
fn existing_targets_are_refused_and_left_alone() {
    let dir = scratch();
    std::fs::create_dir(dir.path().join("orders")).unwrap();
    std::fs::write(dir.path().join("orders/notes.txt"), "ours").unwrap();
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let out = platform(dir.path())
        .args(["new", "orders", "--yes", "--set", "owner=t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("orders already exists and is not empty"),
        "{err}"
    );
    let out = platform(dir.path())
        .args([
            "new", "orders", "--yes", "--set", "owner=t", "--path", "file",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("file already exists and is not a directory")
    );
    assert_eq!(tree(dir.path()), vec!["file", "orders", "orders/notes.txt"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("orders/notes.txt")).unwrap(),
        "ours"
    );
}

#[test]
fn a_failure_at_any_step_leaves_nothing_behind() {
    for point in ["new:write", "new:git", "new:rename"] {
        let dir = scratch();
        let out = platform(dir.path())
            .env("CARGO_PLATFORM_FAULT", point)
            .args([
                "new",
                "orders",
                "--yes",
                "--set",
                "owner=t",
                "--path",
                "deep/er/orders",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{point}: {}", outcome(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("injected fault at `{point}`"))
        );
        assert_eq!(
            tree(dir.path()),
            Vec::<String>::new(),
            "{point}: nothing may be left"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = scratch();
    let out = platform(dir.path()).arg("new").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("<NAME>"));
    let out = platform(dir.path())
        .args(["new", "x", "--format", "yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(tree(dir.path()), Vec::<String>::new());
}

fn manifest_of(dir: &std::path::Path) -> cargo_platform::manifest::Manifest {
    let text = std::fs::read_to_string(dir.join("platform.toml")).expect("platform.toml");
    cargo_platform::manifest::Manifest::parse(&text, "platform.toml").expect("valid manifest")
}

#[test]
fn new_writes_the_service_manifest_and_initial_commit() {
    let dir = scratch();
    let out = platform(dir.path())
        .args([
            "new",
            "orders",
            "--yes",
            "--set",
            "owner=payments",
            "--set",
            "port=9000",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Created orders from template service"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cd orders")
            && stdout.contains("cargo run")
            && stdout.contains("cargo test"),
        "{stdout}"
    );
    assert_eq!(
        tree(dir.path())
            .iter()
            .filter(|p| !p.contains('/'))
            .collect::<Vec<_>>(),
        vec!["orders"],
        "no staging dir left"
    );

    let svc = dir.path().join("orders");
    let m = manifest_of(&svc);
    assert_eq!(m.template, "service");
    assert_eq!(m.name, "orders");
    assert_eq!(m.schema, cargo_platform::manifest::SCHEMA);
    assert_eq!(m.tool_version, env!("CARGO_PKG_VERSION"));
    let answer = |k: &str| {
        m.answers
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.to_string())
    };
    assert_eq!(answer("owner").as_deref(), Some("payments"));
    assert_eq!(answer("port").as_deref(), Some("9000"));
    assert_eq!(answer("idempotency_store").as_deref(), Some("memory"));
    assert!(
        m.components
            .values()
            .all(|c| c.state == cargo_platform::manifest::ComponentState::Managed)
    );
    assert!(!m.files.is_empty());
    for (path, record) in &m.files {
        let bytes =
            std::fs::read(svc.join(path)).unwrap_or_else(|_| panic!("{path} recorded but missing"));
        assert_eq!(
            cargo_platform::template::render::sha256_hex(&bytes),
            record.sha256,
            "{path}"
        );
    }
    // Every file written is recorded, except the manifest itself and git's own.
    for entry in walkdir::WalkDir::new(&svc)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
    {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(&svc)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            assert!(
                rel == "platform.toml" || m.files.contains_key(&rel),
                "{rel} is not in the manifest"
            );
        }
    }

    let repo = git2::Repository::open(&svc).expect("a git repository");
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(head.parent_count(), 0);
    assert_eq!(head.author().name().ok(), Some("Test Author"));
    assert!(
        head.message()
            .unwrap()
            .starts_with("Scaffold orders from template service")
    );
    let statuses = repo.statuses(None).unwrap();
    assert_eq!(statuses.len(), 0, "the initial commit holds every file");
    // Every committed blob is the file on disk, byte for byte.
    let tree = head.tree().unwrap();
    let mut committed = 0;
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob) {
            let path = format!("{dir}{}", entry.name().unwrap());
            let blob = repo.find_blob(entry.id()).unwrap();
            assert_eq!(
                blob.content(),
                std::fs::read(svc.join(&path)).unwrap(),
                "{path}"
            );
            committed += 1;
        }
        git2::TreeWalkResult::Ok
    })
    .unwrap();
    assert_eq!(committed, m.files.len() + 1, "every file and platform.toml");
    // And git itself (an independent reader) finds the repository sound and the tree clean.
    common::git(&svc, &["fsck", "--full", "--strict", "--no-dangling"]);
    assert_eq!(
        common::git(&svc, &["status", "--porcelain", "--untracked-files=all"]),
        ""
    );
}

#[test]
fn json_output_is_a_machine_readable_summary() {
    let dir = scratch();
    let out = platform(dir.path())
        .args([
            "new",
            "billing-api",
            "--yes",
            "--set",
            "owner=billing",
            "--format",
            "json",
            "--no-git",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(v["name"], "billing-api");
    assert_eq!(v["template"], "service");
    assert_eq!(v["answers"]["owner"], "billing");
    assert_eq!(v["git"]["initialised"], false);
    let files = v["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["path"] == "Cargo.toml" && f["mode"] == "structured")
    );
    assert!(
        files
            .iter()
            .all(|f| f["sha256"].as_str().unwrap().len() == 64)
    );
    assert!(!dir.path().join("billing-api/.git").exists());
}

#[test]
fn older_versions_answers_files_and_eject_at_creation() {
    let dir = scratch();
    let answers = dir.path().join("answers.toml");
    std::fs::write(
        &answers,
        "owner = \"payments\"\nport = 7000\nidempotency_store = \"redis\"\n",
    )
    .unwrap();
    let oldest = cargo_platform::template::Catalogue::load()
        .unwrap()
        .get("service")
        .unwrap()
        .releases[0]
        .version
        .to_string();
    let out = platform(dir.path())
        .args([
            "new",
            "orders",
            "--yes",
            "--no-git",
            "--template-version",
            &oldest,
        ])
        .args([
            "--answers",
            answers.to_str().unwrap(),
            "--set",
            "port=7001",
            "--eject",
            "auth",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let m = manifest_of(&dir.path().join("orders"));
    assert_eq!(m.version.to_string(), oldest);
    let answer = |k: &str| {
        m.answers
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.to_string())
    };
    assert_eq!(
        answer("port").as_deref(),
        Some("7001"),
        "--set wins over the answers file"
    );
    assert_eq!(answer("idempotency_store").as_deref(), Some("redis"));
    let auth = &m.components["auth"];
    assert_eq!(
        auth.state,
        cargo_platform::manifest::ComponentState::Ejected
    );
    assert!(auth.reason.as_deref().unwrap().contains("--eject"));
    assert!(auth.date.is_some());
    assert!(String::from_utf8_lossy(&out.stdout).contains("auth (ejected)"));

    // Another service's platform.toml works as an answers file.
    let out = platform(dir.path())
        .args([
            "new",
            "orders-two",
            "--yes",
            "--no-git",
            "--answers",
            "orders/platform.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let m2 = manifest_of(&dir.path().join("orders-two"));
    assert_eq!(
        m2.answers
            .iter()
            .find(|(k, _)| k == "owner")
            .unwrap()
            .1
            .to_string(),
        "payments"
    );
}

#[test]
fn inside_an_existing_work_tree_no_repository_is_created() {
    let dir = scratch();
    let mono = dir.path().join("mono");
    std::fs::create_dir(&mono).unwrap();
    git2::Repository::init(&mono).unwrap();
    std::fs::create_dir(mono.join("services")).unwrap();
    let out = platform(&mono.join("services"))
        .args(["new", "orders", "--yes", "--set", "owner=t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("inside the work tree"), "{stdout}");
    assert!(!mono.join("services/orders/.git").exists());
    let repo = git2::Repository::open(&mono).unwrap();
    assert!(
        repo.index().unwrap().is_empty(),
        "nothing is added to the enclosing repository's index"
    );
}

#[test]
fn without_a_git_identity_the_fallback_author_is_used_and_said() {
    let dir = scratch();
    let out = platform(dir.path())
        .env("HOME", common::home_without_identity())
        .env("XDG_CONFIG_HOME", common::home_without_identity())
        .args(["new", "orders", "--yes", "--set", "owner=t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("git has no user.name/user.email configured")
    );
    let repo = git2::Repository::open(dir.path().join("orders")).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(head.author().email().ok(), Some("cargo-platform@localhost"));
}

#[test]
fn an_empty_existing_directory_is_used() {
    let dir = scratch();
    std::fs::create_dir(dir.path().join("orders")).unwrap();
    let out = platform(dir.path())
        .args(["new", "orders", "--yes", "--set", "owner=t", "--no-git"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(dir.path().join("orders/platform.toml").exists());
}

/// A new service passes `cargo fmt --check` whatever its name: no rendered line wraps
/// differently for a short or a long name (the generated service's CI formats-checks from its
/// first commit). Every release (a draft too) and idempotency store, names of 1, 6 and 63
/// characters.
#[test]
fn rendered_rust_is_rustfmt_clean_for_every_name_length() {
    let catalogue = cargo_platform::template::Catalogue::load().unwrap();
    let releases: Vec<String> = catalogue
        .get("service")
        .unwrap()
        .releases
        .iter()
        .map(|release| release.version.to_string())
        .collect();
    let long_name = format!("payments-{}", "x".repeat(54));
    assert_eq!(long_name.len(), 63, "the longest name `new` accepts");
    let dir = scratch();
    let mut checked = 0;
    for version in &releases {
        for store in ["memory", "postgres", "redis"] {
            for name in ["a", "orders", long_name.as_str()] {
                let path = dir.path().join(format!("{version}-{store}-{}", name.len()));
                let out = platform(dir.path())
                    .args([
                        "new",
                        name,
                        "--yes",
                        "--no-git",
                        "--template-version",
                        version,
                        "--allow-draft",
                    ])
                    .args(["--set", "owner=t", "--set"])
                    .arg(format!("idempotency_store={store}"))
                    .arg("--path")
                    .arg(&path)
                    .output()
                    .unwrap();
                assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
                let files: Vec<_> = walkdir::WalkDir::new(&path)
                    .into_iter()
                    .map(|entry| entry.unwrap().into_path())
                    .filter(|file| file.extension().is_some_and(|ext| ext == "rs"))
                    .collect();
                assert!(!files.is_empty(), "no Rust files in {}", path.display());
                let rustfmt = std::process::Command::new("rustfmt")
                    .args(["--check", "--edition", "2024"])
                    .args(&files)
                    .output()
                    .expect("rustfmt runs (rustup component add rustfmt)");
                assert!(
                    rustfmt.status.success(),
                    "template {version}, store {store}, name `{name}` is not rustfmt-clean:\n{}{}",
                    String::from_utf8_lossy(&rustfmt.stdout),
                    String::from_utf8_lossy(&rustfmt.stderr)
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, releases.len() * 9);
}
