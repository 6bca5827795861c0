//! `cargo platform fleet report`: a small fleet built by the tool with pinned dates over months
//! (creations, upgrades, an ejection, local edits, a broken entry); the JSON and Markdown
//! snapshotted; `--as-of`, `--from` fact files (bad ones skipped), `--out`, bad input.

mod common;
#[path = "../benches/fleetgen.rs"]
mod fleetgen;

use std::path::Path;
use std::process::Output;

use common::{git, outcome, platform, scratch, settings};

const TODAY: &str = "2027-04-01";

/// `cargo platform …` in `cwd` on `today`.
fn run_on(cwd: &Path, today: &str, args: &[&str]) -> Output {
    platform(cwd)
        .env("CARGO_PLATFORM_TODAY", today)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) -> Output {
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// `new NAME --path PATH` on `day`, with an owner and no git.
fn new(root: &Path, day: &str, name: &str, path: &str, owner: &str, version: &str) {
    let owner = format!("owner={owner}");
    ok(run_on(
        root,
        day,
        &[
            "new",
            name,
            "--yes",
            "--no-git",
            "--path",
            path,
            "--set",
            &owner,
            "--template-version",
            version,
        ],
    ));
}

fn append(file: &Path, text: &str) {
    let old = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, format!("{old}{text}")).unwrap();
}

/// The fleet, as of `TODAY`:
/// - orders (payments): created 2026-11-23 on 1.0.0, upgraded to 3.1.0 on 2027-01-15 with a
///   team edit to Cargo.toml merged;
/// - worker (payments, in a monorepo): created 2026-11-25 on 1.0.0, upgraded 2027-03-01, then a
///   local edit to Cargo.toml;
/// - billing (ledger): created 2026-12-01 on 1.0.0, `auth` ejected on 2026-12-10, never
///   upgraded (a required migration of 2.0.0 pending: out of policy);
/// - api (ledger): created 2027-02-01 on 3.1.0;
/// - broken: a corrupt platform.toml.
fn fleet(root: &Path) {
    new(root, "2026-11-23", "orders", "orders", "payments", "1.0.0");
    new(
        root,
        "2026-11-25",
        "worker",
        "mono/services/worker",
        "payments",
        "1.0.0",
    );
    new(root, "2026-12-01", "billing", "billing", "ledger", "1.0.0");
    ok(run_on(
        &root.join("billing"),
        "2026-12-10",
        &[
            "eject",
            "auth",
            "--reason",
            "we use the company SSO gateway",
        ],
    ));
    append(&root.join("orders/Cargo.toml"), "\n# a team edit\n");
    ok(run_on(
        &root.join("orders"),
        "2027-01-15",
        &["upgrade", "--to", "3.1.0"],
    ));
    new(root, "2027-02-01", "api", "api", "ledger", "3.1.0");
    ok(run_on(
        &root.join("mono/services/worker"),
        "2027-03-01",
        &["upgrade", "--to", "3.1.0"],
    ));
    append(&root.join("mono/services/worker/Cargo.toml"), "\n# drift\n");
    std::fs::create_dir_all(root.join("broken")).unwrap();
    std::fs::write(root.join("broken/platform.toml"), "[platform\n").unwrap();
}

fn group<'v>(v: &'v serde_json::Value, team: Option<&str>) -> &'v serde_json::Value {
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["team"].as_str() == team)
        .unwrap_or_else(|| panic!("no group {team:?}: {v}"))
}

#[test]
fn fleet_report_aggregates_a_fleet_and_lists_the_broken_entry() {
    let dir = scratch();
    let root = dir.path();
    fleet(root);

    let out = run_on(
        root,
        TODAY,
        &["fleet", "report", "--root", ".", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let v = json(&out);
    assert_eq!(v["schema"], 1);
    assert_eq!(v["command"], "fleet report");
    assert_eq!(v["summary"]["services"], 4, "{v}");
    assert_eq!(v["skipped"][0]["location"], "./broken", "{v}");
    let all = group(&v, None);
    assert_eq!(all["on_newest"], 3, "{v}");
    assert_eq!(all["on_newest_share"], 0.75, "{v}");
    assert_eq!(all["on_supported"], 4, "{v}");
    let two = &all["releases"][1];
    assert_eq!(two["version"], "2.0.0");
    // 2.0.0 (2026-11-22): on or past it — orders on 2027-01-15 (1 of 3), api created past it
    // 2027-02-01 (2 of 4: 50 % after 71 days), worker on 2027-03-01 (3 of 4: 75 % after 99
    // days); billing never.
    assert_eq!(two["reach"]["days_to_50"], 71, "{two}");
    assert_eq!(two["reach"]["days_to_70"], 99, "{two}");
    assert_eq!(two["reach"]["days_to_90"], serde_json::Value::Null, "{two}");
    // Both upgrades went to 3.1.0: their leverage is that release's.
    let three = &all["releases"][4];
    assert_eq!(three["version"], "3.1.0");
    assert_eq!(three["leverage"]["upgrades"], 2, "{three}");
    assert!(
        three["leverage"]["merged"].as_u64().unwrap() >= 1,
        "{three}"
    );
    assert_eq!(two["leverage"]["upgrades"], 0, "{two}");
    assert_eq!(all["ejections"][0]["component"], "auth", "{v}");
    assert_eq!(
        all["ejections"][0]["reasons"][0]["name"],
        "we use the company SSO gateway"
    );
    assert_eq!(all["drift"][0]["name"], "Cargo.toml", "{v}");
    assert_eq!(v["out_of_policy"][0]["service"], "billing", "{v}");
    assert_eq!(group(&v, Some("ledger"))["services"], 2, "{v}");
    settings().bind(|| {
        insta::assert_snapshot!("fleet_report_json", String::from_utf8_lossy(&out.stdout))
    });

    let out = run_on(root, TODAY, &["fleet", "report", "--root", "."]);
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    assert!(out.stderr.is_empty(), "{}", outcome(&out));
    settings().bind(|| {
        insta::assert_snapshot!(
            "fleet_report_markdown",
            String::from_utf8_lossy(&out.stdout)
        )
    });
}

#[test]
fn html_is_one_page_with_the_charts_and_the_reports_numbers() {
    let dir = scratch();
    let root = dir.path();
    fleet(root);
    let out = run_on(
        root,
        TODAY,
        &["fleet", "report", "--root", ".", "--format", "html"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    assert!(out.stderr.is_empty(), "{}", outcome(&out));
    let page = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("<title>Fleet report as of 2027-04-01</title>"));
    for chart in ["adoption", "versions", "lag", "ejections"] {
        assert!(
            page.contains(&format!("<svg id=\"t0-{chart}-chart\" role=\"img\"")),
            "{chart}: {page}"
        );
    }
    // The whole fleet: 3 of 4 on the newest; the reason for ejecting auth; the broken entry.
    assert!(
        page.contains("<td class=\"n\">3</td><td class=\"n\">75.0 %</td>"),
        "{page}"
    );
    assert!(
        page.contains("we use the company SSO gateway (1)"),
        "{page}"
    );
    assert!(page.contains("<td>.&#x2f;broken</td>"), "{page}");
    let again = run_on(
        root,
        TODAY,
        &["fleet", "report", "--root", ".", "--format", "html"],
    );
    assert_eq!(out.stdout, again.stdout, "same fleet, same bytes");
}

#[test]
fn as_of_a_past_date_reports_the_fleet_as_it_stood() {
    let dir = scratch();
    let root = dir.path();
    fleet(root);
    let out = run_on(
        root,
        TODAY,
        &[
            "fleet",
            "report",
            "--root",
            ".",
            "--format",
            "json",
            "--as-of",
            "2027-01-31",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let v = json(&out);
    assert_eq!(v["as_of"], "2027-01-31");
    // api did not exist yet; worker was still on 1.0.0.
    assert_eq!(v["summary"]["services"], 3, "{v}");
    let all = group(&v, None);
    assert_eq!(all["on_newest"], 1, "{v}");
    assert_eq!(all["lag"][1]["releases_behind"], 4, "{v}");
    assert_eq!(all["lag"][1]["services"], 2, "{v}");
    assert_eq!(
        all["releases"][1]["reach"]["days_to_50"],
        serde_json::Value::Null
    );
    assert_eq!(all["releases"][4]["leverage"]["upgrades"], 1, "{v}");

    // Before anything existed: an empty report, still exit 1 for the broken entry.
    let out = run_on(
        root,
        TODAY,
        &[
            "fleet",
            "report",
            "--root",
            ".",
            "--format",
            "json",
            "--as-of",
            "2026-01-01",
        ],
    );
    let v = json(&out);
    assert_eq!(v["summary"]["services"], 0, "{v}");
    assert_eq!(v["groups"], serde_json::json!([]), "{v}");
}

#[test]
fn from_fact_files_gives_the_same_aggregates_and_skips_bad_files() {
    let dir = scratch();
    let root = dir.path();
    fleet(root);
    let facts = root.join("facts");
    std::fs::create_dir(&facts).unwrap();
    for (name, path) in [
        ("orders", "orders"),
        ("worker", "mono/services/worker"),
        ("billing", "billing"),
        ("api", "api"),
    ] {
        let out = run_on(&root.join(path), TODAY, &["status", "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
        std::fs::write(facts.join(format!("{name}.json")), &out.stdout).unwrap();
    }
    let check = ok(run_on(
        &root.join("api"),
        TODAY,
        &["check", "--format", "json"],
    ));
    std::fs::write(facts.join("check.json"), &check.stdout).unwrap();
    std::fs::write(facts.join("junk.json"), "not json").unwrap();
    std::fs::write(facts.join("README.txt"), "ignored: not *.json").unwrap();

    let out = run_on(
        root,
        TODAY,
        &["fleet", "report", "--from", "facts", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let from = json(&out);
    let skipped = from["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{from}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("the report of `check`, not of `status`"),
        "{from}"
    );
    assert!(
        skipped[1]["reason"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{from}"
    );
    let out = run_on(
        root,
        TODAY,
        &["fleet", "report", "--root", ".", "--format", "json"],
    );
    let roots = json(&out);
    assert_eq!(from["groups"], roots["groups"]);
    assert_eq!(from["summary"]["services"], roots["summary"]["services"]);

    let missing = run_on(root, TODAY, &["fleet", "report", "--from", "nowhere"]);
    assert_eq!(missing.status.code(), Some(1), "{}", outcome(&missing));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("error:") && err.contains("nowhere"), "{err}");
    assert!(missing.stdout.is_empty());
}

/// A service in both --from and --root (its CI published a fact file, and its clone is under
/// the root) counts once: the same template, name and creation day is the same service, and its
/// latest observation is kept (on a tie, the one read from the root).
#[test]
fn a_service_in_both_from_and_root_counts_once() {
    let dir = scratch();
    let root = dir.path();
    fleet(root);
    let facts = dir.path().join("facts");
    std::fs::create_dir(&facts).unwrap();
    // orders published a fact file before its upgrade (still on 1.0.0 then), and again today.
    let old = run_on(
        &root.join("orders"),
        "2027-01-10",
        &["status", "--format", "json"],
    );
    assert_eq!(old.status.code(), Some(0), "{}", outcome(&old));
    std::fs::write(facts.join("orders-old.json"), &old.stdout).unwrap();
    let now = run_on(&root.join("orders"), TODAY, &["status", "--format", "json"]);
    std::fs::write(facts.join("orders.json"), &now.stdout).unwrap();
    let out = run_on(
        root,
        TODAY,
        &[
            "fleet", "report", "--from", "facts", "--root", ".", "--format", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let both = json(&out);
    let out = run_on(
        root,
        TODAY,
        &["fleet", "report", "--root", ".", "--format", "json"],
    );
    let roots = json(&out);
    assert_eq!(both["summary"], roots["summary"], "{both}");
    assert_eq!(both["groups"], roots["groups"], "{both}");
}

#[test]
fn out_writes_the_report_file_and_nothing_on_stdout() {
    let dir = scratch();
    let root = dir.path();
    fleet(root);
    for (format, file) in [
        ("html", "fleet-report.html"),
        ("markdown", "fleet-report.md"),
        ("json", "fleet-report.json"),
        ("openmetrics", "fleet-report.prom"),
    ] {
        let out = run_on(
            root,
            TODAY,
            &[
                "fleet", "report", "--root", ".", "--format", format, "--out", "site",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
        assert!(out.stdout.is_empty(), "{}", outcome(&out));
        let text = std::fs::read_to_string(root.join("site").join(file)).unwrap();
        let stdout = run_on(
            root,
            TODAY,
            &["fleet", "report", "--root", ".", "--format", format],
        );
        assert_eq!(text, String::from_utf8_lossy(&stdout.stdout), "{format}");
    }
    let names: Vec<_> = std::fs::read_dir(root.join("site"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    // --format openmetrics also wrote the Grafana dashboard for its series.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("site/fleet-dashboard.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dashboard["title"], "Platform fleet");
    assert_eq!(names.len(), 5, "{names:?}");
}

#[test]
fn bad_flags_are_usage_errors_and_the_future_is_refused() {
    let dir = scratch();
    for (args, code, needle) in [
        (&["fleet", "report", "--format", "pdf"][..], 2, "pdf"),
        (
            &["fleet", "report", "--as-of", "2027-13-01"],
            2,
            "not a date",
        ),
        (
            &["fleet", "report", "--as-of", "2027-04-02"],
            1,
            "after today",
        ),
    ] {
        let out = run_on(dir.path(), TODAY, args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", outcome(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// The OpenMetrics output is accepted by `promtool check metrics` (installed by
/// .ci/e2e-setup; run by .ci/run).
#[test]
#[ignore = "needs promtool (.ci/e2e-setup installs it); run by .ci/run"]
fn openmetrics_passes_promtool() {
    let dir = scratch();
    let root = dir.path();
    fleet(root);
    let out = run_on(
        root,
        TODAY,
        &["fleet", "report", "--root", ".", "--format", "openmetrics"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("platform_fleet_services{template=\"service\"} 4\n")
            && text.contains("platform_fleet_services{template=\"service\",team=\"ledger\"} 2\n"),
        "the whole template's series have no team label, a team's have its name: {text}"
    );
    assert!(
        text.contains("platform_fleet_ejections{template=\"service\",component=\"auth\"} 1\n"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (installed by .ci/e2e-setup)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// Every expression of the Grafana dashboard that `--format openmetrics --out` writes parses as
/// PromQL: wrapped as recording rules, `promtool check rules` accepts them.
#[test]
#[ignore = "needs promtool (.ci/e2e-setup installs it); run by .ci/run"]
fn dashboard_expressions_pass_promtool() {
    let dir = scratch();
    let root = dir.path();
    fleet(root);
    let out = run_on(
        root,
        TODAY,
        &[
            "fleet",
            "report",
            "--root",
            ".",
            "--format",
            "openmetrics",
            "--out",
            "metrics",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("metrics/fleet-dashboard.json")).unwrap(),
    )
    .unwrap();
    let exprs = cargo_platform::report::fleet_dashboard::expressions(&dashboard);
    assert!(exprs.len() >= 6, "{exprs:?}");
    let rules: Vec<serde_json::Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, (_, expr))| serde_json::json!({"record": format!("fleet_dashboard:panel_expr_{i}"), "expr": expr}))
        .collect();
    // JSON is YAML: promtool reads it as a rules file.
    let file = root.join("dashboard-rules.yml");
    std::fs::write(
        &file,
        serde_json::json!({"groups": [{"name": "fleet-dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();
    let checked = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool (installed by .ci/e2e-setup)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(checked.status.success(), "promtool: {said}\n{exprs:#?}");
    assert!(
        said.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{said}"
    );

    // The check can fail: an expression that is not PromQL is refused.
    std::fs::write(
        &file,
        serde_json::json!({"groups": [{"name": "bad", "rules": [{"record": "bad:expr", "expr": "platform_fleet_services{template=~}"}]}]}).to_string(),
    )
    .unwrap();
    let refused = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

/// Commits everything in `root` with author and committer date `date` (noon UTC).
fn commit_on(root: &Path, date: &str, message: &str) {
    common::git(root, &["add", "-A"]);
    let when = format!("{date}T12:00:00+00:00");
    let home = common::home_with_identity();
    let out = std::process::Command::new("git")
        .args(["commit", "-q", "-m", message])
        .current_dir(root)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_AUTHOR_DATE", &when)
        .env("GIT_COMMITTER_DATE", &when)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The manifest at `root` rewritten as an older tool (schema 1) wrote it: no history.
fn as_schema_1(root: &Path) {
    let path = root.join("platform.toml");
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    doc.remove("history");
    doc["platform"]["schema"] = toml_edit::value(1);
    std::fs::write(&path, doc.to_string()).unwrap();
}

/// A service whose platform.toml is schema 1 (an older tool's) in git, created and upgraded
/// months apart: its history is recovered from git, and its upgrade's file counts, which git
/// cannot know, are counted apart.
#[test]
fn a_history_recovered_from_git_counts_for_reach_with_unknown_file_counts() {
    let dir = scratch();
    let root = dir.path();
    new(root, "2026-11-24", "legacy", "legacy", "ops", "1.0.0");
    let svc = root.join("legacy");
    common::git(&svc, &["init", "-q"]);
    as_schema_1(&svc);
    commit_on(&svc, "2026-11-24", "new service");
    ok(run_on(&svc, "2027-02-15", &["upgrade", "--to", "2.0.0"]));
    as_schema_1(&svc);
    commit_on(&svc, "2027-02-15", "upgrade to 2.0.0");

    let out = ok(run_on(
        root,
        TODAY,
        &["fleet", "report", "--root", ".", "--format", "json"],
    ));
    let v = json(&out);
    let all = group(&v, None);
    let two = &all["releases"][1];
    // 2026-11-22 to 2027-02-15: 85 days.
    assert_eq!(two["reach"]["days_to_50"], 85, "{v}");
    assert_eq!(two["leverage"]["upgrades"], 1, "{v}");
    assert_eq!(two["leverage"]["unknown"], 1, "{v}");
    assert_eq!(two["leverage"]["updated"], 0, "{v}");
    // As of a day before the upgrade, it was on 1.0.0.
    let out = ok(run_on(
        root,
        TODAY,
        &[
            "fleet",
            "report",
            "--root",
            ".",
            "--format",
            "json",
            "--as-of",
            "2027-02-14",
        ],
    ));
    let v = json(&out);
    assert_eq!(group(&v, Some("ops"))["on_newest"], 0, "{v}");
}

/// Debian's chromium (installed by .ci/e2e-setup); `CHROMIUM` overrides it.
fn chromium_binary() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string())
}

/// Loads `page` in headless chromium with a fresh profile and no network, its console logged to
/// stderr, and returns (the DOM after load, the console's messages).
fn load_in_chromium(page: &Path) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chromium_binary())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=1",
            "--window-size=1200,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (installed by .ci/e2e-setup; CHROMIUM=path overrides /usr/bin/chromium)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        console_messages(&String::from_utf8_lossy(&out.stderr)),
    )
}

/// The lines of chromium's log that are the page's console messages or uncaught errors.
fn console_messages(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("CONSOLE(") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect()
}

/// Gathers, in the page, every table's cells and every chart's size and coloured shapes, into a
/// `<pre id="probe">` (JSON, with `<`, `>`, `&` and no-break spaces as `\u` escapes so the
/// dumped DOM holds it verbatim).
const PROBE: &str = r#"<script>
(() => {
  const out = {summary: {}, tables: [], charts: []};
  for (const s of document.querySelectorAll('[data-summary]')) out.summary[s.dataset.summary] = s.textContent;
  for (const t of document.querySelectorAll('table[data-table]')) {
    const section = t.closest('section[data-template]');
    out.tables.push({
      table: t.dataset.table,
      template: section ? section.dataset.template : null,
      head: [...t.querySelectorAll('thead th')].map(c => c.textContent),
      rows: [...t.querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.textContent)),
    });
  }
  const plain = ['#000000', '#FFFFFF', 'none', null];
  for (const svg of document.querySelectorAll('svg.chart')) {
    const box = svg.getBoundingClientRect();
    const shapes = [...svg.querySelectorAll('rect, circle, polyline')]
      .filter(e => !plain.includes(e.getAttribute('fill')) || !plain.includes(e.getAttribute('stroke')))
      .map(e => { const b = e.getBBox(); return {tag: e.tagName, width: b.width, height: b.height}; });
    const section = svg.closest('section[data-template]');
    out.charts.push({id: svg.id, template: section.dataset.template, width: box.width, height: box.height,
      title: svg.querySelector('title').textContent, shapes});
  }
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out).replace(/[<>&\u00a0]/g, c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  document.body.appendChild(pre);
})();
</script>"#;

/// The probe's findings in a DOM chromium dumped.
fn probed(dom: &str) -> serde_json::Value {
    let start = dom.find("<pre id=\"probe\">").expect("the probe ran") + "<pre id=\"probe\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    serde_json::from_str(&dom[start..end]).unwrap()
}

/// `0.75` as the page shows it: `75.0 %`.
fn shown_percent(share: &serde_json::Value) -> String {
    format!("{:.1} %", share.as_f64().unwrap() * 100.0)
}

fn shown(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// The console check reports what a broken page logs (so a clean page's silence means something).
#[test]
#[ignore = "needs chromium (.ci/e2e-setup installs it); run by .ci/run"]
fn the_console_check_catches_a_page_with_errors() {
    let dir = scratch();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>x</p><script>console.error('deliberate'); notAFunction();</script></body></html>",
    )
    .unwrap();
    let (_, console) = load_in_chromium(&page);
    assert!(
        console.iter().any(|l| l.contains("deliberate")),
        "{console:?}"
    );
    assert!(
        console
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError")),
        "{console:?}"
    );
}

/// The HTML page in a real browser: it loads with no console message, every chart has a size and
/// the shapes its numbers call for, and every number in its tables equals the JSON report's.
#[test]
#[ignore = "needs chromium (.ci/e2e-setup installs it); run by .ci/run"]
fn html_page_in_chromium_shows_the_json_reports_numbers() {
    let dir = scratch();
    let root = dir.path();
    fleet(root);
    // A reason that is markup: shown as text, never run.
    ok(run_on(
        &root.join("api"),
        TODAY,
        &[
            "eject",
            "flags",
            "--reason",
            "<script>console.error('injected')</script> & <b>more</b>",
        ],
    ));
    // A campaign in progress: `billing` (1.0.0) has an open campaign branch, `api` is on its
    // target; both in git repositories.
    for repo in ["billing", "api"] {
        let dir = root.join(repo);
        git(&dir, &["init", "-q", "-b", "main"]);
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-q", "-m", "the service"]);
    }
    let billing = root.join("billing");
    git(
        &billing,
        &["switch", "-q", "-c", "platform/upgrade-service-3.1.0"],
    );
    git(
        &billing,
        &["commit", "-q", "--allow-empty", "-m", "the upgrade"],
    );
    git(&billing, &["switch", "-q", "main"]);
    let html = run_on(
        root,
        TODAY,
        &["fleet", "report", "--root", ".", "--format", "html"],
    );
    assert_eq!(html.status.code(), Some(1), "{}", outcome(&html));
    let json = json(&run_on(
        root,
        TODAY,
        &["fleet", "report", "--root", ".", "--format", "json"],
    ));
    let page = root.join("fleet-report.html");
    std::fs::write(&page, &html.stdout).unwrap();

    let (dom, console) = load_in_chromium(&page);
    assert!(console.is_empty(), "console: {console:#?}");
    assert!(dom.contains("Fleet report as of 2027-04-01"), "{dom}");

    let text = String::from_utf8(html.stdout).unwrap();
    let probe_page = root.join("probe.html");
    std::fs::write(
        &probe_page,
        text.replace("</body>", &format!("{PROBE}\n</body>")),
    )
    .unwrap();
    let (dom, console) = load_in_chromium(&probe_page);
    assert!(console.is_empty(), "console: {console:#?}");
    let p = probed(&dom);

    let summary = &json["summary"];
    for key in ["services", "out_of_policy", "skipped"] {
        assert_eq!(p["summary"][key], shown(&summary[key]), "summary {key}");
    }

    let mut checked = std::collections::BTreeSet::new();
    let table = |template: Option<&str>, name: &str| -> Vec<Vec<String>> {
        let t = p["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["template"].as_str() == template && t["table"] == name)
            .unwrap_or_else(|| panic!("no table {name} of {template:?}: {p}"));
        serde_json::from_value(t["rows"].clone()).unwrap()
    };
    let groups = json["groups"].as_array().unwrap();
    let overview: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                shown(&g["template"]),
                g["team"].as_str().unwrap_or("all teams").to_string(),
                shown(&g["services"]),
                shown(&g["newest"]),
                shown(&g["on_newest"]),
                shown_percent(&g["on_newest_share"]),
                shown(&g["on_supported"]),
                shown_percent(&g["on_supported_share"]),
                shown(&g["out_of_policy"]),
            ]
        })
        .collect();
    assert_eq!(table(None, "overview"), overview);
    checked.insert((None, "overview"));

    for (i, all) in groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g["team"].is_null())
    {
        let template = all["template"].as_str().unwrap();
        let teams: Vec<&serde_json::Value> = groups[i + 1..]
            .iter()
            .take_while(|g| !g["team"].is_null())
            .collect();
        let rows =
            |key: &str, row: &dyn Fn(&serde_json::Value) -> Vec<String>| -> Vec<Vec<String>> {
                all[key].as_array().unwrap().iter().map(row).collect()
            };
        let expected: [(&str, Vec<Vec<String>>); 6] = [
            (
                "adoption",
                rows("adoption", &|a| {
                    vec![
                        shown(&a["date"]),
                        shown(&a["newest"]),
                        shown(&a["services"]),
                        shown(&a["on_newest"]),
                        shown_percent(&a["on_newest_share"]),
                        shown(&a["on_supported"]),
                        shown_percent(&a["on_supported_share"]),
                    ]
                }),
            ),
            (
                "versions",
                rows("releases", &|r| {
                    let mut row = vec![
                        shown(&r["version"]),
                        shown(&r["date"]),
                        shown(&r["services_on"]),
                    ];
                    for t in &teams {
                        let on = t["releases"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|x| x["version"] == r["version"])
                            .map_or("0".to_string(), |x| shown(&x["services_on"]));
                        row.push(on);
                    }
                    row
                }),
            ),
            (
                "lag",
                rows("lag", &|l| {
                    vec![shown(&l["releases_behind"]), shown(&l["services"])]
                }),
            ),
            (
                "ejections",
                rows("ejections", &|e| {
                    let reasons: Vec<String> = e["reasons"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| {
                            let name = r["name"].as_str().unwrap();
                            let name = if name.is_empty() {
                                "no reason given"
                            } else {
                                name
                            };
                            format!("{name} ({})", r["services"])
                        })
                        .collect();
                    vec![
                        shown(&e["component"]),
                        shown(&e["services"]),
                        reasons.join("; "),
                    ]
                }),
            ),
            (
                "releases",
                rows("releases", &|r| {
                    let days = |d: &serde_json::Value| {
                        if d.is_null() {
                            "not reached".to_string()
                        } else {
                            shown(d)
                        }
                    };
                    let l = &r["leverage"];
                    vec![
                        shown(&r["version"]),
                        shown(&r["date"]),
                        shown(&r["services_on_or_past"]),
                        days(&r["reach"]["days_to_50"]),
                        days(&r["reach"]["days_to_70"]),
                        days(&r["reach"]["days_to_90"]),
                        shown(&l["upgrades"]),
                        shown(&l["updated"]),
                        shown(&l["merged"]),
                        shown(&l["conflicts"]),
                        shown(&l["unknown"]),
                    ]
                }),
            ),
            (
                "drift",
                rows("drift", &|d| vec![shown(&d["name"]), shown(&d["services"])]),
            ),
        ];
        for (name, rows) in expected {
            assert!(!rows.is_empty(), "the fixture fleet has {name} rows");
            assert_eq!(table(Some(template), name), rows, "{template} {name}");
            checked.insert((Some(template.to_string()), name));
        }

        // Every chart has a size and the coloured shapes its numbers call for.
        let chart = |name: &str| -> &serde_json::Value {
            p["charts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| {
                    c["template"] == template
                        && c["id"]
                            .as_str()
                            .unwrap()
                            .ends_with(&format!("-{name}-chart"))
                })
                .unwrap_or_else(|| panic!("no {name} chart: {p}"))
        };
        let shapes = |c: &serde_json::Value, tag: &str| -> Vec<(f64, f64)> {
            c["shapes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["tag"] == tag)
                .map(|s| (s["width"].as_f64().unwrap(), s["height"].as_f64().unwrap()))
                .collect()
        };
        let count = |key: &str, field: &str| -> usize {
            all[key]
                .as_array()
                .unwrap()
                .iter()
                .filter(|x| x[field].as_u64().unwrap() > 0)
                .count()
        };
        for name in ["adoption", "versions", "lag", "ejections"] {
            let c = chart(name);
            assert!(
                c["width"].as_f64().unwrap() > 100.0 && c["height"].as_f64().unwrap() > 100.0,
                "{name} chart has no size: {c}"
            );
            assert!(!c["title"].as_str().unwrap().is_empty(), "{c}");
        }
        let adoption = chart("adoption");
        let points = all["adoption"].as_array().unwrap().len();
        let dots = shapes(adoption, "circle");
        assert_eq!(
            dots.len(),
            2 * points,
            "a dot per point and series: {adoption}"
        );
        assert!(dots.iter().all(|(w, h)| *w > 0.0 && *h > 0.0), "{adoption}");
        let lines = shapes(adoption, "polyline");
        assert_eq!(lines.len(), 2, "{adoption}");
        assert!(lines.iter().all(|(w, _)| *w > 0.0), "{adoption}");
        let bars_on = |name: &str| -> usize {
            let bars = shapes(chart(name), "rect");
            assert!(
                bars.iter().all(|(w, h)| *w > 0.0 && *h > 0.0),
                "{name}: {bars:?}"
            );
            bars.len()
        };
        let team_cells: usize = teams
            .iter()
            .map(|t| {
                t["releases"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| r["services_on"].as_u64().unwrap() > 0)
                    .count()
            })
            .sum();
        assert_eq!(
            bars_on("versions"),
            team_cells,
            "a bar per team and release with services"
        );
        assert_eq!(bars_on("lag"), count("lag", "services"));
        assert_eq!(bars_on("ejections"), count("ejections", "services"));
    }

    let out_of_policy: Vec<Vec<String>> = json["out_of_policy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let reasons: Vec<&str> = o["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            vec![
                o["team"].as_str().unwrap_or("(none)").to_string(),
                shown(&o["service"]),
                shown(&o["template"]),
                shown(&o["version"]),
                reasons.join("; "),
            ]
        })
        .collect();
    assert!(!out_of_policy.is_empty());
    assert_eq!(table(None, "out_of_policy"), out_of_policy);
    checked.insert((None, "out_of_policy"));
    let skipped: Vec<Vec<String>> = json["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| vec![shown(&k["location"]), shown(&k["reason"])])
        .collect();
    assert!(!skipped.is_empty());
    assert_eq!(table(None, "skipped"), skipped);
    checked.insert((None, "skipped"));
    let campaigns: Vec<Vec<String>> = json["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            ["template", "to", "open", "on_target", "to_do"]
                .iter()
                .map(|k| shown(&c[k]))
                .collect()
        })
        .collect();
    assert_eq!(campaigns, [["service", "3.1.0", "1", "1", "0"]], "{json}");
    assert_eq!(table(None, "campaigns"), campaigns);
    checked.insert((None, "campaigns"));

    // No table of the page went unchecked.
    let shown_tables: std::collections::BTreeSet<(Option<String>, String)> = p["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["template"].as_str().map(str::to_string),
                t["table"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let checked: std::collections::BTreeSet<(Option<String>, String)> = checked
        .into_iter()
        .map(|(t, n)| (t.map(|t: String| t), n.to_string()))
        .collect();
    assert_eq!(shown_tables, checked);
    // The markup in the reason is text on the page, and ran nothing (the console is empty).
    let ejections = table(Some("service"), "ejections");
    assert!(
        ejections
            .iter()
            .any(|r| r[2].contains("<script>console.error('injected')</script> & <b>more</b> (1)")),
        "{ejections:?}"
    );
}

/// The same schema-1 service, in a monorepo read from a git ref (a bare mirror, no checkout):
/// its history is recovered from that ref's history of its platform.toml, as from a work tree's.
#[test]
fn a_history_is_recovered_from_the_ref_read_in_a_bare_mirror() {
    let dir = scratch();
    let root = dir.path();
    let repo = root.join("mono");
    std::fs::create_dir(&repo).unwrap();
    common::git(&repo, &["init", "-q"]);
    new(
        root,
        "2026-11-24",
        "legacy",
        "mono/services/legacy",
        "ops",
        "1.0.0",
    );
    let svc = repo.join("services/legacy");
    as_schema_1(&svc);
    commit_on(&repo, "2026-11-24", "new service");
    ok(run_on(&svc, "2027-02-15", &["upgrade", "--to", "2.0.0"]));
    as_schema_1(&svc);
    commit_on(&repo, "2027-02-15", "upgrade to 2.0.0");
    common::git(root, &["clone", "-q", "--bare", "mono", "mono.git"]);

    for args in [
        ["--root", "mono", "--ref", "HEAD"],
        ["--root", "mono.git", "--ref", "HEAD"],
    ] {
        let mut all_args = vec!["fleet", "report", "--format", "json"];
        all_args.extend(args);
        let out = ok(run_on(root, TODAY, &all_args));
        let v = json(&out);
        let two = &group(&v, None)["releases"][1];
        assert_eq!(two["reach"]["days_to_50"], 85, "{args:?}: {v}");
        assert_eq!(two["leverage"]["upgrades"], 1, "{args:?}: {v}");
        assert_eq!(two["leverage"]["unknown"], 1, "{args:?}: {v}");
    }
}

/// A generated fleet (benches/fleetgen.rs, seed 2): 14 services over every release, with
/// histories from 2026-11-22 to 2027-03-31, monorepos, ejections, local edits, five teams, and
/// the five broken entries. The report agrees with what the generator made, and its JSON and
/// Markdown are snapshotted.
#[test]
fn a_generated_fleet_is_reported_as_generated() {
    let dir = scratch();
    let out_dir = dir.path().join("fleet");
    let fleet = fleetgen::generate(&fleetgen::Options {
        bin: env!("CARGO_BIN_EXE_cargo-platform").into(),
        out: out_dir.clone(),
        services: 14,
        seed: 2,
        today: TODAY.parse().unwrap(),
        git: fleetgen::GitShare::Some,
        broken: true,
        jobs: 2,
    })
    .unwrap();
    let args = ["fleet", "report", "--root", "trees", "--format", "json"];
    let out = run_on(&out_dir, TODAY, &args);
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let v = json(&out);
    assert_eq!(v["summary"]["services"], fleet.services.len(), "{v}");
    let skipped: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["location"].as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        [
            "trees/broken-corrupt",
            "trees/broken-future-schema",
            "trees/broken-symlink/platform.toml",
            "trees/broken-unknown-template",
            "trees/broken-unreadable",
        ]
    );
    let all = group(&v, None);
    let newest = "3.1.0";
    let on_newest = fleet
        .services
        .iter()
        .filter(|s| s.version == newest)
        .count();
    assert_eq!(all["on_newest"], on_newest, "{v}");
    assert!(on_newest > 0 && on_newest < fleet.services.len(), "varied");
    for team in ["payments", "ledger", "search", "identity", "growth"] {
        let mine = fleet.services.iter().filter(|s| s.team == team).count();
        if mine > 0 {
            assert_eq!(group(&v, Some(team))["services"], mine, "{team}: {v}");
        }
    }
    let ejected: usize = fleet.services.iter().map(|s| s.ejected.len()).sum();
    let reported: u64 = all["ejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["services"].as_u64().unwrap())
        .sum();
    assert_eq!(reported as usize, ejected, "{v}");
    assert!(ejected > 0, "the seed makes ejections");
    let upgrades: usize = fleet.services.iter().map(|s| s.upgrades.len()).sum();
    let leveraged: u64 = all["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["leverage"]["upgrades"].as_u64().unwrap())
        .sum();
    assert_eq!(leveraged as usize, upgrades, "{v}");
    settings().bind(|| {
        insta::assert_snapshot!(
            "fleet_report_generated_json",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    let out = run_on(&out_dir, TODAY, &["fleet", "report", "--root", "trees"]);
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    settings().bind(|| {
        insta::assert_snapshot!(
            "fleet_report_generated_markdown",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    // The git repositories' mirrors, read at `main` through the generated fleet file: the same
    // services as their work trees, and the missing ref listed.
    let args = [
        "fleet",
        "status",
        "--fleet",
        "fleet.toml",
        "--format",
        "json",
    ];
    let out = run_on(&out_dir, TODAY, &args);
    assert_eq!(out.status.code(), Some(1), "{}", outcome(&out));
    let v = json(&out);
    let mut in_git: Vec<(String, String)> = fleet
        .services
        .iter()
        .filter(|s| s.in_git)
        .map(|s| (s.name.clone(), s.version.clone()))
        .collect();
    in_git.sort();
    let mut read: Vec<(String, String)> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["ref"], "main", "{s}");
            (
                s["name"].as_str().unwrap().to_string(),
                s["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    read.sort();
    assert!(!in_git.is_empty());
    assert_eq!(read, in_git, "{v}");
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{v}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no ref `no-such-branch`"),
        "{v}"
    );
}
