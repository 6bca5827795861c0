//! Upgrade scenarios as data, in the style of cargo's own testsuite: each directory under
//! `tests/scenarios/` is a service before (`in/`), the commands (`scenario.toml`) and the service
//! after (`out/`), compared byte for byte. The services come from the demo template in
//! `tests/fixtures/templates` (1.0.0 → 2.0.0), which makes every kind of change an upgrade must
//! carry. `SCENARIO_BLESS=1 cargo test --test upgrade_scenarios` rewrites `out/` trees — then
//! review `git diff tests/scenarios` like code.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    /// What the scenario proves.
    about: String,
    /// Commands run in order in the service, each after `cargo platform`.
    steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    args: Vec<String>,
    exit: i32,
    /// Substrings that must appear in stdout / stderr.
    #[serde(default)]
    stdout: Vec<String>,
    #[serde(default)]
    stderr: Vec<String>,
    /// `CARGO_PLATFORM_FAULT` for this step.
    fault: Option<String>,
}

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenarios");

/// Every file (bytes) and symlink (`-> target`) below `root`, except `.git`.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .map(|e| e.expect("walk"))
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(root)
                .expect("prefix")
                .to_string_lossy()
                .replace('\\', "/");
            let content = if e.path_is_symlink() {
                format!(
                    "-> {}",
                    std::fs::read_link(e.path()).expect("link").display()
                )
                .into_bytes()
            } else {
                std::fs::read(e.path()).expect("read")
            };
            (rel, content)
        })
        .collect()
}

/// Copies `from` over `to`; a file named `.delete` lists paths to remove instead.
fn overlay(from: &Path, to: &Path) {
    if !from.exists() {
        return;
    }
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry.expect("walk");
        let rel = entry.path().strip_prefix(from).expect("prefix");
        let dest = to.join(rel);
        if entry.file_name() == ".delete" {
            for line in std::fs::read_to_string(entry.path())
                .expect("read")
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                std::fs::remove_file(to.join(line.trim()))
                    .unwrap_or_else(|e| panic!("delete {line}: {e}"));
            }
        } else if entry.path_is_symlink() {
            let _ = std::fs::remove_file(&dest);
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).expect("link"), &dest)
                .expect("symlink");
        } else if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

fn commit_all(root: &Path) {
    let repo = git2::Repository::open(root).expect("repo");
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    index.update_all(["*"], None).expect("update");
    index.write().expect("write");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let sig = git2::Signature::now("Team", "team@example.com").expect("sig");
    let parent = repo.head().expect("head").peel_to_commit().expect("commit");
    repo.commit(Some("HEAD"), &sig, &sig, "team edits", &tree, &[&parent])
        .expect("commit");
}

fn write_tree(files: &BTreeMap<String, Vec<u8>>, dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    for (rel, content) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        match content.strip_prefix(b"-> ") {
            Some(target) => {
                std::os::unix::fs::symlink(String::from_utf8_lossy(target).as_ref(), &path)
                    .expect("symlink")
            }
            None => std::fs::write(&path, content).expect("write"),
        }
    }
}

fn run_scenario(dir: &Path) -> Result<(), String> {
    let scenario: Scenario = toml::from_str(
        &std::fs::read_to_string(dir.join("scenario.toml")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("scenario.toml: {e}"))?;
    let work = common::scratch();
    let svc = common::demo_service(work.path());
    overlay(&dir.join("in"), &svc);
    commit_all(&svc);
    overlay(&dir.join("dirty"), &svc);

    for (i, step) in scenario.steps.iter().enumerate() {
        let mut cmd = common::demo(&svc);
        cmd.env("CARGO_PLATFORM_TODAY", "2026-11-22")
            .args(&step.args);
        if let Some(fault) = &step.fault {
            cmd.env("CARGO_PLATFORM_FAULT", fault);
        }
        let out = cmd.output().map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!(
            "step {} ({}): {}\nstdout:\n{stdout}",
            i + 1,
            step.args.join(" "),
            common::outcome(&out)
        );
        if out.status.code() != Some(step.exit) {
            return Err(format!("expected exit {}\n{what}", step.exit));
        }
        for s in &step.stdout {
            if !stdout.contains(s.as_str()) {
                return Err(format!("stdout lacks {s:?}\n{what}"));
            }
        }
        for s in &step.stderr {
            if !stderr.contains(s.as_str()) {
                return Err(format!("stderr lacks {s:?}\n{what}"));
            }
        }
        // Exit 0, 3 and 4 are outcomes, reported as such: `error:` is for failures only.
        if [0, 3, 4].contains(&step.exit) && stderr.contains("error:") {
            return Err(format!("an outcome printed as an error\n{what}"));
        }
    }

    let actual = tree(&svc);
    let expected_dir = dir.join("out");
    if std::env::var_os("SCENARIO_BLESS").is_some() {
        write_tree(&actual, &expected_dir);
        return Ok(());
    }
    let expected = tree(&expected_dir);
    let mut problems = Vec::new();
    for (path, want) in &expected {
        match actual.get(path) {
            None => problems.push(format!("missing {path}")),
            Some(got) if got != want => problems.push(format!(
                "{path} differs:\n--- expected\n{}\n--- actual\n{}",
                String::from_utf8_lossy(want),
                String::from_utf8_lossy(got)
            )),
            _ => {}
        }
    }
    for path in actual.keys().filter(|p| !expected.contains_key(*p)) {
        problems.push(format!("unexpected {path}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n{}",
            dir.display(),
            scenario.about,
            problems.join("\n")
        ))
    }
}

#[test]
fn upgrade_scenarios() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(SCENARIOS)
        .expect("tests/scenarios")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("scenario.toml").exists())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 18,
        "expected the full scenario set, found {}",
        dirs.len()
    );
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            run_scenario(d).err().map(|e| {
                format!(
                    "=== {}\n{e}",
                    d.file_name().unwrap_or_default().to_string_lossy()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}
