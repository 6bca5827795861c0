//! End-to-end: for every ejectable component and every release a service can upgrade from,
//! scaffold with the component ejected at that release, upgrade to the newest, and then either
//! every target of the service compiles and its own tests pass, or the upgrade exited 3
//! listing the break a release declared (`[[breaks]]` in release.toml) for that component.
//!
//! Slow (a build of a generated service per distinct set of sources, `build_sources`), so
//! `#[ignore]`d: `cargo test --test e2e_eject -- --include-ignored`. Builds share
//! `$CARGO_PLATFORM_E2E_TARGET` (default `target/e2e`) with the other end-to-end tests; every
//! service has the same name, so only its own crate is rebuilt from one pair to the next.

mod common;

#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use cargo_platform::template::Catalogue;
use serde_json::Value;

const NAME: &str = "e2e-eject-orders";

fn platform(args: &[&str]) -> Output {
    let home = common::home_with_identity();
    Command::new(env!("CARGO_BIN_EXE_cargo-platform"))
        .arg("platform")
        .args(args)
        .env_remove("CARGO_PLATFORM_FAULT")
        .env_remove("CARGO_PLATFORM_TEMPLATE_DIR")
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("HOME", home)
        .output()
        .expect("run cargo-platform")
}

fn cargo(dir: &Path, args: &[&str]) -> Output {
    harness::cargo_in(dir, &harness::e2e_target(), args, &[])
}

/// Every (release a service can upgrade from, ejectable component at it), oldest first.
fn pairs() -> Vec<(String, String)> {
    let catalogue = Catalogue::load().expect("the embedded templates load");
    let template = catalogue.get("service").expect("the service template");
    let newest = template.newest().version.clone();
    let mut out = Vec::new();
    for release in template.releases.iter().filter(|r| r.version < newest) {
        let spec = template.spec(&release.version).expect("spec");
        for (name, meta) in &spec.components {
            if meta.ejectable {
                out.push((release.version.to_string(), name.clone()));
            }
        }
    }
    out
}

/// What ejecting a component and upgrading left: a break the upgrade declared (exit 3, nothing
/// to build), or a service to build and test.
enum Upgraded {
    Break(String),
    Service(PathBuf),
}

/// Ejects `component` at `version`, upgrades to the newest; `Err` says what went wrong.
fn eject_then_upgrade(root: &Path, version: &str, component: &str) -> Result<Upgraded, String> {
    let dir = root.join(format!("{version}-{component}"));
    let dir_arg = dir.to_str().expect("utf-8 path");
    let out = platform(&[
        "new",
        NAME,
        "--template-version",
        version,
        "--eject",
        component,
        "--yes",
        "--no-git",
        "--set",
        "owner=e2e",
        "--path",
        dir_arg,
    ]);
    if !out.status.success() {
        return Err(format!("new\n{}", common::describe(&out)));
    }
    let out = platform(&["upgrade", "--path", dir_arg, "--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("upgrade printed no JSON ({e})\n{}", common::describe(&out)))?;
    let actions: Vec<&Value> = report["actions"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    match out.status.code() {
        Some(3) if actions.iter().any(|a| a["component"] == component) => {
            Ok(Upgraded::Break(format!(
                "break declared (exit 3): {}",
                actions
                    .iter()
                    .map(|a| format!("{} in {}", a["component"], a["version"]))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
        Some(0) if actions.is_empty() => Ok(Upgraded::Service(dir)),
        _ => Err(format!("upgrade\n{}", common::describe(&out))),
    }
}

/// Builds every target of the upgraded service, then runs its own tests.
fn build_and_test(dir: &Path) -> Result<String, String> {
    // One build of every target (what `cargo check --all-targets` checks, but compiled for the
    // test run that follows rather than checked on its own), then the service's own tests.
    let out = cargo(
        dir,
        &["test", "--all-targets", "--no-run", "--color", "never"],
    );
    if !out.status.success() {
        return Err(format!(
            "upgraded with exit 0 and no declared break, but its targets do not compile\n{}",
            common::describe(&out)
        ));
    }
    let out = cargo(dir, &["test", "--color", "never"]);
    if !out.status.success() {
        return Err(format!(
            "upgraded with exit 0 and no declared break, but the service's own tests fail\n{}",
            common::describe(&out)
        ));
    }
    Ok("builds, tests pass".to_owned())
}

/// What a build of the service at `dir` reads: every file except `README.md` (prose the team
/// owns, left out while no source or Cargo.toml names it) and `platform.toml`, of which only the
/// template and version are taken. build.rs also compiles in the ejected components, as labels
/// of the `platform_build_info` gauge: a string that differs from pair to pair by construction,
/// and that the service's own metrics test checks against platform.toml in every tree built.
/// Two pairs with the same sources build and test alike, so the second is not built again: most
/// components' files did not change between the release they were ejected at and the newest.
fn build_sources(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = snapshot(dir);
    let manifest = files
        .iter()
        .position(|(path, _)| path == "platform.toml")
        .map(|at| files.remove(at))
        .expect("an upgraded service has platform.toml");
    let manifest: toml_edit::DocumentMut = String::from_utf8(manifest.1)
        .expect("utf-8 platform.toml")
        .parse()
        .expect("platform.toml parses");
    let names_the_readme = files.iter().any(|(path, bytes)| {
        (path.ends_with(".rs") || path.ends_with("Cargo.toml"))
            && bytes.windows(b"README".len()).any(|w| w == b"README")
    });
    if !names_the_readme {
        files.retain(|(path, _)| path != "README.md");
    }
    for key in ["template", "version"] {
        files.push((
            format!("platform.toml: platform.{key}"),
            manifest["platform"][key].to_string().into_bytes(),
        ));
    }
    files
}

#[test]
#[ignore = "end-to-end: builds and tests a generated service per distinct set of sources; run with --include-ignored"]
fn every_eject_then_upgrade_builds_or_declares_its_break() {
    let pairs = pairs();
    assert!(
        pairs.iter().any(|(v, c)| v == "1.0.0" && c == "auth")
            && pairs.iter().any(|(v, c)| v == "2.0.0" && c == "audit"),
        "{pairs:?}"
    );
    let work = tempfile::Builder::new()
        .prefix("cargo-platform-e2e-eject-")
        .tempdir()
        .expect("tempdir");
    let started = Instant::now();
    let mut failures = Vec::new();
    // Each build's verdict, by what the build reads (`build_sources`), with the pair built.
    type Verdict = (String, Result<String, String>);
    let mut built: HashMap<Vec<(String, Vec<u8>)>, Verdict> = HashMap::new();
    let mut builds = 0;
    for (version, component) in &pairs {
        let t = Instant::now();
        let pair = format!("eject {component} at {version}");
        let result = match eject_then_upgrade(work.path(), version, component) {
            Ok(Upgraded::Break(what)) => Ok(what),
            Ok(Upgraded::Service(dir)) => {
                let sources = build_sources(&dir);
                let result = match built.get(&sources) {
                    Some((first, Ok(what))) => Ok(format!("{what} (same sources as {first})")),
                    Some((first, Err(_))) => Err(format!("same sources as {first}, which failed")),
                    None => {
                        builds += 1;
                        let verdict = build_and_test(&dir);
                        built.insert(sources, (pair.clone(), verdict.clone()));
                        verdict
                    }
                };
                if result.is_ok() {
                    std::fs::remove_dir_all(&dir).ok();
                }
                result
            }
            Err(why) => Err(why),
        };
        eprintln!(
            "{pair}, upgrade: {} ({:.0?})",
            match &result {
                Ok(what) => what.as_str(),
                Err(_) => "FAILED",
            },
            t.elapsed()
        );
        if let Err(why) = result {
            failures.push(format!("== {pair}: {why}"));
        }
    }
    eprintln!(
        "{} pairs, {builds} builds, in {:.0?}",
        pairs.len(),
        started.elapsed()
    );
    if !failures.is_empty() {
        eprintln!(
            "kept the services for a post-mortem: {}",
            work.keep().display()
        );
        panic!("{}", failures.join("\n\n"));
    }
}

/// Every file below `root` (bytes), except build output.
fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.file_name() != "target")
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(root).expect("prefix");
            (
                rel.display().to_string(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
#[ignore = "end-to-end: builds a generated service; run with --include-ignored"]
fn verify_reports_the_compiler_errors_and_abort_restores_the_tree() {
    let work = tempfile::Builder::new()
        .prefix("cargo-platform-e2e-verify-")
        .tempdir()
        .expect("tempdir");
    let dir = work.path().join(NAME);
    let dir_arg = dir.to_str().expect("utf-8 path");
    let out = platform(&[
        "new",
        NAME,
        "--template-version",
        "1.0.0",
        "--eject",
        "auth",
        "--yes",
        "--no-git",
        "--set",
        "owner=e2e",
        "--path",
        dir_arg,
    ]);
    assert!(out.status.success(), "new\n{}", common::describe(&out));
    let before = snapshot(&dir);
    let home = common::home_with_identity();
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-platform"))
        .args(["platform", "upgrade", "--verify", "--path", dir_arg])
        .envs(harness::e2e_cargo_env())
        .env("HOME", home)
        .env_remove("CARGO_PLATFORM_TEMPLATE_DIR")
        .output()
        .expect("run cargo-platform");
    assert_eq!(out.status.code(), Some(3), "{}", common::describe(&out));
    // An outcome, reported on stdout; `error:` is for failures only.
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("error:"),
        "{}",
        common::describe(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("needs attention"), "{stdout}");
    assert!(
        stdout.contains("error[E0308]: mismatched types")
            && stdout.contains("src/platform/auth/dev_token.rs"),
        "the compiler's first error, where it is: {stdout}"
    );
    assert!(stdout.contains("upgrade --abort"), "{stdout}");
    let out = platform(&["upgrade", "--abort", "--path", dir_arg]);
    assert!(out.status.success(), "abort\n{}", common::describe(&out));
    assert!(
        snapshot(&dir) == before,
        "--abort restores the tree exactly (Cargo.lock, written by the check, included)"
    );
}

/// Writes `files` (path, text) below a fresh directory.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let at = dir.path().join(path);
        std::fs::create_dir_all(at.parent().expect("parent")).expect("mkdir");
        std::fs::write(at, text).expect("write");
    }
    dir
}

/// Fast (no build): two pairs share a build only when everything the build reads is the same.
#[test]
fn build_sources_differ_exactly_where_a_build_could() {
    const MANIFEST: &str = "[platform]\ntemplate = \"service\"\nversion = \"3.1.0\"\n\n\
        [components.auth]\nstate = \"ejected\"\n";
    let base = [
        ("platform.toml", MANIFEST),
        ("src/main.rs", "fn main() {}\n"),
        ("README.md", "# orders\n"),
    ];
    let key = |files: &[(&str, &str)]| build_sources(tree(files).path());
    let reference = key(&base);
    let with = |path: &str, text: &str| {
        let mut files = base.to_vec();
        files.retain(|(p, _)| *p != path);
        files.push((path, text));
        key(&files)
    };
    // Not read by the build: which component is ejected, the history, the team's README.
    let other_ejected = MANIFEST.replace("[components.auth]", "[components.flags]")
        + "\n[history]\ncreated = { version = \"1.0.0\" }\n";
    assert_eq!(with("platform.toml", &other_ejected), reference);
    assert_eq!(with("README.md", "# orders, by the team\n"), reference);
    // Read by the build: sources, the template version build.rs compiles in, and the README
    // once a source names it.
    assert_ne!(with("src/main.rs", "fn main() { }\n"), reference);
    assert_ne!(with("src/lib.rs", "\n"), reference);
    assert_ne!(
        with("platform.toml", &MANIFEST.replace("3.1.0", "3.0.0")),
        reference
    );
    let names_it = [
        ("platform.toml", MANIFEST),
        (
            "src/main.rs",
            "#![doc = include_str!(\"../README.md\")]\nfn main() {}\n",
        ),
    ];
    let mut edited = names_it.to_vec();
    edited.push(("README.md", "# orders, by the team\n"));
    let mut original = names_it.to_vec();
    original.push(("README.md", "# orders\n"));
    assert_ne!(key(&edited), key(&original));
}
