//! `cargo platform upgrade` as a whole process, on the demo template (loaded from the test
//! fixtures through CARGO_PLATFORM_TEMPLATE_DIR): guards, dry run, conflicts, commit, crash
//! recovery with --abort.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{demo, demo_service as service, outcome, scratch};

/// Every file (bytes) and symlink (target) below `root`, except `.git`.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .map(|e| e.unwrap())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let content = if e.path_is_symlink() {
                format!("-> {}", std::fs::read_link(e.path()).unwrap().display()).into_bytes()
            } else if e.file_type().is_dir() {
                b"<dir>".to_vec()
            } else {
                std::fs::read(e.path()).unwrap()
            };
            (rel, content)
        })
        .collect()
}

fn commit_all(root: &Path, message: &str) {
    let repo = git2::Repository::open(root).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.update_all(["*"], None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("Team", "team@example.com").unwrap();
    let parent = repo.head().unwrap().peel_to_commit().unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &[&parent])
        .unwrap();
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap()
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let dir = scratch();
    let svc = service(dir.path());
    let before = snapshot(&svc);
    let out = demo(&svc).args(["upgrade", "--dry-run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "Upgrade orders: demo 1.0.0 → 2.0.0",
        "apply            demo-2.0.0-rename-key (2.0.0, required)",
        "updated    src/main.rs",
        "renamed    new.txt  (from old.txt: moved by the template)",
        "deleted    gone.txt",
        "new        src/audit.rs",
        "Dry run: nothing was written.",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let out = demo(&svc)
        .args(["upgrade", "--dry-run", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["from"], "1.0.0");
    assert_eq!(v["to"], "2.0.0");
    let files = v["files"].as_array().unwrap();
    let status_of = |p: &str| {
        files
            .iter()
            .find(|f| f["path"] == p)
            .map(|f| f["status"].clone())
    };
    assert_eq!(status_of("new.txt"), Some("renamed".into()));
    assert_eq!(status_of("config/default.toml"), Some("updated".into()));
    assert_eq!(snapshot(&svc), before, "a dry run writes nothing");
}

#[test]
fn dirty_tree_is_refused_unless_allowed() {
    let dir = scratch();
    let svc = service(dir.path());
    std::fs::write(svc.join("notes.txt"), "wip").unwrap();
    let before = snapshot(&svc);
    let out = demo(&svc).arg("upgrade").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("uncommitted changes: notes.txt"), "{err}");
    assert!(err.contains("--allow-dirty"), "{err}");
    assert_eq!(snapshot(&svc), before);
    let out = demo(&svc)
        .args(["upgrade", "--allow-dirty"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert_eq!(read(&svc, "notes.txt"), "wip");
}

#[test]
fn upgrade_commits_and_a_rerun_is_a_noop() {
    let dir = scratch();
    let svc = service(dir.path());
    let out = demo(&svc).args(["upgrade", "--commit"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Upgraded orders to demo 2.0.0."));
    assert!(read(&svc, "platform.toml").contains("version = \"2.0.0\""));
    assert!(read(&svc, "platform.toml").contains("id = \"demo-2.0.0-rename-key\""));
    assert!(!svc.join("old.txt").exists() && svc.join("new.txt").exists());
    assert!(!svc.join(".cargo-platform-journal").exists());
    let repo = git2::Repository::open(&svc).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert!(
        head.message()
            .unwrap()
            .starts_with("Upgrade orders: template demo 1.0.0 -> 2.0.0")
    );
    assert_eq!(
        repo.statuses(None).unwrap().len(),
        0,
        "the commit holds every change"
    );

    let after = snapshot(&svc);
    let out = demo(&svc).arg("upgrade").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("already on demo 2.0.0; nothing to do"));
    assert_eq!(snapshot(&svc), after);
}

#[test]
fn conflicts_exit_3_with_markers_or_rej_files() {
    for (mode, expect_rej) in [("markers", false), ("reject", true)] {
        let dir = scratch();
        let svc = service(dir.path());
        std::fs::write(
            svc.join("src/main.rs"),
            "fn main() {\n    println!(\"ours\");\n}\n",
        )
        .unwrap();
        commit_all(&svc, "team edit");
        let out = demo(&svc)
            .args(["upgrade", "--conflict", mode, "--commit"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{mode}: {}", outcome(&out));
        // An outcome, not an error: reported on stdout, no `error:` on stderr.
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("1 conflict remains: src/main.rs"), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("error:"), "{err}");
        assert!(err.contains("not committing"), "{err}");
        let main = read(&svc, "src/main.rs");
        if expect_rej {
            assert_eq!(main, "fn main() {\n    println!(\"ours\");\n}\n");
            assert!(
                read(&svc, "src/main.rs.rej")
                    .contains("+    println!(\"orders v2.0.0 audit=true\");")
            );
        } else {
            assert!(
                main.contains("<<<<<<< yours\n    println!(\"ours\");\n=======\n"),
                "{main}"
            );
            assert!(!svc.join("src/main.rs.rej").exists());
        }
        assert!(
            read(&svc, "platform.toml").contains("version = \"2.0.0\""),
            "the rest of the upgrade is applied"
        );
    }
}

#[test]
fn a_crash_mid_write_is_undone_exactly_by_abort() {
    let dir = scratch();
    let svc = service(dir.path());
    let before = snapshot(&svc);
    let out = demo(&svc)
        .env("CARGO_PLATFORM_FAULT", "upgrade:crash:3")
        .arg("upgrade")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(101), "{}", outcome(&out));
    assert_ne!(snapshot(&svc), before, "the crash left a half-applied tree");
    assert!(svc.join(".cargo-platform-journal").exists());

    let out = demo(&svc).arg("upgrade").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cargo platform upgrade --abort"));
    let out = demo(&svc).args(["upgrade", "--abort"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Aborted the interrupted upgrade"));
    assert_eq!(snapshot(&svc), before, "--abort restores the exact tree");
    let out = demo(&svc).args(["upgrade", "--abort"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "nothing left to abort");
}

#[test]
fn an_error_mid_write_rolls_back_by_itself() {
    let dir = scratch();
    let svc = service(dir.path());
    let before = snapshot(&svc);
    for point in [
        "upgrade:before-journal",
        "upgrade:error:0",
        "upgrade:error:4",
    ] {
        let out = demo(&svc)
            .env("CARGO_PLATFORM_FAULT", point)
            .arg("upgrade")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{point}: {}", outcome(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("nothing was changed"),
            "{point}"
        );
        assert_eq!(snapshot(&svc), before, "{point}: the tree is as it was");
    }
}

#[test]
fn binary_files_symlinks_and_crlf_survive() {
    let dir = scratch();
    let svc = service(dir.path());
    std::fs::write(svc.join("logo.png"), [0x89, b'P', b'N', b'G', 0, 0, 0xff]).unwrap();
    std::os::unix::fs::symlink("src/main.rs", svc.join("main-link.rs")).unwrap();
    std::fs::write(
        svc.join("src/main.rs"),
        "// ours\r\nfn main() {\r\n    println!(\"orders v1.0.0\");\r\n}\r\n",
    )
    .unwrap();
    commit_all(&svc, "team files");
    let out = demo(&svc).arg("upgrade").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert_eq!(
        std::fs::read(svc.join("logo.png")).unwrap(),
        [0x89, b'P', b'N', b'G', 0, 0, 0xff]
    );
    assert_eq!(
        std::fs::read_link(svc.join("main-link.rs")).unwrap(),
        Path::new("src/main.rs")
    );
    assert_eq!(
        read(&svc, "src/main.rs"),
        "// ours\r\nfn main() {\r\n    println!(\"orders v2.0.0 audit=true\");\r\n}\r\n"
    );
}

#[test]
fn eject_during_upgrade_and_exclude() {
    let dir = scratch();
    let svc = service(dir.path());
    let out = demo(&svc)
        .args(["upgrade", "--eject", "extra", "--exclude", "src/main.rs"])
        .output()
        .unwrap();
    // demo 2.0.0 declares a break in `extra`: the upgrade is applied, and needs attention.
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  extra (changed in 2.0.0): core now calls extra::init(config) instead of extra::start()\n    do: rename start to init in your copy of src/pg.rs and take the config"),
        "{text}"
    );
    assert!(
        text.contains("ejected    new.txt  (from old.txt: component `extra` is ejected)"),
        "{text}"
    );
    assert!(text.contains("excluded   src/main.rs"), "{text}");
    assert!(
        svc.join("old.txt").exists() && svc.join("gone.txt").exists(),
        "ejected files untouched"
    );
    assert!(
        read(&svc, "src/main.rs").contains("v1.0.0"),
        "excluded file untouched"
    );
    let manifest = read(&svc, "platform.toml");
    assert!(
        manifest.contains("[components.extra]\nstate = \"ejected\""),
        "{manifest}"
    );

    let out = demo(&svc)
        .args(["upgrade", "--eject", "core"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "flags are validated even when there is nothing to do"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be ejected"));
    // On an up-to-date service --eject is still recorded.
    let out = demo(&svc)
        .args(["upgrade", "--eject", "audit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(read(&svc, "platform.toml").contains("[components.audit]\nstate = \"ejected\""));
}

#[test]
fn bad_flags_are_refused_before_anything_changes() {
    let dir = scratch();
    let svc = service(dir.path());
    let before = snapshot(&svc);
    for (args, msg) in [
        (&["upgrade", "--to", "9.0.0"][..], "has no release 9.0.0"),
        (&["upgrade", "--to", "1.0.0.0"], "is not a version"),
        (
            &["upgrade", "--skip", "nope"],
            "--skip nope: no such migration",
        ),
        (&["upgrade", "--exclude", "["], "not a valid glob"),
        (&["upgrade", "--eject", "core"], "cannot be ejected"),
        (
            &["upgrade", "--eject", "kafka"],
            "unknown component `kafka`",
        ),
    ] {
        let out = demo(&svc).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", outcome(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(msg),
            "{args:?}: {}",
            outcome(&out)
        );
        assert_eq!(snapshot(&svc), before, "{args:?}");
    }
    let out = demo(&svc)
        .args(["upgrade", "--abort", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "--abort conflicts with other flags"
    );
}

/// Every combination of answers to `questions`: each choice of a choice question, both values of
/// a bool, the default and one other value of an int; strings take their default (or a valid
/// value when there is none). Enumerated from the template, so a new question is covered.
fn answer_combinations(
    questions: &[cargo_platform::template::release::Question],
) -> Vec<Vec<(String, String)>> {
    use cargo_platform::template::release::QuestionKind;
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for q in questions {
        let values: Vec<String> = match q.kind {
            QuestionKind::Choice => q.choices.clone().unwrap_or_default(),
            QuestionKind::Bool => vec!["true".into(), "false".into()],
            QuestionKind::Int => {
                let default = q.default.as_ref().and_then(toml::Value::as_integer);
                let lo = q.min.unwrap_or(i64::MIN);
                let hi = q.max.unwrap_or(i64::MAX);
                let base = default.unwrap_or(lo.max(1).min(hi));
                let other = if base < hi { base + 1 } else { base - 1 };
                vec![base.to_string(), other.to_string()]
            }
            QuestionKind::String => match &q.default {
                Some(toml::Value::String(s)) => vec![s.clone()],
                _ => vec!["payments".into()],
            },
        };
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((q.key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    combos
}

/// Runs the tool on the embedded templates; panics with its stderr when it fails.
fn run_ok(cwd: &Path, args: &[String]) -> String {
    let out = common::platform(cwd)
        .env("CARGO_PLATFORM_TODAY", "2026-12-01")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn new_args(name: &str, path: &Path, version: &str, answers: &[(String, String)]) -> Vec<String> {
    let mut args: Vec<String> = [
        "new",
        name,
        "--path",
        &path.display().to_string(),
        "--template-version",
        version,
        "--no-git",
        "--yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (k, v) in answers {
        args.push("--set".into());
        args.push(format!("{k}={v}"));
    }
    args
}

/// The manifest without its history: the migration ledger (what was applied and when) and
/// `[history]` (created at another version, upgraded since) are the parts a fresh `new` cannot
/// have.
fn without_history(manifest: &str) -> String {
    let mut doc: toml_edit::DocumentMut = manifest.parse().unwrap();
    doc.remove("migrations");
    doc.remove("history");
    doc.to_string()
}

/// `status --format json`'s local edits, as (path, change).
fn local_edits(root: &Path) -> Vec<(String, String)> {
    let out = run_ok(root, &["status".into(), "--format".into(), "json".into()]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    json["local_edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["change"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn upgrading_an_unedited_service_gives_exactly_what_new_gives_at_the_target() {
    let catalogue = cargo_platform::template::Catalogue::load().unwrap();
    let template = catalogue.get("service").unwrap();
    // Every release, drafts too (named explicitly, with the opt-in): a draft must upgrade
    // exactly before its flag is removed.
    let versions: Vec<String> = template.versions();
    assert!(versions.len() >= 2, "{versions:?}");
    let allowing_drafts = |mut args: Vec<String>| {
        args.push("--allow-draft".into());
        args
    };
    let dir = scratch();
    let mut cases = 0;
    // A fresh `new` per target and answers, shared by every release upgrading to it.
    let mut fresh_for: std::collections::BTreeMap<String, std::path::PathBuf> = Default::default();
    for (i, from) in versions.iter().enumerate() {
        let spec = template.spec(&from.parse().unwrap()).unwrap();
        for answers in answer_combinations(&spec.questions) {
            for to in &versions[i + 1..] {
                cases += 1;
                let upgraded = dir.path().join(format!("u{cases}"));
                run_ok(
                    dir.path(),
                    &allowing_drafts(new_args("orders", &upgraded, from, &answers)),
                );
                let mut up = vec!["upgrade".to_string(), "--to".into(), to.clone()];
                up.extend(["--path".into(), upgraded.display().to_string()]);
                run_ok(dir.path(), &allowing_drafts(up));
                let fresh = fresh_for
                    .entry(format!("{to} {answers:?}"))
                    .or_insert_with(|| {
                        let fresh = dir.path().join(format!("f{cases}"));
                        run_ok(
                            dir.path(),
                            &allowing_drafts(new_args("orders", &fresh, to, &answers)),
                        );
                        fresh
                    })
                    .clone();

                let case = format!("{from} → {to} with {answers:?}");
                // Seeded files `new` alone writes (`new_only`) that `from` did not have: an
                // upgrade rightly leaves them out, files and record.
                let new_only: Vec<String> = {
                    let had = template.spec(&from.parse().unwrap()).unwrap();
                    template
                        .spec(&to.parse().unwrap())
                        .unwrap()
                        .files
                        .into_iter()
                        .filter(|(p, s)| s.meta.new_only && !had.files.contains_key(p))
                        .map(|(p, _)| p)
                        .collect()
                };
                let manifest: toml::Table = toml::from_str(&read(&fresh, "platform.toml")).unwrap();
                let seeded = |path: &str| {
                    manifest["files"].get(path).and_then(|f| f.get("mode"))
                        == Some(&toml::Value::String("seeded".into()))
                };
                let (a, b) = (snapshot(&upgraded), snapshot(&fresh));
                let paths: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for path in paths {
                    if seeded(path) {
                        continue;
                    }
                    let (x, y) = (a.get(path), b.get(path));
                    if path == "platform.toml" {
                        let text = |v: Option<&Vec<u8>>| {
                            let mut doc: toml_edit::DocumentMut =
                                without_history(std::str::from_utf8(v.unwrap()).unwrap())
                                    .parse()
                                    .unwrap();
                            for p in &new_only {
                                doc["files"].as_table_mut().unwrap().remove(p);
                            }
                            doc.to_string()
                        };
                        assert_eq!(text(x), text(y), "{case}: platform.toml");
                    } else {
                        assert!(
                            x == y,
                            "{case}: {path} differs\n--- upgraded\n{}\n--- fresh\n{}",
                            x.map(|v| String::from_utf8_lossy(v).into_owned())
                                .unwrap_or("(missing)".into()),
                            y.map(|v| String::from_utf8_lossy(v).into_owned())
                                .unwrap_or("(missing)".into()),
                        );
                    }
                }
                assert_eq!(
                    local_edits(&upgraded),
                    vec![],
                    "{case}: status right after the upgrade"
                );
            }
        }
    }
    assert!(cases >= 6, "{cases} cases");
}

#[test]
fn status_after_an_upgrade_lists_exactly_the_teams_edits() {
    let catalogue = cargo_platform::template::Catalogue::load().unwrap();
    let template = catalogue.get("service").unwrap();
    let versions = template.versions();
    let dir = scratch();
    let svc = dir.path().join("orders");
    let answers = vec![("owner".to_string(), "payments".to_string())];
    run_ok(
        dir.path(),
        &new_args("orders", &svc, &versions[0], &answers),
    );

    // The team's edits: a dependency (in Cargo.toml, which the template also changes), a value
    // in a config file the template leaves alone (config/default.toml, which it changes, stays
    // unedited), a line in a managed file the template also changes (far from its change), a
    // comment in a managed file it leaves alone, and the seeded README (theirs: never reported).
    let edit = |rel: &str, f: &dyn Fn(String) -> String| {
        let text = read(&svc, rel);
        let edited = f(text.clone());
        assert_ne!(edited, text, "{rel} edit must change it");
        std::fs::write(svc.join(rel), edited).unwrap();
    };
    edit("Cargo.toml", &|t| {
        t.replace("[dependencies]\n", "[dependencies]\nitoa = \"1\"\n")
    });
    edit("config/local.toml", &|t| t.replace("127.0.0.1", "::1"));
    edit("src/platform/mod.rs", &|t| {
        format!("// ours: platform wiring\n{t}")
    });
    edit("src/platform/metrics.rs", &|t| format!("{t}// ours\n"));
    edit("README.md", &|t| format!("{t}\nOurs.\n"));
    let mut expected: Vec<(String, String)> = [
        "Cargo.toml",
        "config/local.toml",
        "src/platform/metrics.rs",
        "src/platform/mod.rs",
    ]
    .iter()
    .map(|p| (p.to_string(), "edited".to_string()))
    .collect();
    assert_eq!(local_edits(&svc), expected, "before the upgrade");

    let up = vec![
        "upgrade".to_string(),
        "--path".into(),
        svc.display().to_string(),
    ];
    run_ok(dir.path(), &up);
    expected.sort();
    assert_eq!(local_edits(&svc), expected, "right after the upgrade");
    assert!(read(&svc, "Cargo.toml").contains("itoa = \"1\""));
    assert!(read(&svc, "src/platform/mod.rs").starts_with("// ours: platform wiring\n"));
}

#[test]
fn status_after_an_upgrade_with_excluded_files_reports_no_edit() {
    let catalogue = cargo_platform::template::Catalogue::load().unwrap();
    let template = catalogue.get("service").unwrap();
    let versions = template.versions();
    let dir = scratch();
    let svc = dir.path().join("orders");
    let answers = vec![("owner".to_string(), "payments".to_string())];
    run_ok(
        dir.path(),
        &new_args("orders", &svc, &versions[0], &answers),
    );
    let before = snapshot(&svc);
    let up = vec![
        "upgrade".to_string(),
        "--path".into(),
        svc.display().to_string(),
        "--exclude".into(),
        "src/platform/**".into(),
    ];
    let out = run_ok(dir.path(), &up);
    assert!(out.contains("excluded   src/platform/mod.rs"), "{out}");
    let after = snapshot(&svc);
    assert_eq!(
        after.get("src/platform/mod.rs"),
        before.get("src/platform/mod.rs"),
        "excluded: untouched"
    );
    // The platform did not write the excluded files: they are not edits the team made.
    assert_eq!(local_edits(&svc), vec![]);
}

#[test]
fn a_release_with_an_invalid_migration_glob_is_refused_naming_it() {
    let dir = scratch();
    let templates = dir.path().join("templates");
    for entry in walkdir::WalkDir::new(common::DEMO_TEMPLATES) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(common::DEMO_TEMPLATES).unwrap();
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(templates.join(rel)).unwrap();
        } else {
            std::fs::copy(entry.path(), templates.join(rel)).unwrap();
        }
    }
    let release = templates.join("demo/2.0.0/release.toml");
    let text = std::fs::read_to_string(&release).unwrap();
    assert!(text.contains("files = \"config/*.toml\""));
    std::fs::write(&release, text.replace("config/*.toml", "config/[*.toml")).unwrap();
    let out = common::platform(dir.path())
        .env("CARGO_PLATFORM_TEMPLATE_DIR", &templates)
        .arg("templates")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "demo/2.0.0/release.toml: migration `demo-2.0.0-rename-key`: files `config/[*.toml` is not a valid glob"
        ),
        "{err}"
    );
}

/// A 1.0.0 service created with `--eject auth` (real templates, no git).
fn ejected_service(dir: &Path, component: &str) -> std::path::PathBuf {
    let out = common::platform(dir)
        .args([
            "new",
            "orders",
            "--template-version",
            "1.0.0",
            "--eject",
            component,
            "--set",
            "owner=x",
            "--no-git",
            "-y",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    dir.join("orders")
}

#[test]
fn an_ejected_component_that_a_release_breaks_is_an_action_and_exit_3() {
    let dir = scratch();
    let svc = ejected_service(dir.path(), "auth");
    // The dry run lists the action too, and writes nothing.
    let before = snapshot(&svc);
    let out = common::platform(&svc)
        .args(["upgrade", "--dry-run"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Actions for your team") && text.contains("auth (changed in 2.0.0): "),
        "{text}"
    );
    assert_eq!(snapshot(&svc), before);

    let out = common::platform(&svc)
        .args(["upgrade", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions = v["actions"].as_array().unwrap();
    assert!(!actions.is_empty(), "{v}");
    for a in actions {
        assert_eq!(a["component"], "auth", "{v}");
        assert!(a["changed"].as_str().unwrap().contains("hs256_secret") || a["version"] != "2.0.0");
        assert!(!a["action"].as_str().unwrap().is_empty());
    }
    assert!(
        actions
            .iter()
            .any(|a| a["version"] == "2.0.0"
                && a["changed"].as_str().unwrap().contains("SecretString")),
        "{v}"
    );
    assert_eq!(v["outcome"], "needs_attention", "{v}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("error:"),
        "an outcome, not an error: {}",
        outcome(&out)
    );
    // 3.0.0 breaks `auth` again (jsonwebtoken 12): both hops' actions are listed.
    assert!(
        actions.iter().any(|a| a["version"] == "3.0.0"
            && a["changed"].as_str().unwrap().contains("jsonwebtoken 12")),
        "{v}"
    );
    assert!(
        read(&svc, "platform.toml").contains("version = \"3.1.0\""),
        "the upgrade was applied"
    );
}

#[test]
fn an_ejected_component_no_release_breaks_upgrades_with_exit_0() {
    let dir = scratch();
    let svc = ejected_service(dir.path(), "flags");
    let out = common::platform(&svc).args(["upgrade"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Actions for your team"));
}

/// A stand-in for cargo (through `CARGO`): records its arguments, writes a Cargo.lock as cargo
/// would, prints compiler errors and fails when `fail` is set.
fn fake_cargo(dir: &Path, fail: bool) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(if fail { "cargo-fails" } else { "cargo-passes" });
    let body = if fail {
        "echo 'error[E0308]: mismatched types' >&2\n\
         echo '  --> src/platform/auth/dev_token.rs:38:16' >&2\n\
         echo 'error: could not compile `orders` (lib) due to 1 previous error' >&2\nexit 101\n"
    } else {
        "echo '    Finished `dev` profile' >&2\nexit 0\n"
    };
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$@\" > \"{}/cargo-args\"\necho lock > Cargo.lock\n{body}",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn verify_failing_keeps_the_journal_for_abort_and_a_pass_clears_it() {
    let dir = scratch();
    let svc = service(dir.path());
    let before = snapshot(&svc);
    let out = demo(&svc)
        .env("CARGO", fake_cargo(dir.path(), true))
        .args(["upgrade", "--verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    // An outcome, reported on stdout: no `error:`.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("error:"),
        "{}",
        outcome(&out)
    );
    assert!(stdout.contains("needs attention"), "{stdout}");
    assert!(stdout.contains("cargo check --all-targets"), "{stdout}");
    assert!(
        stdout.contains("error[E0308]: mismatched types")
            && stdout.contains("--> src/platform/auth/dev_token.rs:38:16"),
        "the compiler's first errors are shown: {stdout}"
    );
    assert!(stdout.contains("upgrade --abort"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("cargo-args")).unwrap(),
        "check --all-targets\n"
    );
    assert!(read(&svc, "platform.toml").contains("version = \"2.0.0\""));
    // `status` says what is waiting: not an interrupted upgrade, a failed check.
    let out = demo(&svc)
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["change"]["state"], "verify_pending", "{v}");
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("`cargo check --all-targets` failed") && !warning.contains("interrupted"),
        "{warning}"
    );
    // Another upgrade is refused while the check has not passed.
    let out = demo(&svc).args(["upgrade"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    // --abort restores the tree exactly, the Cargo.lock the check wrote included.
    let out = demo(&svc).args(["upgrade", "--abort"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert_eq!(snapshot(&svc), before);

    // Failing again (JSON for a bot this time), then fixed: `upgrade --verify` checks again and
    // keeps the upgrade.
    let out = demo(&svc)
        .env("CARGO", fake_cargo(dir.path(), true))
        .args(["upgrade", "--verify", "--commit", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verify"]["passed"], false, "{v}");
    assert_eq!(v["verify"]["command"], "cargo check --all-targets", "{v}");
    assert_eq!(
        v["verify"]["first_errors"][0], "error[E0308]: mismatched types",
        "{v}"
    );
    assert_eq!(
        v["commit"],
        serde_json::Value::Null,
        "a failed check is not committed"
    );
    let out = demo(&svc)
        .env("CARGO", fake_cargo(dir.path(), false))
        .args(["upgrade", "--verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("passed"));
    assert!(!svc.join(".cargo-platform-journal").exists());
    assert!(read(&svc, "platform.toml").contains("version = \"2.0.0\""));
    let out = demo(&svc).args(["upgrade", "--abort"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing left to abort: {}",
        outcome(&out)
    );
}

#[test]
fn verify_passing_upgrades_and_drops_the_journal() {
    let dir = scratch();
    let svc = service(dir.path());
    let out = demo(&svc)
        .env("CARGO", fake_cargo(dir.path(), false))
        .args(["upgrade", "--verify", "--commit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    assert!(!svc.join(".cargo-platform-journal").exists());
    assert!(read(&svc, "platform.toml").contains("version = \"2.0.0\""));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Committed"));
}

#[test]
fn commit_waits_for_the_actions_of_ejected_components() {
    let dir = scratch();
    let svc = service(dir.path());
    let out = demo(&svc)
        .args(["upgrade", "--eject", "extra", "--commit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not committing (--commit)"),
        "{}",
        outcome(&out)
    );
    assert_eq!(
        common::git(&svc, &["rev-list", "--count", "HEAD"]).trim(),
        "1",
        "nothing committed while the team's changes are pending"
    );
}
