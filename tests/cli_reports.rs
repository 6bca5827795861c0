//! What commands report: every `--format json` document carries `"schema": 1` and exactly the
//! fields golden-path.md ("Machine-readable output") documents; outcomes are reported, not
//! errors; a write error on stdout is never swallowed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Output, Stdio};

use common::{demo, demo_service, git, outcome, platform, scratch};

/// Field paths documented per heading of golden-path.md's "Machine-readable output" section
/// (`a.b`, `a[].b`) with their documented type and meaning, the common `schema` and `command`
/// included in each.
fn documented() -> BTreeMap<String, Fields> {
    let doc = include_str!("../golden-path.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("9. Machine-readable output"))
        .expect("golden-path.md has a \"Machine-readable output\" section");
    let mut common = BTreeMap::new();
    let mut out: BTreeMap<String, Fields> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            current = Some(heading.trim().trim_matches('`').to_string());
            continue;
        }
        let Some(row) = line.strip_prefix("| `") else {
            continue;
        };
        let field = row.split('`').next().unwrap().to_string();
        let mut columns = row.split(" | ").skip(1);
        let kind = columns.next().unwrap_or("").trim().to_string();
        let meaning = columns.next().unwrap_or("").trim_end_matches('|').trim();
        let kind = (kind, meaning.to_string());
        match &current {
            None => common.insert(field, kind),
            Some(h) => out.entry(h.clone()).or_default().insert(field, kind),
        };
    }
    assert_eq!(
        common.keys().collect::<Vec<_>>(),
        ["command", "schema"],
        "the fields every document starts with"
    );
    for fields in out.values_mut() {
        fields.extend(common.clone());
    }
    out
}

/// Documented fields: path → (type, meaning).
type Fields = BTreeMap<String, (String, String)>;

/// `value` has the documented type `kind`: `string`, `boolean`, `integer`, `number`, `object`, `array`,
/// `array of strings`, or several joined with `, ` and ` or ` (`string or null`).
fn has_type(value: &serde_json::Value, kind: &str) -> bool {
    use serde_json::Value;
    kind.split(" or ")
        .flat_map(|k| k.split(", "))
        .any(|k| match k.trim() {
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "array of strings" => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            "null" => value.is_null(),
            other => panic!("golden-path.md uses an unknown type `{other}` in `{kind}`"),
        })
}

/// Every field path of `v` with its value.
fn values<'v>(
    v: &'v serde_json::Value,
    prefix: &str,
    out: &mut Vec<(String, &'v serde_json::Value)>,
) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push((path.clone(), child));
                values(child, &path, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                values(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// Every field path in `v`; and the paths whose value was `null` or an empty array (what is
/// documented below them cannot show up in this document).
fn paths(
    v: &serde_json::Value,
    prefix: &str,
    seen: &mut BTreeSet<String>,
    hollow: &mut BTreeSet<String>,
) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                seen.insert(path.clone());
                paths(child, &path, seen, hollow);
            }
        }
        serde_json::Value::Array(items) => {
            if items.is_empty() {
                hollow.insert(prefix.to_string());
            }
            for item in items {
                paths(item, &format!("{prefix}[]"), seen, hollow);
            }
        }
        serde_json::Value::Null => {
            hollow.insert(prefix.to_string());
        }
        _ => {}
    }
}

/// `path` is the documented field `doc`, where a `*` segment stands for any key of a map.
fn matches(doc: &str, path: &str) -> bool {
    let (d, p): (Vec<_>, Vec<_>) = (doc.split('.').collect(), path.split('.').collect());
    d.len() == p.len() && d.iter().zip(&p).all(|(d, p)| d == p || *d == "*")
}

/// The document on stdout, checked against the docs of `heading`: its `schema` is 1, its
/// `command` is `command`, and it has no field the docs do not list.
fn document(
    out: &Output,
    heading: &str,
    command: &str,
    docs: &BTreeMap<String, Fields>,
    coverage: &mut BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{heading}: stdout is not one JSON document ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            outcome(out)
        )
    });
    assert_eq!(v["schema"], 1, "{heading}: {v}");
    assert_eq!(v["command"], command, "{heading}: {v}");
    let documented = docs
        .get(heading)
        .unwrap_or_else(|| panic!("golden-path.md documents no `{heading}` report"));
    let (seen, hollow) = coverage.entry(heading.to_string()).or_default();
    let mut here = BTreeSet::new();
    paths(&v, "", &mut here, hollow);
    let undocumented: Vec<_> = here
        .iter()
        .filter(|p| !documented.keys().any(|d| matches(d, p)))
        .collect();
    assert!(
        undocumented.is_empty(),
        "{heading}: fields missing from golden-path.md: {undocumented:?}"
    );
    let mut all = Vec::new();
    values(&v, "", &mut all);
    for (path, value) in all {
        let (_, (kind, _)) = documented
            .iter()
            .find(|(d, _)| matches(d, &path))
            .expect("documented");
        assert!(
            has_type(value, kind),
            "{heading}: `{path}` is {value}, golden-path.md says {kind}"
        );
    }
    seen.extend(here);
    v
}

fn run(cmd: &mut assert_cmd::Command) -> Output {
    cmd.output().unwrap()
}

/// Every command's JSON against the docs, over services that fill every array at least once:
/// each field the docs list shows up (unless it sits below a value that was `null` or an empty
/// array in every document), and no field is undocumented.
#[test]
fn every_json_report_has_schema_1_and_matches_the_documentation() {
    let docs = documented();
    let mut cov = BTreeMap::new();
    let dir = scratch();

    let out = run(platform(dir.path()).args(["templates", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    document(&out, "templates", "templates", &docs, &mut cov);

    // new: once with git, once without, once ejecting a component.
    let out = run(platform(dir.path()).args([
        "new",
        "orders",
        "--yes",
        "--set",
        "owner=t",
        "--template-version",
        "1.0.0",
        "--eject",
        "auth",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v = document(&out, "new", "new", &docs, &mut cov);
    assert_eq!(v["components"]["auth"], "ejected", "{v}");
    assert_eq!(v["git"]["initialised"], true, "{v}");
    let inner = dir.path().join("orders");
    let out = run(platform(&inner).args([
        "new",
        "billing",
        "--yes",
        "--set",
        "owner=t",
        "--path",
        "nested/billing",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v = document(&out, "new", "new", &docs, &mut cov);
    assert_eq!(v["git"]["initialised"], false, "{v}");
    assert!(v["git"]["inside_work_tree"].is_string(), "{v}");

    // status and check of a 1.0.0 service with an ejected component and a local edit, far in
    // the future (pending migrations, out of support).
    let svc = dir.path().join("orders");
    std::fs::write(svc.join("Cargo.toml"), "# edited\n").unwrap();
    for today in ["2026-12-01", "2999-01-01"] {
        let out = run(platform(&svc)
            .env("CARGO_PLATFORM_TODAY", today)
            .args(["status", "--format", "json"]));
        assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
        let v = document(&out, "status", "status", &docs, &mut cov);
        assert_eq!(v["local_edits"][0]["path"], "Cargo.toml", "{v}");
        let out = run(platform(&svc)
            .env("CARGO_PLATFORM_TODAY", today)
            .args(["check", "--format", "json"]));
        let v = document(&out, "check", "check", &docs, &mut cov);
        let code = if v["ok"] == true { 0 } else { 4 };
        assert_eq!(out.status.code(), Some(code), "{v}\n{}", outcome(&out));
    }
    let out = run(platform(&svc).args(["upgrade", "--dry-run", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v = document(&out, "upgrade", "upgrade", &docs, &mut cov);
    assert_eq!(v["outcome"], "planned", "{v}");
    assert_eq!(v["applied"], false, "{v}");

    // upgrade (demo template): a skipped migration, a rename, a conflict, then status again.
    let demo_dir = scratch();
    let d = demo_service(demo_dir.path());
    std::fs::write(
        d.join("src/main.rs"),
        "fn main() {\n    println!(\"ours\");\n}\n",
    )
    .unwrap();
    git(&d, &["commit", "-qam", "team edit"]);
    let out = run(demo(&d).args([
        "upgrade",
        "--skip",
        "demo-2.0.0-rename-key",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    let v = document(&out, "upgrade", "upgrade", &docs, &mut cov);
    assert_eq!(v["outcome"], "needs_attention", "{v}");
    assert_eq!(v["conflicts"], serde_json::json!(["src/main.rs"]), "{v}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("error"),
        "{}",
        outcome(&out)
    );
    let out = run(demo(&d).args(["status", "--format", "json"]));
    let v = document(&out, "status", "status", &docs, &mut cov);
    assert_eq!(
        v["skipped_migrations"][0]["id"], "demo-2.0.0-rename-key",
        "{v}"
    );
    let out = run(demo(&d).args(["upgrade", "--format", "json"]));
    let v = document(&out, "upgrade", "upgrade", &docs, &mut cov);
    assert_eq!(v["outcome"], "up_to_date", "{v}");

    // add on a demo 1.0.0 service: nothing to change, a dry run, a conflict, a commit.
    let add_dir = scratch();
    let d = demo_service(add_dir.path());
    let out = run(demo(&d).args(["add", "core", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v = document(&out, "add", "add", &docs, &mut cov);
    assert_eq!(v["outcome"], "unchanged", "{v}");
    assert!(v["reason"].is_string(), "{v}");
    let add = [
        "add",
        "extra",
        "--set",
        "store=postgres",
        "--format",
        "json",
    ];
    let out = run(demo(&d).args(add).arg("--dry-run"));
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v = document(&out, "add", "add", &docs, &mut cov);
    assert_eq!(v["outcome"], "planned", "{v}");
    assert_eq!(v["set"][0]["to"], "postgres", "{v}");
    // The team already has a src/pg.rs of its own: a conflict.
    std::fs::write(d.join("src/pg.rs"), "// ours\n").unwrap();
    git(&d, &["add", "-A"]);
    git(&d, &["commit", "-qm", "our pg.rs"]);
    let out = run(demo(&d).args(add));
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    let v = document(&out, "add", "add", &docs, &mut cov);
    assert_eq!(v["outcome"], "needs_attention", "{v}");
    assert_eq!(v["conflicts"], serde_json::json!(["src/pg.rs"]), "{v}");
    let add_dir = scratch();
    let d = demo_service(add_dir.path());
    let out = run(demo(&d).args(add).arg("--commit"));
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v = document(&out, "add", "add", &docs, &mut cov);
    assert_eq!(v["outcome"], "added", "{v}");
    assert!(v["commit"].is_string(), "{v}");

    // upgrade --commit, and --abort after a crash.
    let demo_dir = scratch();
    let d = demo_service(demo_dir.path());
    let out = run(demo(&d).args(["upgrade", "--commit", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v = document(&out, "upgrade", "upgrade", &docs, &mut cov);
    assert_eq!(v["outcome"], "upgraded", "{v}");
    assert!(v["commit"].is_string(), "{v}");
    let demo_dir = scratch();
    let d = demo_service(demo_dir.path());
    let out = run(demo(&d)
        .env("CARGO_PLATFORM_FAULT", "upgrade:crash:3")
        .arg("upgrade"));
    assert_eq!(out.status.code(), Some(101), "{}", outcome(&out));
    let out = run(demo(&d).args(["upgrade", "--abort", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v = document(&out, "upgrade --abort", "upgrade", &docs, &mut cov);
    assert_eq!(v["aborted"], true, "{v}");

    // fleet status over the services above (an ejection, local edits, findings) and a broken one.
    std::fs::create_dir_all(dir.path().join("broken")).unwrap();
    std::fs::write(dir.path().join("broken/platform.toml"), "[platform\n").unwrap();
    let out = run(platform(dir.path())
        .env("CARGO_PLATFORM_TODAY", "2026-12-01")
        .args(["fleet", "status", "--root", ".", "--format", "json"]));
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let v = document(&out, "fleet status", "fleet status", &docs, &mut cov);
    assert_eq!(v["skipped"][0]["location"], "./broken", "{v}");
    let out = run(platform(dir.path())
        .env("CARGO_PLATFORM_TODAY", "2999-01-01")
        .args(["fleet", "report", "--root", ".", "--format", "json"]));
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let v = document(&out, "fleet report", "fleet report", &docs, &mut cov);
    assert_eq!(v["skipped"][0]["location"], "./broken", "{v}");
    assert_eq!(v["groups"][0]["ejections"][0]["component"], "auth", "{v}");
    assert_eq!(v["out_of_policy"][0]["service"], "orders", "{v}");

    // fleet upgrade over the same tree: `orders` (1.0.0, auth ejected: a declared break) needs
    // hands, `broken` is outside any git repository; a ready service from a second run.
    let out = run(platform(dir.path()).args([
        "fleet",
        "upgrade",
        "--root",
        ".",
        "--dry-run",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let v = document(&out, "fleet upgrade", "fleet upgrade", &docs, &mut cov);
    assert_eq!(v["services"][0]["outcome"], "needs_hands", "{v}");
    assert_eq!(v["services"][0]["actions"][0]["component"], "auth", "{v}");
    assert_eq!(v["skipped"][0]["location"], "./broken", "{v}");
    let campaign = scratch();
    let out = run(platform(campaign.path()).args([
        "new",
        "ready",
        "--yes",
        "--set",
        "owner=t",
        "--template-version",
        "1.0.0",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let out =
        run(platform(campaign.path())
            .args(["fleet", "upgrade", "--out", "bodies", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v = document(&out, "fleet upgrade", "fleet upgrade", &docs, &mut cov);
    assert_eq!(v["services"][0]["outcome"], "ready", "{v}");
    assert!(v["services"][0]["pr_body"].is_string(), "{v}");
    // fleet report while that campaign's branch is open.
    let out = run(platform(campaign.path()).args(["fleet", "report", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v = document(&out, "fleet report", "fleet report", &docs, &mut cov);
    assert_eq!(v["campaigns"][0]["open"], 1, "{v}");

    // Every documented field was seen, unless it can only sit below a null or an empty array.
    for (heading, fields) in &docs {
        let (seen, hollow) = cov
            .get(heading)
            .unwrap_or_else(|| panic!("no `{heading}` document was checked"));
        let unseen: Vec<_> = fields
            .keys()
            .filter(|f| !seen.iter().any(|p| matches(f, p)))
            .filter(|f| {
                !hollow
                    .iter()
                    .any(|h| f.starts_with(&format!("{h}.")) || f.starts_with(&format!("{h}[]")))
            })
            .collect();
        assert!(
            unseen.is_empty(),
            "{heading}: golden-path.md documents fields no document has: {unseen:?}"
        );
    }
}

/// The tool with stdout connected to `stdout`, as a user's shell would connect it.
fn with_stdout(cwd: &Path, args: &[&str], stdout: impl Into<Stdio>) -> Output {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cargo-platform"));
    cmd.current_dir(cwd)
        .arg("platform")
        .args(args)
        .env_remove("CARGO_PLATFORM_FAULT")
        .env("CARGO_PLATFORM_TEMPLATE_DIR", common::DEMO_TEMPLATES)
        .stdout(stdout)
        .stderr(Stdio::piped());
    cmd.output().unwrap()
}

/// `cargo platform status | head -0`: the reader is gone before the report is written. The tool
/// ends quietly with 141 (as a tool killed by SIGPIPE), not 0 as if the report was delivered.
#[test]
fn a_closed_stdout_ends_quietly_with_141() {
    let dir = scratch();
    let svc = demo_service(dir.path());
    for args in [
        &["templates"][..],
        &["status", "--format", "json"],
        &["check"],
        &["upgrade", "--dry-run"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = with_stdout(&svc, args, writer);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {}", outcome(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", outcome(&out));
    }
}

/// Any other write error on stdout is a failure, reported on stderr.
#[test]
#[cfg(target_os = "linux")]
fn a_full_stdout_is_reported() {
    let dir = scratch();
    let svc = demo_service(dir.path());
    for args in [&["templates"][..], &["status", "--format", "json"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = with_stdout(&svc, args, full);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", outcome(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: cannot write the report to stdout: No space left on device"),
            "{args:?}: {err}"
        );
    }
}

/// A report that cannot be written after the command did its work: the error says the work is
/// done (a user must not run `new` again, or think the upgrade did not happen), and a command
/// that changes the service finishes its change before it writes the report.
#[test]
#[cfg(target_os = "linux")]
fn a_full_stdout_after_the_work_says_the_work_is_done() {
    let dir = scratch();
    let run_full = |cwd: &Path, args: &[&str]| {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        std::process::Command::new(assert_cmd::cargo::cargo_bin("cargo-platform"))
            .current_dir(cwd)
            .arg("platform")
            .args(args)
            .env_remove("CARGO_PLATFORM_FAULT")
            .env_remove("CARGO_PLATFORM_TEMPLATE_DIR")
            .stdin(Stdio::null())
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    let out = run_full(
        dir.path(),
        &["new", "orders", "--yes", "--set", "owner=t", "--no-git"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let svc = dir.path().join("orders");
    assert!(svc.join("platform.toml").is_file(), "{}", outcome(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("what it changed is in place"), "{err}");

    // `eject` of one component already ejected and one not: the second is recorded although
    // the line about the first could not be written.
    let out = platform(&svc).args(["eject", "auth"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let out = run_full(&svc, &["eject", "auth", "flags"]);
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let manifest = std::fs::read_to_string(svc.join("platform.toml")).unwrap();
    let flags = manifest
        .split("[components.flags]")
        .nth(1)
        .unwrap_or_else(|| panic!("{manifest}"));
    assert!(
        flags.trim_start().starts_with("state = \"ejected\""),
        "{manifest}\n{}",
        outcome(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("what it changed is in place"), "{err}");
}

/// `upgrade --eject` reports the components this run ejected: not one that was ejected
/// already, and each once however often it was given.
#[test]
fn upgrade_reports_only_the_components_it_ejected() {
    let dir = scratch();
    let out = platform(dir.path())
        .args(["new", "orders", "--yes", "--set", "owner=t", "--no-git"])
        .args(["--eject", "auth"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let svc = dir.path().join("orders");
    let eject = ["--eject", "auth", "--eject", "flags", "--eject", "flags"];
    let out = platform(&svc)
        .args(["upgrade", "--allow-dirty", "--format", "json"])
        .args(eject)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ejected"], serde_json::json!(["flags"]), "{v}");
    let out = platform(&svc)
        .args([
            "upgrade",
            "--allow-dirty",
            "--eject",
            "flags",
            "--eject",
            "metrics",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with("nothing to do\nEjected: metrics\n"),
        "{text}"
    );

    // The same in a real upgrade (demo 1.0.0 -> 2.0.0).
    let demo_dir = scratch();
    let d = demo_service(demo_dir.path());
    let out = demo(&d).args(["eject", "extra"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let out = demo(&d)
        .args([
            "upgrade",
            "--allow-dirty",
            "--eject",
            "extra",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    // demo 2.0.0 declares a break in `extra`: the upgrade needs attention (exit 3) and lists it.
    assert_eq!(out.status.code(), Some(3), "{}", outcome(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "needs_attention", "{v}");
    assert_eq!(v["actions"][0]["component"], "extra", "{v}");
    assert_eq!(v["ejected"], serde_json::json!([]), "{v}");
}

/// The JSON Schema (draft 2020-12) of one report, derived from its golden-path.md table: every
/// documented field is required where it sits (maps aside), with its type and meaning; unknown
/// fields are allowed, as the versioning rule promises readers.
fn json_schema(heading: &str, fields: &Fields) -> serde_json::Value {
    use serde_json::{Value, json};
    fn types(kind: &str) -> Value {
        let mut types: Vec<&str> = Vec::new();
        let mut items = None;
        for k in kind.split(" or ").flat_map(|k| k.split(", ")) {
            match k.trim() {
                "array of strings" => {
                    types.push("array");
                    items = Some(json!({ "type": "string" }));
                }
                other => types.push(other),
            }
        }
        let mut schema = json!({
            "type": if types.len() == 1 { json!(types[0]) } else { json!(types) },
        });
        if let Some(items) = items {
            schema["items"] = items;
        }
        schema
    }
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": format!("cargo platform {heading} --format json"),
        "description": "Generated from golden-path.md, section 9 (tests/cli_reports.rs); schema 1.",
        "type": "object",
    });
    for (path, (kind, meaning)) in fields {
        // Walk to the parent of the field, creating `properties`, `items` and
        // `additionalProperties` on the way.
        let mut node = &mut root;
        let segments: Vec<&str> = path.split('.').collect();
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let (name, in_array) = match seg.strip_suffix("[]") {
                Some(name) => (name, true),
                None => (*seg, false),
            };
            let child = if name == "*" {
                node.as_object_mut()
                    .unwrap()
                    .entry("additionalProperties")
                    .or_insert_with(|| json!({}))
            } else {
                let obj = node.as_object_mut().unwrap();
                let required = obj.entry("required").or_insert_with(|| json!([]));
                if !required.as_array().unwrap().contains(&json!(name)) {
                    required.as_array_mut().unwrap().push(json!(name));
                }
                obj.entry("properties")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .unwrap()
                    .entry(name)
                    .or_insert_with(|| json!({}))
            };
            node = if in_array {
                child
                    .as_object_mut()
                    .unwrap()
                    .entry("items")
                    .or_insert_with(|| json!({}))
            } else {
                child
            };
            if last {
                let typed = types(kind);
                let obj = node.as_object_mut().unwrap();
                for (k, v) in typed.as_object().unwrap() {
                    obj.insert(k.clone(), v.clone());
                }
                obj.insert("description".into(), json!(meaning));
                if path == "schema" {
                    obj.insert("const".into(), json!(1));
                }
            }
        }
    }
    root
}

/// `schemas/report/<command>.json`, one JSON Schema per report, are generated from the
/// documentation and must match it: `REPORT_SCHEMAS_BLESS=1 cargo test --test cli_reports`
/// rewrites them after a documented change.
#[test]
fn shipped_json_schemas_match_the_documentation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/report");
    let bless = std::env::var_os("REPORT_SCHEMAS_BLESS").is_some();
    let mut expected = BTreeSet::new();
    for (heading, fields) in documented() {
        let file = format!("{}.json", heading.replace(' ', "").replace("--", "-"));
        let text = serde_json::to_string_pretty(&json_schema(&heading, &fields)).unwrap() + "\n";
        let path = dir.join(&file);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let shipped = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            shipped == text,
            "{} is not what golden-path.md documents; run REPORT_SCHEMAS_BLESS=1 cargo test --test cli_reports and review the diff",
            path.display()
        );
        expected.insert(file);
    }
    let shipped: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        shipped, expected,
        "a schema file for every documented report, no other"
    );
}
