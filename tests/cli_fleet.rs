//! `cargo platform fleet status` and `fleet check`: services found under roots, in monorepos, in
//! a fleet file and in git refs (bare mirrors too); bad places listed with their reason, never
//! sinking the report; nothing written.

mod common;

use std::path::Path;
use std::process::Output;

use common::{git, outcome, platform, scratch, settings};

const TODAY: &str = "2026-12-10";

/// `cargo platform …` in `cwd` with today pinned.
fn run(cwd: &Path, args: &[&str]) -> Output {
    platform(cwd)
        .env("CARGO_PLATFORM_TODAY", TODAY)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) -> Output {
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(out), outcome(out)))
}

/// `new NAME --path PATH` with an owner, without git unless `git` is set.
fn new(cwd: &Path, name: &str, path: &str, owner: &str, extra: &[&str], with_git: bool) {
    let mut args = vec!["new", name, "--yes", "--path", path, "--set"];
    let owner = format!("owner={owner}");
    args.push(&owner);
    if !with_git {
        args.push("--no-git");
    }
    args.extend_from_slice(extra);
    ok(run(cwd, &args));
}

/// Rewrites the first occurrence of `from` in `dir/platform.toml`.
fn corrupt(dir: &Path, from: &str, to: &str) {
    let file = dir.join("platform.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(from), "{text}");
    std::fs::write(&file, text.replacen(from, to, 1)).unwrap();
}

/// A fixed small fleet under `root`: `orders` on 1.0.0 with `auth` ejected and a local edit,
/// `billing` on the newest, a monorepo with two services, and broken entries (corrupt
/// manifest, future schema, unknown template); services under `target/` and `node_modules/`,
/// and one behind a symbolic link out of the root, are not part of it.
fn small_fleet(root: &Path) {
    new(
        root,
        "orders",
        "orders",
        "payments",
        &["--template-version", "1.0.0"],
        false,
    );
    ok(run(
        &root.join("orders"),
        &[
            "eject",
            "auth",
            "--reason",
            "we use the company SSO gateway",
        ],
    ));
    let cargo = root.join("orders/Cargo.toml");
    let text = std::fs::read_to_string(&cargo).unwrap();
    std::fs::write(&cargo, format!("{text}\n# a team edit\n")).unwrap();
    new(root, "billing", "billing", "ledger", &[], false);
    new(root, "api", "mono/services/api", "ledger", &[], false);
    new(
        root,
        "worker",
        "mono/services/worker",
        "ledger",
        &["--template-version", "1.0.0"],
        false,
    );

    new(root, "corrupt", "broken/corrupt", "x", &[], false);
    std::fs::write(root.join("broken/corrupt/platform.toml"), "[platform\n").unwrap();
    new(root, "future", "broken/future", "x", &[], false);
    corrupt(&root.join("broken/future"), "schema = 2", "schema = 99");
    new(root, "alien", "broken/alien", "x", &[], false);
    corrupt(
        &root.join("broken/alien"),
        "template = \"service\"",
        "template = \"nope\"",
    );

    for skipped in ["orders/target/copy", "node_modules/pkg"] {
        new(root, "hidden", skipped, "x", &[], false);
    }
}

#[test]
fn fleet_status_reports_every_service_and_lists_broken_entries_with_their_reason() {
    let dir = scratch();
    let root = dir.path().join("fleet");
    std::fs::create_dir(&root).unwrap();
    small_fleet(&root);
    // A service outside the root, reachable only through a symbolic link: never followed.
    new(dir.path(), "outside", "outside", "x", &[], false);
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path().join("outside"), root.join("link")).unwrap();
    // A manifest that is a symbolic link out of the root: listed, not read.
    std::fs::create_dir(root.join("linked")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        dir.path().join("outside/platform.toml"),
        root.join("linked/platform.toml"),
    )
    .unwrap();
    let before = common::tree(dir.path());
    let manifest_before = std::fs::read(root.join("orders/platform.toml")).unwrap();

    let out = run(
        &root,
        &["fleet", "status", "--root", ".", "--format", "json"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "skipped entries exit 1\n{}",
        outcome(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("error"),
        "{}",
        outcome(&out)
    );
    let v = json(&out);
    let text = stdout(&out);
    settings().bind(|| insta::assert_snapshot!("fleet_status_small_fleet", text));

    let names: Vec<&str> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["billing", "api", "worker", "orders"]);
    let reasons: Vec<(&str, &str)> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["location"].as_str().unwrap(),
                s["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons[0].0.ends_with("broken/alien") && reasons[0].1.contains("nope"),
        "{reasons:?}"
    );
    assert!(reasons[1].1.contains("not valid TOML"), "{reasons:?}");
    assert!(reasons[2].1.contains("schema 99"), "{reasons:?}");
    assert_eq!(reasons[3].0, "./linked/platform.toml", "{reasons:?}");
    assert!(reasons[3].1.contains("symbolic link"), "{reasons:?}");
    assert!(
        reasons.iter().all(|(_, r)| !r.contains('\n')),
        "{reasons:?}"
    );

    // Human and CSV list the same services and the same skipped entries.
    let out = run(&root, &["fleet", "status", "--root", "."]);
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let text = stdout(&out);
    settings().bind(|| insta::assert_snapshot!("fleet_status_small_fleet_human", text));
    for needle in [
        "orders (payments) — ./orders",
        "ejected auth on 2026-12-10 — we use the company SSO gateway",
        "local edits to platform files: 1 (Cargo.toml)",
        "check: OUT OF POLICY (pending-required-migration)",
        "skipped ./broken/future: ",
        "4 services, 2 out of policy, 4 skipped",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
    assert!(
        !text.contains("hidden") && !text.contains("outside"),
        "{text}"
    );
    let out = run(
        &root,
        &["fleet", "status", "--root", ".", "--format", "csv"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let csv = stdout(&out);
    let rows: Vec<&str> = csv.split("\r\n").filter(|r| !r.is_empty()).collect();
    assert_eq!(rows.len(), 1 + 4 + 4, "{csv}");
    assert!(
        rows[0].starts_with("status,name,location,ref,team,"),
        "{csv}"
    );
    assert!(
        rows[4].starts_with(r#"out_of_policy,orders,./orders,,payments,service,1.0.0,3.1.0,4,8,deprecated,2027-06-30,"[""service-2.0.0-rename-idempotency-ttl""]","[{""component"":""auth"",""date"":""2026-12-10"",""reason"":""we use the company SSO gateway""}]",1,"[""Cargo.toml""]","#),
        "{}",
        rows[4]
    );
    // A reason holding commas is one quoted field (RFC 4180).
    assert!(
        rows.contains(&"skipped,,./broken/corrupt,,,,,,,,,,,,,,,,,\"./broken/corrupt/platform.toml is not valid TOML: TOML parse error at line 1, column 10: unclosed table, expected `]`\""),
        "{csv}"
    );
    assert!(rows[5].starts_with("skipped,,./broken/alien,"), "{csv}");

    // Read only: nothing was written anywhere.
    assert_eq!(common::tree(dir.path()), before);
    assert_eq!(
        std::fs::read(root.join("orders/platform.toml")).unwrap(),
        manifest_before
    );
}

#[test]
fn fleet_status_matches_status_for_each_service() {
    let dir = scratch();
    small_fleet(dir.path());
    let fleet = json(&run(
        dir.path(),
        &["fleet", "status", "--root", ".", "--format", "json"],
    ));
    for s in fleet["services"].as_array().unwrap() {
        let location = s["location"].as_str().unwrap();
        let one = json(&ok(run(
            &dir.path().join(location),
            &["status", "--format", "json"],
        )));
        assert_eq!(s["name"], one["name"]);
        assert_eq!(s["version"], one["version"]);
        assert_eq!(s["releases_behind"], one["releases_behind"]);
        assert_eq!(s["support"], one["support"]);
        assert_eq!(s["ejected"], one["ejected"]);
        assert_eq!(s["policy"], one["policy"]);
        let paths: Vec<&serde_json::Value> = one["local_edits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["path"])
            .collect();
        assert_eq!(
            s["local_edits"]["paths"]
                .as_array()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            paths
        );
    }
}

#[test]
fn fleet_check_exits_4_with_findings_grouped_by_team_and_0_when_within_policy() {
    let dir = scratch();
    let root = dir.path();
    new(
        root,
        "orders",
        "orders",
        "payments",
        &["--template-version", "1.0.0"],
        false,
    );
    new(root, "refunds", "refunds", "payments", &[], false);
    new(
        root,
        "ledger",
        "ledger",
        "books",
        &["--template-version", "1.0.0"],
        false,
    );

    // 2027-07-01: 1.0.0 is past its end of support (2027-06-30).
    let out = platform(root)
        .env("CARGO_PLATFORM_TODAY", "2027-07-01")
        .args(["fleet", "check", "--root", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", outcome(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("error"),
        "{}",
        outcome(&out)
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let books = lines.iter().position(|l| *l == "team books:").expect(&text);
    let payments = lines
        .iter()
        .position(|l| *l == "team payments:")
        .expect(&text);
    assert!(books < payments, "{text}");
    assert!(lines[books + 1].starts_with("  ledger (./ledger): out-of-support: service 1.0.0 reached end of support on 2027-06-30"), "{text}");
    assert!(
        lines[payments + 1].starts_with("  orders (./orders): out-of-support: "),
        "{text}"
    );
    assert!(!text.contains("refunds"), "{text}");
    assert!(text.ends_with("out of policy: 2 of 3 services; each team runs `cargo platform upgrade` in its service\n"), "{text}");

    // Upgraded, the fleet is within policy.
    for svc in ["orders", "ledger"] {
        ok(run(&root.join(svc), &["upgrade"]));
    }
    let out = ok(run(root, &["fleet", "check", "--root", "."]));
    assert_eq!(stdout(&out), "ok: 3 services within policy\n");
    // Without --root or --fleet: the current directory.
    let out = ok(run(root, &["fleet", "check"]));
    assert_eq!(stdout(&out), "ok: 3 services within policy\n");

    // A place that cannot be read: exit 1, listed, the rest still checked.
    let out = run(
        root,
        &["fleet", "check", "--root", ".", "--root", "missing"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let text = stdout(&out);
    assert!(text.contains("skipped missing: cannot read it: "), "{text}");
    assert!(
        text.ends_with("ok: 3 services within policy; 1 place not read (listed above)\n"),
        "{text}"
    );
}

#[test]
fn fleet_status_reads_a_git_ref_without_a_checkout_bare_mirrors_too() {
    let dir = scratch();
    let root = dir.path();
    new(
        root,
        "orders",
        "orders",
        "payments",
        &["--template-version", "1.0.0"],
        true,
    );
    let repo = root.join("orders");
    let branch = git(&repo, &["symbolic-ref", "--short", "HEAD"])
        .trim()
        .to_string();
    // A committed edit on a branch, and an uncommitted one in the work tree.
    git(&repo, &["checkout", "-qb", "edited"]);
    std::fs::write(repo.join("Dockerfile"), "FROM scratch\n").unwrap();
    git(&repo, &["commit", "-qam", "team edit"]);
    std::fs::write(repo.join("Cargo.toml"), "# uncommitted\n").unwrap();
    git(
        root,
        &["clone", "-q", "--bare", "orders", "mirrors/orders.git"],
    );

    let edits = |args: &[&str]| {
        let v = json(&ok(run(root, args)));
        assert_eq!(v["services"].as_array().unwrap().len(), 1, "{v}");
        let s = &v["services"][0];
        (
            s["location"].as_str().unwrap().to_string(),
            s["ref"].clone(),
            s["local_edits"]["paths"].clone(),
        )
    };
    let (loc, reference, paths) =
        edits(&["fleet", "status", "--root", "orders", "--format", "json"]);
    assert_eq!(
        (loc.as_str(), reference),
        ("orders", serde_json::Value::Null)
    );
    assert_eq!(paths, serde_json::json!(["Cargo.toml", "Dockerfile"]));
    let (loc, reference, paths) = edits(&[
        "fleet", "status", "--root", "orders", "--ref", &branch, "--format", "json",
    ]);
    assert_eq!(loc, format!("orders@{branch}"));
    assert_eq!(reference, serde_json::json!(branch));
    assert_eq!(paths, serde_json::json!([]));
    let (loc, _, paths) = edits(&[
        "fleet", "status", "--root", "mirrors", "--ref", "edited", "--format", "json",
    ]);
    assert_eq!(loc, "mirrors/orders.git@edited");
    assert_eq!(paths, serde_json::json!(["Dockerfile"]));

    // With --ref, every repository under the root is read at that ref; a service outside any
    // repository is listed, not read from its work tree.
    new(root, "loose", "loose", "payments", &[], false);
    let out = run(
        root,
        &[
            "fleet", "status", "--root", ".", "--ref", "edited", "--format", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let v = json(&out);
    let locations: Vec<&str> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["location"].as_str().unwrap())
        .collect();
    assert_eq!(
        locations,
        ["./mirrors/orders.git@edited", "./orders@edited"],
        "{v}"
    );
    assert_eq!(v["skipped"][0]["location"], "./loose", "{v}");
    assert!(
        v["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not in a git repository"),
        "{v}"
    );

    // Without --ref a bare mirror has no work tree: listed, not read.
    let out = run(
        root,
        &["fleet", "status", "--root", "mirrors", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let v = json(&out);
    assert_eq!(v["skipped"][0]["location"], "mirrors/orders.git", "{v}");
    assert!(
        v["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("--ref"),
        "{v}"
    );

    // A missing ref: listed with its reason.
    let out = run(
        root,
        &[
            "fleet", "status", "--root", "mirrors", "--ref", "nope", "--format", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let v = json(&out);
    assert_eq!(v["services"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["skipped"][0]["location"], "mirrors/orders.git@nope",
        "{v}"
    );
    assert!(
        v["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("has no ref `nope`"),
        "{v}"
    );
}

#[test]
fn a_fleet_file_selects_monorepo_services_by_glob_overrides_the_team_and_reads_refs() {
    let dir = scratch();
    let root = dir.path();
    let mono = root.join("mono");
    std::fs::create_dir(&mono).unwrap();
    git(&mono, &["init", "-q"]);
    new(&mono, "api", "services/api", "ledger", &[], false);
    new(
        &mono,
        "worker",
        "services/worker",
        "ledger",
        &["--template-version", "1.0.0"],
        false,
    );
    new(&mono, "codegen", "tools/codegen", "ledger", &[], false);
    git(&mono, &["add", "-A"]);
    git(&mono, &["commit", "-qm", "services"]);
    git(root, &["clone", "-q", "--bare", "mono", "mono.git"]);
    new(root, "orders", "clones/orders", "payments", &[], false);
    std::fs::write(
        root.join("fleet.toml"),
        r#"
[[repository]]
path = "mono.git"
ref = "HEAD"
services = ["services/*", "apps/*"]
team = "platform"

[[repository]]
path = "clones/orders"

[[repository]]
path = "gone"
"#,
    )
    .unwrap();

    let out = run(
        root,
        &[
            "fleet",
            "status",
            "--fleet",
            "fleet.toml",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let v = json(&out);
    let services: Vec<(String, String)> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["location"].as_str().unwrap().to_string(),
                s["team"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        services,
        [
            ("clones/orders".to_string(), "payments".to_string()),
            (
                "mono.git@HEAD:services/api".to_string(),
                "platform".to_string()
            ),
            (
                "mono.git@HEAD:services/worker".to_string(),
                "platform".to_string()
            ),
        ],
        "{v}"
    );
    let skipped: Vec<String> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}: {}",
                s["location"].as_str().unwrap(),
                s["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped[0].starts_with("gone: cannot read it: "),
        "{skipped:?}"
    );
    assert_eq!(
        skipped[1],
        "mono.git@HEAD: no service matches `apps/*` (services in the fleet file)"
    );

    // A fleet file that is not one is an error before anything is read.
    std::fs::write(root.join("bad.toml"), "[[repository]]\nbranch = \"main\"\n").unwrap();
    let out = run(root, &["fleet", "status", "--fleet", "bad.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: bad.toml is not a valid fleet file"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_service_found_twice_is_reported_once() {
    let dir = scratch();
    let root = dir.path();
    new(root, "orders", "orders", "payments", &[], true);
    new(root, "billing", "billing", "ledger", &[], false);
    std::fs::write(
        root.join("fleet.toml"),
        "[[repository]]\npath = \"orders\"\n\n[[repository]]\npath = \"./orders\"\nref = \"HEAD\"\n\n[[repository]]\npath = \"orders/\"\nref = \"HEAD\"\n",
    )
    .unwrap();
    // Overlapping roots, a root given twice, a fleet file listing what a root already has.
    let v = json(&ok(run(
        root,
        &[
            "fleet",
            "status",
            "--root",
            ".",
            "--root",
            "orders",
            "--root",
            "./billing/",
            "--fleet",
            "fleet.toml",
            "--format",
            "json",
        ],
    )));
    let locations: Vec<&str> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["location"].as_str().unwrap())
        .collect();
    assert_eq!(
        locations,
        ["./billing", "./orders", "./orders@HEAD"],
        "the work tree once, the ref once\n{v}"
    );
}

/// A list inside a CSV cell is a JSON array: a reason holding `;` or `,` (or a path holding `;`)
/// reads back exactly as recorded, and an empty list is `[]`.
#[test]
fn fleet_status_csv_lists_are_json_arrays_that_read_back_exactly() {
    let dir = scratch();
    let root = dir.path();
    new(
        root,
        "orders",
        "orders",
        "payments",
        &["--template-version", "1.0.0"],
        false,
    );
    let reason = "mTLS; see ADR-7, \"Auth\"";
    let orders = root.join("orders");
    ok(run(&orders, &["eject", "auth", "--reason", reason]));
    ok(run(
        &orders,
        &["eject", "flags", "--reason", "company flags"],
    ));
    new(root, "billing", "billing", "ledger", &[], false);
    let out = ok(run(
        root,
        &["fleet", "status", "--root", ".", "--format", "csv"],
    ));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let cell = |row: usize, name: &str| -> serde_json::Value {
        serde_json::from_str(&rows[row][column(name)])
            .unwrap_or_else(|e| panic!("{name}: {e}: {:?}", &rows[row]))
    };
    assert_eq!(&rows[1][column("name")], "orders");
    assert_eq!(
        cell(1, "ejected"),
        serde_json::json!([
            {"component": "auth", "date": TODAY, "reason": reason},
            {"component": "flags", "date": TODAY, "reason": "company flags"},
        ])
    );
    assert_eq!(
        cell(1, "pending_required_migrations"),
        serde_json::json!(["service-2.0.0-rename-idempotency-ttl"])
    );
    assert_eq!(
        cell(1, "findings"),
        serde_json::json!(["pending-required-migration", "deprecated"])
    );
    assert_eq!(cell(0, "ejected"), serde_json::json!([]));
    assert_eq!(cell(0, "local_edit_paths"), serde_json::json!([]));
}

/// Per service, `fleet status` shows when it was created and last upgraded (the manifest's
/// history), in every format; `null` / empty when never upgraded.
#[test]
fn fleet_status_shows_created_and_last_upgraded_dates() {
    let dir = scratch();
    let root = dir.path();
    let on = |cwd: &Path, day: &str, args: &[&str]| {
        let out = platform(cwd)
            .env("CARGO_PLATFORM_TODAY", day)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    };
    let new_on = |day: &str, name: &str| {
        on(
            root,
            day,
            &[
                "new",
                name,
                "--yes",
                "--no-git",
                "--set",
                "owner=core",
                "--template-version",
                "1.0.0",
            ],
        )
    };
    new_on("2026-11-23", "orders");
    new_on("2026-11-25", "billing");
    on(
        &root.join("orders"),
        "2026-12-03",
        &["upgrade", "--allow-dirty", "--to", "2.0.0"],
    );
    let out = ok(run(
        root,
        &["fleet", "status", "--root", ".", "--format", "json"],
    ));
    let v = json(&out);
    let dates = |i: usize| {
        let s = &v["services"][i];
        (
            s["name"].clone(),
            s["created"].clone(),
            s["last_upgraded"].clone(),
        )
    };
    assert_eq!(
        dates(0),
        (
            "billing".into(),
            "2026-11-25".into(),
            serde_json::Value::Null
        )
    );
    assert_eq!(
        dates(1),
        ("orders".into(), "2026-11-23".into(), "2026-12-03".into())
    );
    let out = ok(run(root, &["fleet", "status", "--root", "."]));
    let text = stdout(&out);
    assert!(
        text.contains("  history: created 2026-11-23, last upgraded 2026-12-03"),
        "{text}"
    );
    let out = ok(run(
        root,
        &["fleet", "status", "--root", ".", "--format", "csv"],
    ));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}: {header:?}"))
    };
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(
        (&rows[1][at("created")], &rows[1][at("last_upgraded")]),
        ("2026-11-23", "2026-12-03")
    );
    assert_eq!(&rows[0][at("last_upgraded")], "");
}
