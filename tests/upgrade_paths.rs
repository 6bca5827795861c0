//! The upgrade-path harness for template authors: every release of `service` still in support
//! (its `[support]` window as of today; `CARGO_PLATFORM_TODAY` honoured) that is older than the
//! newest, times every choice of every choice/bool question, is rendered with `new`, given one
//! fixed set of team edits, committed, upgraded to the newest release with `upgrade --commit`,
//! and then must:
//!
//! - upgrade with exit 0 and no conflict, everything committed, a second upgrade a no-op;
//! - hold exactly what a fresh `new` of the newest release gives, except what the team did:
//!   their line near a changed hunk and their line far from any change in a managed file the
//!   release changes (both kept, the platform's change applied around them), their dependency in
//!   Cargo.toml, their config value under the key the newest release uses (in the shipped
//!   config file and in a profile of their own), their seeded code, a file they deleted
//!   (still deleted); seeded files stay as the team had them;
//! - have `status` report as locally edited exactly the platform files the team edited;
//! - have recorded every migration on the way exactly once, applied;
//! - `cargo build` and `cargo test` with zero warnings, in one shared target directory.
//!
//! Slow (one build and test of a generated service per cell), so `#[ignore]`d; `.ci/run` runs
//! it in the end-to-end stage:
//! `cargo test --test upgrade_paths -- --include-ignored --nocapture`. Every cell's service has
//! the same name and builds in `$CARGO_PLATFORM_E2E_TARGET` (default `target/e2e`), so only the
//! service's own crate is rebuilt from one cell to the next. With `CARGO_PLATFORM_TEMPLATE_DIR`
//! set, it runs against that template tree: try a release's upgrade paths before it ships.

mod common;

#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;
use std::time::Instant;

use cargo_platform::policy::{self, SupportState};
use cargo_platform::template::Catalogue;
use cargo_platform::template::release::QuestionKind;
use semver::Version;
use serde_json::Value;

const TEMPLATE: &str = "service";
const NAME: &str = "upgrade-path-svc";
/// The team's comment near the release's change, and far from it, in a managed file.
const NEAR: &str = "// team: near the platform's change (upgrade-path harness)";
const FAR: &str = "// team: far from the platform's change (upgrade-path harness)";
/// The managed file the team deletes (they deploy with their own chart).
const DELETED: &str = "deploy/k8s/service.yaml";
/// The team's own dependency, with a comment.
const TEAM_DEPENDENCY: &str = "bytes = \"1\" # team: ping body\n";
/// The team's value for the idempotency record lifetime (the template's default is a day).
const TEAM_TTL: i64 = 3600;
const STAGING: &str = "config/staging.toml";

/// One service to render, edit and upgrade.
#[derive(Debug, Clone)]
struct Cell {
    from: Version,
    answers: Vec<(String, String)>,
}

impl Cell {
    fn label(&self) -> String {
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{} [{}]", self.from, answers.join(" "))
    }
}

/// The newest release and the cells: per release in support older than the newest, enough
/// cells that every choice of every choice/bool question is taken at least once.
///
/// The covering: a release whose choice/bool questions have n₁ … nₖ choices gets max(nᵢ) cells;
/// cell j answers question i with its choice j mod nᵢ. Every choice of every question is rendered,
/// upgraded, built and tested at least once, in max(nᵢ) cells rather than the n₁ × … × nₖ of the
/// full product (which grows with every question a release adds, and costs one build each).
/// Interactions between two questions' choices are not covered: the template's questions are
/// independent axes (each switches its own files and dependencies), which its render snapshots
/// check for every release. String and int questions keep their defaults (`owner`, which has
/// none, is `e2e`).
fn cells() -> (Version, Vec<Cell>) {
    cells_on(policy::today().expect("today (CARGO_PLATFORM_TODAY, when set, is a date)"))
}

fn cells_on(today: jiff::civil::Date) -> (Version, Vec<Cell>) {
    let catalogue = Catalogue::load().expect("the templates load");
    let template = catalogue.get(TEMPLATE).expect("the service template");
    let newest = template.newest().version.clone();
    let mut cells = Vec::new();
    for release in template.releases.iter().filter(|r| r.version < newest) {
        let window = policy::support_window(template, &release.version, today).expect("window");
        if window.state == SupportState::EndOfSupport {
            eprintln!(
                "skipped {}: out of support since {:?} (today {today})",
                release.version, window.end_of_support
            );
            continue;
        }
        let spec = template.spec(&release.version).expect("spec");
        let axes: Vec<(String, Vec<String>)> = spec
            .questions
            .iter()
            .filter_map(|q| match q.kind {
                QuestionKind::Choice => {
                    Some((q.key.clone(), q.choices.clone().unwrap_or_default()))
                }
                QuestionKind::Bool => Some((q.key.clone(), vec!["true".into(), "false".into()])),
                QuestionKind::String | QuestionKind::Int => None,
            })
            .filter(|(_, choices)| !choices.is_empty())
            .collect();
        let width = axes.iter().map(|(_, c)| c.len()).max().unwrap_or(1);
        for j in 0..width {
            cells.push(Cell {
                from: release.version.clone(),
                answers: axes
                    .iter()
                    .map(|(key, choices)| (key.clone(), choices[j % choices.len()].clone()))
                    .collect(),
            });
        }
    }
    (newest, cells)
}

/// The tool, as cargo runs it, in `dir`.
fn platform(dir: &Path, args: &[&str]) -> Output {
    common::platform(dir)
        .args(args)
        .output()
        .expect("run cargo-platform")
}

fn read(dir: &Path, rel: &str) -> Result<String, String> {
    std::fs::read_to_string(dir.join(rel)).map_err(|e| format!("read {rel}: {e}"))
}

fn write(dir: &Path, rel: &str, text: &str) -> Result<(), String> {
    std::fs::write(dir.join(rel), text).map_err(|e| format!("write {rel}: {e}"))
}

/// Replaces exactly one occurrence of `from` in `rel`.
fn edit(dir: &Path, rel: &str, from: &str, to: &str) -> Result<(), String> {
    let text = read(dir, rel)?;
    if text.matches(from).count() != 1 {
        return Err(format!("{rel}: expected exactly one `{from}` to edit"));
    }
    write(dir, rel, &text.replacen(from, to, 1))
}

fn toml_of(text: &str, what: &str) -> Result<toml::Table, String> {
    toml::from_str(text).map_err(|e| format!("{what} is not TOML: {e}"))
}

/// `[files."<path>"] mode` of a service's platform.toml.
fn modes(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let manifest = toml_of(&read(dir, "platform.toml")?, "platform.toml")?;
    let files = manifest
        .get("files")
        .and_then(|f| f.as_table())
        .ok_or("platform.toml has no [files]")?;
    Ok(files
        .iter()
        .filter_map(|(path, meta)| Some((path.clone(), meta.get("mode")?.as_str()?.to_owned())))
        .collect())
}

/// Where a diff changes its base: `(line, deletes)` — a deleted base line, or an insertion
/// before base line `line`.
type Changes = Vec<(usize, bool)>;

/// Where the base → theirs diff changes the base.
fn changes(base: &str, theirs: &str) -> Changes {
    let patch = diffy::create_patch(base, theirs);
    let mut out = Vec::new();
    for hunk in patch.hunks() {
        let mut line = hunk.old_range().start().saturating_sub(1);
        for l in hunk.lines() {
            match l {
                diffy::Line::Context(_) => line += 1,
                diffy::Line::Delete(_) => {
                    out.push((line, true));
                    line += 1;
                }
                diffy::Line::Insert(_) => out.push((line, false)),
            }
        }
    }
    out
}

/// Unchanged base lines between an insertion before base line `at` and the nearest change.
fn gap(at: usize, changes: &[(usize, bool)]) -> usize {
    changes
        .iter()
        .map(|&(line, deletes)| {
            if at <= line {
                line - at
            } else if deletes {
                at - line - 1
            } else {
                at - line
            }
        })
        .min()
        .unwrap_or(usize::MAX)
}

/// Lines before which a `//` comment line is surely not inside an expression or a literal.
fn item_start(line: &str) -> bool {
    const STARTS: &[&str] = &[
        "fn ", "pub ", "use ", "#[", "///", "impl", "mod ", "async fn", "const ", "static ",
        "struct ", "enum ", "type ", "trait ",
    ];
    let t = line.trim_start();
    STARTS.iter().any(|s| t.starts_with(s))
}

/// Inserts `comment` (indented like the line) before each of `at` (base line indices).
fn insert_comments(text: &str, at: &[(usize, &str)]) -> String {
    let mut out = String::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        for (_, comment) in at.iter().filter(|(l, _)| *l == i) {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}{comment}\n"));
        }
        out.push_str(line);
    }
    out
}

/// What the team did to the service, for the checks after the upgrade.
#[derive(Debug, Default)]
struct TeamEdits {
    /// The managed file with the team's lines, and which lines.
    managed: Option<(String, Vec<&'static str>)>,
    /// Files as the team left them, which the upgrade must not touch (seeded ones).
    kept: BTreeMap<String, String>,
    /// The config key the old release uses for the record lifetime.
    ttl_key: String,
    /// Platform files (managed, structured) the team changed or deleted.
    touched: BTreeSet<String>,
    log: Vec<String>,
}

/// Where each path of `from` lives at `to`: the releases' `[renamed]` maps, composed.
fn renames(from: &Version, to: &Version) -> BTreeMap<String, String> {
    let catalogue = Catalogue::load().expect("the templates load");
    let template = catalogue.get(TEMPLATE).expect("template");
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for release in template.releases_between(from, to) {
        for (old, new) in &release.meta.renamed {
            let mut moved = false;
            for now in out.values_mut().filter(|now| *now == old) {
                *now = new.clone();
                moved = true;
            }
            if !moved {
                out.insert(old.clone(), new.clone());
            }
        }
    }
    out
}

/// The key of `[idempotency]` holding the record lifetime (renamed by 2.0.0).
fn ttl_key(table: &toml::Table) -> Option<String> {
    table
        .get("idempotency")?
        .as_table()?
        .keys()
        .find(|k| k.ends_with("ttl_secs") && !k.starts_with("in_flight"))
        .cloned()
}

/// The fixed set of team edits. `fresh` is the newest release rendered with the same answers:
/// it locates the release's changes, so the team's lines go near and far from them.
fn team_edits(dir: &Path, fresh: &Path, from: &Version, to: &Version) -> Result<TeamEdits, String> {
    let mut team = TeamEdits::default();
    let old_modes = modes(dir)?;

    // A managed Rust file the release changes (followed through renames): one team line with
    // two unchanged lines between it and the nearest change (near), one as far from every
    // change as the file allows (far). The file with the most changes that has room for both
    // gives the near line the most to be near to.
    let renamed = renames(from, to);
    // (path, its path at the newest release, its text, the release's changes to it)
    let mut changed: Vec<(String, String, String, Changes)> = Vec::new();
    for (path, mode) in &old_modes {
        if mode != "managed" || !path.ends_with(".rs") {
            continue;
        }
        let to_path = renamed.get(path).cloned().unwrap_or_else(|| path.clone());
        let (Ok(base), Ok(theirs)) = (read(dir, path), read(fresh, &to_path)) else {
            continue;
        };
        if base != theirs {
            let c = changes(&base, &theirs);
            changed.push((path.clone(), to_path, base, c));
        }
    }
    changed.sort_by_key(|(path, _, _, c)| (std::cmp::Reverse(c.len()), path.clone()));
    let placed = changed.iter().find_map(|(path, to_path, base, changes)| {
        let candidates: Vec<(usize, usize)> = base
            .split_inclusive('\n')
            .enumerate()
            .filter(|(_, l)| item_start(l))
            .map(|(i, _)| (i, gap(i, changes)))
            .collect();
        let near = candidates
            .iter()
            .filter(|(_, g)| *g >= 2)
            .min_by_key(|(_, g)| *g)?;
        let far = candidates
            .iter()
            .max_by_key(|(_, g)| *g)
            .filter(|(i, _)| *i != near.0)?;
        Some((path, to_path, base, *near, *far))
    });
    if let Some((path, to_path, base, near, far)) = placed {
        team.log.push(format!(
            "{path}{}: team lines {} and {} unchanged lines from the nearest change",
            if path == to_path {
                String::new()
            } else {
                format!(" (-> {to_path})")
            },
            near.1,
            far.1
        ));
        write(
            dir,
            path,
            &insert_comments(base, &[(near.0, NEAR), (far.0, FAR)]),
        )?;
        team.managed = Some((to_path.clone(), vec![NEAR, FAR]));
        team.touched.insert(to_path.clone());
    } else {
        // The release changes no managed Rust file: the team's line lands in one anyway, and
        // the upgrade must keep it.
        let path = "src/main.rs";
        let base = read(dir, path)?;
        let at = base
            .split_inclusive('\n')
            .position(item_start)
            .ok_or(format!("{path}: no item"))?;
        team.log.push(format!(
            "the release changes no managed Rust file: one team line in {path}"
        ));
        write(dir, path, &insert_comments(&base, &[(at, FAR)]))?;
        team.managed = Some((path.to_owned(), vec![FAR]));
        team.touched.insert(path.to_owned());
    }

    // Their own code (seeded): a route of their own, using their own dependency.
    edit(
        dir,
        "src/app/mod.rs",
        "use axum::Router;\n",
        "use axum::Router;\nuse axum::routing::get;\n",
    )?;
    // 1.x/2.x seed a plain Router; 3.0.0 seeds an OpenApiRouter whose router is merged with
    // the contract's routes.
    const PING: &str = "\n}\n\n/// `GET /v1/ping`: a cheap probe for our clients.\nasync fn ping() -> bytes::Bytes {\n    bytes::Bytes::from_static(b\"pong\")";
    let seeded = read(dir, "src/app/mod.rs")?;
    if seeded.contains("    Ok(router.merge(openapi::routes(platform, api)))") {
        edit(
            dir,
            "src/app/mod.rs",
            "    Ok(router.merge(openapi::routes(platform, api)))",
            &format!(
                "    Ok(router\n        .route(\"/v1/ping\", get(ping))\n        .merge(openapi::routes(platform, api))){PING}"
            ),
        )?;
    } else {
        edit(
            dir,
            "src/app/mod.rs",
            "    Ok(Router::new().merge(items::router(items)))",
            &format!(
                "    Ok(Router::new()\n        .route(\"/v1/ping\", get(ping))\n        .merge(items::router(items))){PING}"
            ),
        )?;
    }
    team.kept
        .insert("src/app/mod.rs".into(), read(dir, "src/app/mod.rs")?);

    // A dependency of their own, with a comment.
    edit(
        dir,
        "Cargo.toml",
        "axum = \"0.8\"\n",
        &format!("axum = \"0.8\"\n{TEAM_DEPENDENCY}"),
    )?;
    team.touched.insert("Cargo.toml".into());

    // Their value for a config key, and a profile of their own setting it too.
    let default = read(dir, "config/default.toml")?;
    team.ttl_key = ttl_key(&toml_of(&default, "config/default.toml")?)
        .ok_or("config/default.toml has no [idempotency] record lifetime")?;
    let key = &team.ttl_key;
    edit(
        dir,
        "config/default.toml",
        &format!("\n{key} = 86400\n"),
        &format!("\n{key} = {TEAM_TTL}\n"),
    )?;
    team.touched.insert("config/default.toml".into());
    write(
        dir,
        STAGING,
        &format!(
            "# team: the staging profile (APP_ENV=staging)\n[server]\nhost = \"0.0.0.0\"\n\n[idempotency]\n{key} = 600\n"
        ),
    )?;

    // A platform file they do not use.
    std::fs::remove_file(dir.join(DELETED)).map_err(|e| format!("delete {DELETED}: {e}"))?;
    team.touched.insert(DELETED.into());

    // Seeded files the team has (README, tests, flags): the upgrade never touches them.
    for (path, mode) in &old_modes {
        if mode == "seeded" && !team.kept.contains_key(path) {
            team.kept.insert(path.clone(), read(dir, path)?);
        }
    }
    Ok(team)
}

/// Every file below `dir`, relative, except `.git` and build output.
fn files(dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git" && e.file_name() != "target")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .expect("prefix")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect()
}

/// The newest release's files that `new` alone writes (`new_only = true`): an upgraded service
/// is right not to have them.
fn new_only_paths() -> BTreeSet<String> {
    let catalogue = Catalogue::load().expect("the templates load");
    let template = catalogue.get(TEMPLATE).expect("the service template");
    let spec = template
        .spec(&template.newest().version)
        .expect("the newest spec");
    spec.files
        .iter()
        .filter(|(_, source)| source.meta.new_only)
        .map(|(path, _)| path.clone())
        .collect()
}

/// The upgraded service against a fresh render of the newest release: equal except for what
/// the team did.
fn check_against_fresh(dir: &Path, fresh: &Path, team: &TeamEdits) -> Result<(), String> {
    let mut problems = Vec::new();
    let have = files(dir);
    let want = files(fresh);
    let own: BTreeSet<String> = [STAGING, "platform.toml", "Cargo.lock"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for extra in have.difference(&want).filter(|p| !own.contains(*p)) {
        problems.push(format!(
            "{extra}: left behind (the newest release has no such file)"
        ));
    }
    for path in &want {
        if path == "platform.toml" {
            continue;
        }
        let fresh_text = read(fresh, path)?;
        if path == DELETED {
            if have.contains(path) {
                problems.push(format!(
                    "{path}: the team deleted it, the upgrade brought it back"
                ));
            }
            continue;
        }
        let Ok(text) = read(dir, path) else {
            // Seeded for new services only (`new_only`): upgrades never add it.
            if !new_only_paths().contains(path) {
                problems.push(format!("{path}: missing"));
            }
            continue;
        };
        if let Some(kept) = team.kept.get(path) {
            if &text != kept {
                problems.push(format!("{path}: seeded, but the upgrade changed it"));
            }
        } else if team.managed.as_ref().is_some_and(|(p, _)| p == path) {
            let lines = &team.managed.as_ref().expect("managed").1;
            for line in lines {
                if text.lines().filter(|l| l.trim() == *line).count() != 1 {
                    problems.push(format!("{path}: the team's `{line}` is not there once"));
                }
            }
            let without: String = text
                .split_inclusive('\n')
                .filter(|l| !lines.contains(&l.trim()))
                .collect();
            if without != fresh_text {
                problems.push(format!(
                    "{path}: without the team's lines, not what the newest release renders:\n{}",
                    diffy::create_patch(&fresh_text, &without)
                ));
            }
        } else if path == "Cargo.toml" {
            if !text.contains(TEAM_DEPENDENCY) {
                problems.push(format!(
                    "Cargo.toml: the team's `{TEAM_DEPENDENCY}` is gone"
                ));
            }
            let mut expected = toml_of(&fresh_text, "fresh Cargo.toml")?;
            expected["dependencies"]
                .as_table_mut()
                .ok_or("[dependencies]")?
                .insert("bytes".into(), "1".into());
            if toml_of(&text, "Cargo.toml")? != expected {
                problems.push(format!(
                    "Cargo.toml: not the newest release's plus the team's dependency:\n{}",
                    diffy::create_patch(&fresh_text, &text)
                ));
            }
        } else if path == "config/default.toml" {
            let mut expected = toml_of(&fresh_text, "fresh config/default.toml")?;
            let key = ttl_key(&expected).ok_or("fresh config/default.toml: no record lifetime")?;
            expected["idempotency"]
                .as_table_mut()
                .ok_or("[idempotency]")?
                .insert(key, TEAM_TTL.into());
            if toml_of(&text, "config/default.toml")? != expected {
                problems.push(format!(
                    "config/default.toml: not the newest release's with the team's value:\n{}",
                    diffy::create_patch(&fresh_text, &text)
                ));
            }
        } else if text != fresh_text {
            problems.push(format!(
                "{path}: not what the newest release renders:\n{}",
                diffy::create_patch(&fresh_text, &text)
            ));
        }
    }
    // The team's own profile: their value under the key the newest release reads.
    let staging = toml_of(&read(dir, STAGING)?, STAGING)?;
    let key = ttl_key(&toml_of(
        &read(fresh, "config/default.toml")?,
        "fresh config",
    )?)
    .ok_or("fresh config/default.toml: no record lifetime")?;
    let idempotency = staging.get("idempotency").and_then(|t| t.as_table());
    if idempotency
        .and_then(|t| t.get(&key))
        .and_then(|v| v.as_integer())
        != Some(600)
        || idempotency.is_none_or(|t| t.len() != 1)
    {
        problems.push(format!(
            "{STAGING}: expected only [idempotency] {key} = 600 (renamed from {}): {staging}",
            team.ttl_key
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// `status` reports as locally edited exactly the platform files the team edited or deleted.
fn check_status(dir: &Path, team: &TeamEdits) -> Result<(), String> {
    let out = platform(dir, &["status", "--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("status printed no JSON ({e})\n{}", common::describe(&out)))?;
    let reported: BTreeSet<String> = report["local_edits"]
        .as_array()
        .ok_or(format!("status: no local_edits: {report}"))?
        .iter()
        .filter_map(|e| e["path"].as_str().map(str::to_owned))
        .collect();
    if reported != team.touched {
        return Err(format!(
            "status reports local edits {reported:?}; the team touched {:?}",
            team.touched
        ));
    }
    Ok(())
}

/// The ledger holds every migration from `from` to `to` exactly once, applied.
fn check_ledger(dir: &Path, from: &Version, to: &Version) -> Result<(), String> {
    let catalogue = Catalogue::load().expect("the templates load");
    let template = catalogue.get(TEMPLATE).expect("template");
    let expected: Vec<(String, String)> = template
        .migrations_between(from, to)
        .map(|(_, m)| (m.id.clone(), "applied".to_owned()))
        .collect();
    let manifest = toml_of(&read(dir, "platform.toml")?, "platform.toml")?;
    if manifest["platform"]["version"].as_str() != Some(to.to_string().as_str()) {
        return Err(format!("platform.toml: version is not {to}"));
    }
    let ledger: Vec<(String, String)> = manifest
        .get("migrations")
        .and_then(|m| m.as_array())
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["id"].as_str().unwrap_or_default().to_owned(),
                        m["status"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if ledger != expected {
        return Err(format!(
            "ledger {ledger:?}, expected each migration once, applied: {expected:?}"
        ));
    }
    Ok(())
}

/// `cargo build` and `cargo test` in the shared target dir, with zero warnings.
fn build_and_test(dir: &Path) -> Result<(), String> {
    let target = harness::e2e_target();
    for args in [
        &["build", "--color", "never"][..],
        &["test", "--color", "never"],
    ] {
        let out = harness::cargo_in(dir, &target, args, &[]);
        if !out.status.success() {
            return Err(format!("cargo {}\n{}", args[0], common::describe(&out)));
        }
        let warnings = harness::warnings(&out);
        if !warnings.is_empty() {
            return Err(format!(
                "cargo {}: warnings\n{}",
                args[0],
                common::describe(&out)
            ));
        }
    }
    Ok(())
}

/// `cargo platform new` of `version` with `answers` (and `owner=e2e`) at `dir`.
fn scaffold(
    version: &Version,
    answers: &[(String, String)],
    dir: &Path,
    git: bool,
) -> Result<(), String> {
    let version = version.to_string();
    let sets: Vec<String> = std::iter::once("owner=e2e".to_owned())
        .chain(answers.iter().map(|(k, v)| format!("{k}={v}")))
        .collect();
    let mut args = vec!["new", NAME, "--template-version", &version, "--yes"];
    if !git {
        args.push("--no-git");
    }
    for s in &sets {
        args.extend(["--set", s]);
    }
    args.extend(["--path", dir.to_str().expect("utf-8 path")]);
    let out = platform(dir.parent().expect("parent"), &args);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("new {version}\n{}", common::describe(&out)))
    }
}

/// Renders, edits, upgrades, checks, builds and tests one cell; `Ok` says what the team edited.
///
/// Every cell's service is at the same path, `<root>/cell/<NAME>`: cargo identifies a path
/// package by its path, so the next cell's build finds the previous one's artifacts and
/// incremental state (and the shared target dir holds one copy, not one per cell). A failed
/// cell's directories are moved aside for a post-mortem by the caller.
fn run_cell(root: &Path, newest: &Version, cell: &Cell) -> Result<String, String> {
    let dir = root.join("cell").join(NAME);
    let fresh = root.join("fresh").join(NAME);
    for d in [&dir, &fresh] {
        let parent = d.parent().expect("parent");
        if parent.exists() {
            std::fs::remove_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    scaffold(&cell.from, &cell.answers, &dir, true)?;
    scaffold(newest, &cell.answers, &fresh, false)?;

    let team = team_edits(&dir, &fresh, &cell.from, newest)?;
    common::git(&dir, &["add", "-A"]);
    common::git(&dir, &["commit", "-q", "-m", "team edits"]);

    let out = platform(&dir, &["upgrade", "--commit", "--format", "json"]);
    if out.status.code() != Some(0) {
        return Err(format!("upgrade --commit\n{}", common::describe(&out)));
    }
    let report: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("upgrade printed no JSON ({e})\n{}", common::describe(&out)))?;
    if report["conflicts"]
        .as_array()
        .is_some_and(|c| !c.is_empty())
    {
        return Err(format!("upgrade reported conflicts: {report}"));
    }
    if !common::git(&dir, &["status", "--porcelain"]).is_empty() {
        return Err("upgrade --commit left changes uncommitted".into());
    }
    let out = platform(&dir, &["upgrade", "--dry-run", "--format", "json"]);
    let again: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "upgrade --dry-run printed no JSON ({e})\n{}",
            common::describe(&out)
        )
    })?;
    if !again["hops"].as_array().is_some_and(Vec::is_empty) {
        return Err(format!("a second upgrade is not a no-op: {again}"));
    }
    check_against_fresh(&dir, &fresh, &team)?;
    check_status(&dir, &team)?;
    check_ledger(&dir, &cell.from, newest)?;
    build_and_test(&dir)?;
    Ok(team.log.join("; "))
}

#[test]
fn the_covering_takes_every_choice_of_every_question() {
    let (newest, cells) = cells();
    let catalogue = Catalogue::load().expect("the templates load");
    let template = catalogue.get(TEMPLATE).expect("template");
    for release in template.releases.iter().filter(|r| r.version < newest) {
        let mine: Vec<&Cell> = cells.iter().filter(|c| c.from == release.version).collect();
        if mine.is_empty() {
            continue;
        }
        for q in &template.spec(&release.version).expect("spec").questions {
            let choices = match q.kind {
                QuestionKind::Choice => q.choices.clone().unwrap_or_default(),
                QuestionKind::Bool => vec!["true".into(), "false".into()],
                _ => continue,
            };
            for choice in choices {
                assert!(
                    mine.iter()
                        .any(|c| c.answers.contains(&(q.key.clone(), choice.clone()))),
                    "{} {}={choice} is in no cell: {cells:?}",
                    release.version,
                    q.key
                );
            }
        }
    }
}

#[test]
fn releases_out_of_support_are_left_out() {
    // 1.0.0's support ends 2027-06-30: in on its last day, out the day after.
    let from = |today: &str| -> BTreeSet<String> {
        let today = policy::parse_date(today).expect("date");
        cells_on(today)
            .1
            .iter()
            .map(|c| c.from.to_string())
            .collect()
    };
    assert!(from("2027-06-30").contains("1.0.0"));
    let after = from("2027-07-01");
    assert!(
        !after.contains("1.0.0") && after.contains("2.0.0"),
        "{after:?}"
    );
}

/// The checks catch what an upgrade could get wrong. A service of the newest release with the
/// team's edits is what a correct upgrade to it gives (nothing to upgrade); then each mistake is
/// made by hand and must be reported.
#[test]
fn the_checks_catch_lost_edits_resurrected_and_leftover_files() {
    let (newest, _) = cells();
    let work = common::scratch();
    let dir = work.path().join("svc").join(NAME);
    let fresh = work.path().join("fresh").join(NAME);
    let answers = vec![("idempotency_store".to_owned(), "redis".to_owned())];
    for (d, git) in [(&dir, true), (&fresh, false)] {
        std::fs::create_dir_all(d.parent().unwrap()).unwrap();
        scaffold(&newest, &answers, d, git).unwrap();
    }
    let team = team_edits(&dir, &fresh, &newest, &newest).unwrap();
    check_against_fresh(&dir, &fresh, &team).unwrap();
    check_status(&dir, &team).unwrap();
    let (managed, _) = team.managed.clone().unwrap();

    let mistake = |what: &str, make: &dyn Fn(), undo: &dyn Fn(), expect: &str| {
        make();
        let err = check_against_fresh(&dir, &fresh, &team).expect_err(what);
        assert!(err.contains(expect), "{what}: {err}");
        undo();
        check_against_fresh(&dir, &fresh, &team).unwrap();
    };
    let text = std::fs::read_to_string(dir.join(&managed)).unwrap();
    mistake(
        "the team's line lost",
        &|| std::fs::write(dir.join(&managed), text.replace(&format!("{FAR}\n"), "")).unwrap(),
        &|| std::fs::write(dir.join(&managed), &text).unwrap(),
        "is not there once",
    );
    mistake(
        "a platform change not applied",
        &|| std::fs::write(dir.join(&managed), format!("{text}// old\n")).unwrap(),
        &|| std::fs::write(dir.join(&managed), &text).unwrap(),
        "without the team's lines, not what the newest release renders",
    );
    mistake(
        "the deleted file back",
        &|| {
            std::fs::copy(fresh.join(DELETED), dir.join(DELETED))
                .map(drop)
                .unwrap()
        },
        &|| std::fs::remove_file(dir.join(DELETED)).unwrap(),
        "the upgrade brought it back",
    );
    mistake(
        "a file left behind",
        &|| std::fs::write(dir.join("src/platform/gone.rs"), "\n").unwrap(),
        &|| std::fs::remove_file(dir.join("src/platform/gone.rs")).unwrap(),
        "src/platform/gone.rs: left behind",
    );
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    mistake(
        "a seeded file rewritten",
        &|| std::fs::write(dir.join("README.md"), "# new\n").unwrap(),
        &|| std::fs::write(dir.join("README.md"), &readme).unwrap(),
        "README.md: seeded, but the upgrade changed it",
    );
    let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    mistake(
        "the team's dependency dropped",
        &|| std::fs::write(dir.join("Cargo.toml"), cargo.replace(TEAM_DEPENDENCY, "")).unwrap(),
        &|| std::fs::write(dir.join("Cargo.toml"), &cargo).unwrap(),
        "the team's `bytes",
    );
    let config = std::fs::read_to_string(dir.join("config/default.toml")).unwrap();
    mistake(
        "the team's config value reset",
        &|| {
            let reset = config.replace(&format!("= {TEAM_TTL}\n"), "= 86400\n");
            std::fs::write(dir.join("config/default.toml"), reset).unwrap()
        },
        &|| std::fs::write(dir.join("config/default.toml"), &config).unwrap(),
        "config/default.toml: not the newest release's with the team's value",
    );
    let staging = std::fs::read_to_string(dir.join(STAGING)).unwrap();
    mistake(
        "the team's profile not migrated",
        &|| {
            std::fs::write(
                dir.join(STAGING),
                staging.replace("record_ttl_secs", "ttl_secs"),
            )
            .unwrap()
        },
        &|| std::fs::write(dir.join(STAGING), &staging).unwrap(),
        "expected only [idempotency] record_ttl_secs = 600",
    );
    // status: an edit the team did not make is reported.
    std::fs::write(dir.join("src/platform/config.rs"), "// changed\n").unwrap();
    let err = check_status(&dir, &team).unwrap_err();
    assert!(err.contains("src/platform/config.rs"), "{err}");
    // The ledger: nothing to apply from the newest to itself; a claimed hop is caught.
    check_ledger(&dir, &newest, &newest).unwrap();
    let err = check_ledger(&dir, &Version::new(1, 0, 0), &newest).unwrap_err();
    assert!(err.contains("expected each migration once"), "{err}");
}

#[test]
#[ignore = "end-to-end: renders, upgrades, builds and tests one service per cell; run with --include-ignored"]
fn every_supported_release_upgrades_to_the_newest_and_builds() {
    let (newest, mut cells) = cells();
    assert!(
        !cells.is_empty(),
        "no release in support older than {newest}"
    );
    // Cells with the same answers one after the other: their upgraded services differ only in
    // the team's lines, so each build reuses most of the previous one (see `run_cell`).
    cells.sort_by(|a, b| a.answers.cmp(&b.answers).then(a.from.cmp(&b.from)));
    let work = tempfile::Builder::new()
        .prefix("cargo-platform-upgrade-paths-")
        .tempdir()
        .expect("tempdir");
    let started = Instant::now();
    let mut failures = Vec::new();
    for (n, cell) in cells.iter().enumerate() {
        let t = Instant::now();
        let result = run_cell(work.path(), &newest, cell);
        eprintln!(
            "{} -> {newest}: {} ({:.0?})",
            cell.label(),
            match &result {
                Ok(log) => format!("builds, tests pass; {log}"),
                Err(_) => "FAILED".to_owned(),
            },
            t.elapsed()
        );
        if let Err(why) = result {
            failures.push(format!("== {} -> {newest}: {why}", cell.label()));
            for d in ["cell", "fresh"] {
                let from = work.path().join(d);
                if from.exists() {
                    std::fs::rename(&from, work.path().join(format!("failed-{n}-{d}")))
                        .expect("move the failed cell aside");
                }
            }
        }
    }
    for d in ["cell", "fresh"] {
        std::fs::remove_dir_all(work.path().join(d)).ok();
    }
    eprintln!("{} cells in {:.0?}", cells.len(), started.elapsed());
    if !failures.is_empty() {
        eprintln!(
            "kept the services for a post-mortem: {}",
            work.keep().display()
        );
        panic!("{}", failures.join("\n\n"));
    }
}
