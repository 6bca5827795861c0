//! Upgrade planning against the demo fixture template (1.0.0 → 2.0.0): every kind of change, as
//! data in (files on disk) and out (entries, writes, manifest).

use std::collections::BTreeMap;

use cargo_platform::error::Result;
use cargo_platform::manifest::{
    ComponentRecord, ComponentState, FileRecord, Manifest, MigrationStatus, SCHEMA,
};
use cargo_platform::template::answers::Answer;
use cargo_platform::template::render::{self, FileSet};
use cargo_platform::template::{Catalogue, Template};
use cargo_platform::upgrade::plan::{
    self, ConflictStyle, Disk, OnDisk, Options, Plan, Status, Write,
};
use include_dir::{Dir, include_dir};
use semver::Version;

static FIXTURES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/tests/fixtures/templates");

fn demo() -> Template {
    Catalogue::from_dir(&FIXTURES).unwrap().templates.remove(0)
}

struct MemDisk(BTreeMap<String, OnDisk>);

impl Disk for MemDisk {
    fn read(&self, path: &str) -> Result<OnDisk> {
        Ok(self.0.get(path).cloned().unwrap_or(OnDisk::Missing))
    }
    fn list(&self, dir: &str) -> Result<Vec<String>> {
        Ok(self
            .0
            .keys()
            .filter(|p| dir.is_empty() || p.starts_with(&format!("{dir}/")))
            .cloned()
            .collect())
    }
}

/// A service freshly created from demo 1.0.0: its manifest and its files on disk.
fn service() -> (Template, Manifest, MemDisk) {
    let t = demo();
    let spec = t.spec(&Version::new(1, 0, 0)).unwrap();
    let answers = vec![("store".to_string(), Answer::String("memory".into()))];
    let files: FileSet = render::render(&spec, "orders", &answers).unwrap();
    let manifest = Manifest {
        schema: SCHEMA,
        template: "demo".into(),
        version: Version::new(1, 0, 0),
        tool_version: "0.0.0".into(),
        name: "orders".into(),
        answers,
        components: spec
            .components
            .keys()
            .map(|c| {
                let r = ComponentRecord {
                    state: ComponentState::Managed,
                    reason: None,
                    date: None,
                };
                (c.clone(), r)
            })
            .collect(),
        files: files
            .iter()
            .map(|(p, f)| {
                let r = FileRecord {
                    component: f.component.clone(),
                    mode: f.mode,
                    sha256: f.sha256(),
                };
                (p.clone(), r)
            })
            .collect(),
        migrations: vec![],
        history: Default::default(),
        read_schema: SCHEMA,
    };
    let disk = files
        .into_iter()
        .map(|(p, f)| (p, OnDisk::File(f.contents)))
        .collect();
    drop(spec);
    (t, manifest, MemDisk(disk))
}

fn opts() -> Options {
    Options {
        to: None,
        skip: vec![],
        exclude: vec![],
        eject: vec![],
        conflict: ConflictStyle::Markers,
        today: "2026-11-22".parse().unwrap(),
    }
}

fn status(plan: &Plan, path: &str) -> Status {
    plan.entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no entry for {path}: {:#?}", plan.entries))
        .status
}

fn put<'p>(plan: &'p Plan, path: &str) -> Option<&'p str> {
    plan.writes.iter().find_map(|w| match w {
        Write::Put { path: p, contents } if p == path => {
            Some(std::str::from_utf8(contents).unwrap())
        }
        _ => None,
    })
}

fn removed(plan: &Plan, path: &str) -> bool {
    plan.writes
        .iter()
        .any(|w| matches!(w, Write::Remove { path: p } if p == path))
}

fn set(disk: &mut MemDisk, path: &str, text: &str) {
    disk.0
        .insert(path.into(), OnDisk::File(text.as_bytes().to_vec()));
}

#[test]
fn clean_upgrade_touches_every_kind_of_change() {
    let (t, m, disk) = service();
    let plan = plan::plan(&t, &m, &disk, &opts()).unwrap();
    assert_eq!(plan.hops, vec![Version::new(2, 0, 0)]);
    assert_eq!(status(&plan, "src/main.rs"), Status::Updated);
    assert!(put(&plan, "src/main.rs").unwrap().contains("audit=true"));
    assert_eq!(status(&plan, "new.txt"), Status::Renamed);
    assert!(removed(&plan, "old.txt") && put(&plan, "new.txt") == Some("old\n"));
    assert_eq!(status(&plan, "gone.txt"), Status::Deleted);
    assert!(removed(&plan, "gone.txt"));
    assert_eq!(status(&plan, "src/audit.rs"), Status::New);
    assert_eq!(status(&plan, "README.md"), Status::Unchanged);
    assert_eq!(status(&plan, "src/orders.rs"), Status::Unchanged);
    assert_eq!(status(&plan, "Cargo.toml"), Status::Updated);
    let cargo = put(&plan, "Cargo.toml").unwrap();
    assert!(
        cargo.contains("axum = \"0.8.4\"") && cargo.contains("uuid = \"1\""),
        "{cargo}"
    );
    let config = put(&plan, "config/default.toml").unwrap();
    assert!(
        config.contains("hs256_secret = \"local-dev\"") && !config.contains("\nsecret"),
        "{config}"
    );
    assert!(plan.conflicts().is_empty());
    // The manifest moves to 2.0.0 with the new render's hashes, the new component and the ledger.
    assert_eq!(plan.manifest.version, Version::new(2, 0, 0));
    assert!(
        plan.manifest.files.contains_key("new.txt") && !plan.manifest.files.contains_key("old.txt")
    );
    assert_eq!(
        plan.manifest.components["audit"].state,
        ComponentState::Managed
    );
    assert_eq!(
        plan.manifest
            .answers
            .iter()
            .find(|(k, _)| k == "audit")
            .unwrap()
            .1,
        Answer::Bool(true)
    );
    assert_eq!(plan.manifest.migrations[0].id, "demo-2.0.0-rename-key");
    assert_eq!(plan.manifest.migrations[0].status, MigrationStatus::Applied);
}

#[test]
fn team_edits_are_merged_or_conflict() {
    let (t, m, mut disk) = service();
    // Far from the template's change: merged.
    set(
        &mut disk,
        "src/main.rs",
        "// ours\nfn main() {\n    println!(\"orders v1.0.0\");\n}\n",
    );
    let plan = plan::plan(&t, &m, &disk, &opts()).unwrap();
    assert_eq!(status(&plan, "src/main.rs"), Status::Merged);
    assert_eq!(
        put(&plan, "src/main.rs").unwrap(),
        "// ours\nfn main() {\n    println!(\"orders v2.0.0 audit=true\");\n}\n"
    );

    // The same line: a conflict with markers, or a .rej with --conflict reject.
    set(
        &mut disk,
        "src/main.rs",
        "fn main() {\n    println!(\"ours\");\n}\n",
    );
    let plan = plan::plan(&t, &m, &disk, &opts()).unwrap();
    assert_eq!(status(&plan, "src/main.rs"), Status::Conflict);
    let text = put(&plan, "src/main.rs").unwrap();
    assert!(
        text.contains("<<<<<<< yours\n    println!(\"ours\");\n=======\n"),
        "{text}"
    );
    assert!(text.contains(">>>>>>> template demo 2.0.0\n"), "{text}");

    let mut reject = opts();
    reject.conflict = ConflictStyle::Reject;
    let plan = plan::plan(&t, &m, &disk, &reject).unwrap();
    assert_eq!(status(&plan, "src/main.rs"), Status::Conflict);
    assert_eq!(
        put(&plan, "src/main.rs"),
        None,
        "reject mode keeps the team's file as it is"
    );
    let rej = put(&plan, "src/main.rs.rej").unwrap();
    assert!(rej.contains("-    println!(\"orders v1.0.0\");"), "{rej}");
    assert!(
        rej.contains("+    println!(\"orders v2.0.0 audit=true\");"),
        "{rej}"
    );
}

#[test]
fn edits_follow_a_renamed_file() {
    let (t, m, mut disk) = service();
    set(&mut disk, "old.txt", "old\nours\n");
    let plan = plan::plan(&t, &m, &disk, &opts()).unwrap();
    assert_eq!(status(&plan, "new.txt"), Status::Renamed);
    assert_eq!(put(&plan, "new.txt"), Some("old\nours\n"));
    assert!(removed(&plan, "old.txt"));
    let e = plan.entries.iter().find(|e| e.path == "new.txt").unwrap();
    assert_eq!(e.from.as_deref(), Some("old.txt"));
    assert!(e.detail.as_deref().unwrap().contains("with your edits"));
}

#[test]
fn deleted_files_stay_deleted_and_edited_deletions_are_kept() {
    let (t, m, mut disk) = service();
    disk.0.remove("src/main.rs");
    disk.0.remove("old.txt");
    set(&mut disk, "gone.txt", "gone\nbut we use it\n");
    let plan = plan::plan(&t, &m, &disk, &opts()).unwrap();
    assert_eq!(status(&plan, "src/main.rs"), Status::Kept);
    assert!(put(&plan, "src/main.rs").is_none());
    assert_eq!(status(&plan, "new.txt"), Status::Kept);
    assert!(put(&plan, "new.txt").is_none());
    assert_eq!(status(&plan, "gone.txt"), Status::Kept);
    assert!(!removed(&plan, "gone.txt"));
    assert!(
        !plan.manifest.files.contains_key("gone.txt"),
        "a kept file is the team's now"
    );
}

#[test]
fn team_toml_edits_survive_and_same_key_conflicts() {
    let (t, m, mut disk) = service();
    set(
        &mut disk,
        "Cargo.toml",
        "[package]\nname = \"orders\"\nversion = \"0.4.0\"\nedition = \"2024\"\n\n[dependencies]\naxum = \"0.8.0\"\nserde = { version = \"1\", features = [\"derive\"] }\nchrono = \"0.4\" # ours\n",
    );
    set(
        &mut disk,
        "config/default.toml",
        "[server]\nport = 9090\n\n[auth]\n# from vault\nsecret = \"team-secret\"\nissuer = \"local\"\n",
    );
    set(
        &mut disk,
        "config/staging.toml",
        "[auth]\nsecret = \"staging-secret\"\n",
    );
    let plan = plan::plan(&t, &m, &disk, &opts()).unwrap();
    let cargo = put(&plan, "Cargo.toml").unwrap();
    assert!(
        cargo.contains("version = \"0.4.0\"") && cargo.contains("chrono = \"0.4\" # ours"),
        "{cargo}"
    );
    assert!(
        cargo.contains("axum = \"0.8.4\"") && cargo.contains("uuid = \"1\""),
        "{cargo}"
    );
    assert_eq!(status(&plan, "Cargo.toml"), Status::Merged);
    let config = put(&plan, "config/default.toml").unwrap();
    assert!(config.contains("port = 9090"), "{config}");
    assert!(
        config.contains("# from vault\nhs256_secret = \"team-secret\""),
        "{config}"
    );
    assert!(config.contains("[audit]\nenabled = true"), "{config}");
    assert_eq!(status(&plan, "config/staging.toml"), Status::Updated);
    assert_eq!(
        put(&plan, "config/staging.toml"),
        Some("[auth]\nhs256_secret = \"staging-secret\"\n")
    );

    // The team pinned axum to another version: the same key changed both ways.
    let base_like = cargo
        .replace("axum = \"0.8.4\"", "axum = \"0.7.9\"")
        .replace("uuid = \"1\"\n", "");
    set(&mut disk, "Cargo.toml", &base_like);
    let plan = plan::plan(&t, &m, &disk, &opts()).unwrap();
    assert_eq!(status(&plan, "Cargo.toml"), Status::Conflict);
    let text = put(&plan, "Cargo.toml").unwrap();
    assert!(
        text.contains("template demo 2.0.0 sets it to \"0.8.4\"; yours is kept"),
        "{text}"
    );
    assert!(text.contains("axum = \"0.7.9\""), "{text}");
}

#[test]
fn ejected_excluded_and_skipped_are_never_touched() {
    let (t, mut m, mut disk) = service();
    m.components.get_mut("extra").unwrap().state = ComponentState::Ejected;
    set(&mut disk, "src/main.rs", "fn main() {}\n");
    let mut o = opts();
    o.exclude = vec!["src/*.rs".into()];
    o.skip = vec!["demo-2.0.0-rename-key".into()];
    let plan = plan::plan(&t, &m, &disk, &o).unwrap();
    assert_eq!(status(&plan, "new.txt"), Status::Ejected);
    assert_eq!(status(&plan, "gone.txt"), Status::Ejected);
    assert_eq!(status(&plan, "src/main.rs"), Status::Excluded);
    assert_eq!(status(&plan, "src/audit.rs"), Status::Excluded);
    for w in &plan.writes {
        assert!(
            ![
                "new.txt",
                "old.txt",
                "gone.txt",
                "src/main.rs",
                "src/audit.rs"
            ]
            .contains(&w.path()),
            "{w:?}"
        );
    }
    assert_eq!(plan.manifest.migrations[0].status, MigrationStatus::Skipped);
    assert_eq!(plan.manifest.migrations[0].id, "demo-2.0.0-rename-key");

    // With the rename skipped, a team's value under the old key is not carried over: the
    // template dropping that key is a conflict, and the team's own config files are left alone.
    set(
        &mut disk,
        "config/default.toml",
        "[server]\nport = 8080\n\n[auth]\nsecret = \"team\"\nissuer = \"local\"\n",
    );
    set(
        &mut disk,
        "config/staging.toml",
        "[auth]\nsecret = \"staging\"\n",
    );
    let plan = plan::plan(&t, &m, &disk, &o).unwrap();
    assert_eq!(status(&plan, "config/default.toml"), Status::Conflict);
    assert!(
        put(&plan, "config/default.toml")
            .unwrap()
            .contains("secret = \"team\"")
    );
    assert!(plan.entries.iter().all(|e| e.path != "config/staging.toml"));
    let mut applied = opts();
    applied.exclude = o.exclude.clone();
    let plan = plan::plan(&t, &m, &disk, &applied).unwrap();
    assert_eq!(status(&plan, "config/default.toml"), Status::Merged);
    assert_eq!(status(&plan, "config/staging.toml"), Status::Updated);

    let mut bad = opts();
    bad.skip = vec!["nope".into()];
    let err = plan::plan(&t, &m, &disk, &bad).unwrap_err();
    assert!(
        err.hints[0].contains("demo-2.0.0-rename-key"),
        "{:?}",
        err.hints
    );
    let mut bad = opts();
    bad.exclude = vec!["[".into()];
    assert!(
        plan::plan(&t, &m, &disk, &bad)
            .unwrap_err()
            .message
            .contains("not a valid glob")
    );
}

#[test]
fn base_mismatch_is_reported_not_merged() {
    let (t, mut m, disk) = service();
    m.files.get_mut("src/main.rs").unwrap().sha256 = "0".repeat(64);
    let err = plan::plan(&t, &m, &disk, &opts()).unwrap_err();
    assert!(
        err.message.contains("merge base does not match"),
        "{}",
        err.message
    );
    assert!(err.message.contains("src/main.rs"), "{}", err.message);
}

#[test]
fn rerun_is_a_noop_and_downgrade_is_refused() {
    let (t, mut m, disk) = service();
    m.version = Version::new(2, 0, 0);
    let plan = plan::plan(&t, &m, &disk, &opts()).unwrap();
    assert!(plan.is_noop() && plan.writes.is_empty());
    let mut o = opts();
    o.to = Some(Version::new(1, 0, 0));
    assert!(
        plan::plan(&t, &m, &disk, &o)
            .unwrap_err()
            .message
            .contains("cannot downgrade")
    );
}

#[test]
fn crlf_binary_and_symlinked_files() {
    let (t, m, mut disk) = service();
    set(
        &mut disk,
        "src/main.rs",
        "// ours\r\nfn main() {\r\n    println!(\"orders v1.0.0\");\r\n}\r\n",
    );
    disk.0.insert("old.txt".into(), OnDisk::Other);
    disk.0
        .insert("logo.png".into(), OnDisk::File(vec![0x89, 0x50, 0, 0xff]));
    let plan = plan::plan(&t, &m, &disk, &opts()).unwrap();
    assert_eq!(
        put(&plan, "src/main.rs").unwrap(),
        "// ours\r\nfn main() {\r\n    println!(\"orders v2.0.0 audit=true\");\r\n}\r\n"
    );
    assert_eq!(status(&plan, "new.txt"), Status::Kept);
    assert!(plan.entries.iter().all(|e| e.path != "logo.png"));
}

/// The demo template with its migration's `files` glob replaced by `glob`.
fn with_migration_glob(t: &mut Template, glob: &str) {
    let release = t
        .releases
        .iter_mut()
        .find(|r| r.version.major == 2)
        .unwrap();
    let cargo_platform::template::release::Edit::RenameKey { files, .. } =
        &mut release.meta.migrations[0].edits[0];
    *files = glob.to_string();
}

#[test]
fn migration_globs_star_stays_in_its_directory_and_double_star_reaches_nested_files() {
    let (mut t, m, mut disk) = service();
    set(&mut disk, "config/staging.toml", "[auth]\nsecret = \"s\"\n");
    set(&mut disk, "config/env/eu.toml", "[auth]\nsecret = \"eu\"\n");

    // `config/*.toml` (as released): the direct child only.
    let plan = plan::plan(&t, &m, &disk, &opts()).unwrap();
    assert_eq!(status(&plan, "config/staging.toml"), Status::Updated);
    assert!(
        plan.entries.iter().all(|e| e.path != "config/env/eu.toml"),
        "{:#?}",
        plan.entries
    );

    // `config/**`: nested files too.
    with_migration_glob(&mut t, "config/**");
    let plan = plan::plan(&t, &m, &disk, &opts()).unwrap();
    assert_eq!(status(&plan, "config/staging.toml"), Status::Updated);
    assert_eq!(status(&plan, "config/env/eu.toml"), Status::Updated);
    assert_eq!(
        put(&plan, "config/env/eu.toml"),
        Some("[auth]\nhs256_secret = \"eu\"\n")
    );
}

#[test]
fn an_invalid_migration_glob_is_an_error_naming_it() {
    let (mut t, m, disk) = service();
    with_migration_glob(&mut t, "config/[*.toml");
    let err = plan::plan(&t, &m, &disk, &opts()).unwrap_err();
    assert!(
        err.message.contains("demo-2.0.0-rename-key")
            && err.message.contains("`config/[*.toml`")
            && err.message.contains("not a valid glob"),
        "{}",
        err.message
    );
}

#[test]
fn exclude_globs_star_stays_in_its_directory_and_double_star_reaches_nested_files() {
    let (t, m, disk) = service();
    let mut o = opts();
    o.exclude = vec!["*.rs".into()];
    let plan = plan::plan(&t, &m, &disk, &o).unwrap();
    assert_eq!(status(&plan, "src/main.rs"), Status::Updated);
    o.exclude = vec!["src/**".into()];
    let plan = plan::plan(&t, &m, &disk, &o).unwrap();
    assert_eq!(status(&plan, "src/main.rs"), Status::Excluded);
    assert_eq!(status(&plan, "src/audit.rs"), Status::Excluded);
    o.exclude = vec!["**/*.rs".into()];
    let plan = plan::plan(&t, &m, &disk, &o).unwrap();
    assert_eq!(status(&plan, "src/main.rs"), Status::Excluded);
}

#[test]
fn the_planned_manifest_records_exactly_one_upgrade_with_its_counts() {
    let (t, m, mut disk) = service();
    // A conflict on the same line, nothing merged.
    set(
        &mut disk,
        "src/main.rs",
        "fn main() {\n    println!(\"ours\");\n}\n",
    );
    let mut o = opts();
    o.skip = vec!["demo-2.0.0-rename-key".into()];
    let plan = plan::plan(&t, &m, &disk, &o).unwrap();
    let ups = &plan.manifest.history.upgrades;
    assert_eq!(ups.len(), 1, "{ups:?}");
    let up = &ups[0];
    assert_eq!(
        (up.from.to_string(), up.to.to_string()),
        ("1.0.0".into(), "2.0.0".into())
    );
    assert_eq!(up.date.to_string(), "2026-11-22");
    let written = plan
        .entries
        .iter()
        .filter(|e| {
            matches!(
                e.status,
                Status::New | Status::Updated | Status::Renamed | Status::Deleted
            )
        })
        .count();
    let files = up.files.unwrap();
    assert_eq!(files.conflicts, 1);
    assert_eq!(files.merged, 0);
    assert_eq!(files.updated, written);
    assert!(written > 0);
    assert_eq!(up.migrations_applied, Vec::<String>::new());
    assert_eq!(
        up.migrations_skipped,
        vec!["demo-2.0.0-rename-key".to_string()]
    );
    // An up-to-date service plans no upgrade: nothing is appended.
    let noop = plan::plan(&t, &plan.manifest, &disk, &opts()).unwrap();
    assert!(noop.is_noop());
    assert_eq!(noop.manifest.history.upgrades.len(), 1);
}

#[test]
fn breaks_in_ejected_components_become_team_actions() {
    let (t, mut m, disk) = service();
    let plan = plan::plan(&t, &m, &disk, &opts()).unwrap();
    assert!(
        plan.actions.is_empty(),
        "nothing ejected, nothing to do by hand"
    );

    // Ejected before the upgrade, or during it: the same action.
    let mut during = opts();
    during.eject = vec!["extra".into()];
    let plan_during = plan::plan(&t, &m, &disk, &during).unwrap();
    m.components.get_mut("extra").unwrap().state = ComponentState::Ejected;
    let plan_before = plan::plan(&t, &m, &disk, &opts()).unwrap();
    for plan in [plan_during, plan_before] {
        assert_eq!(
            plan.actions,
            vec![plan::TeamAction {
                version: "2.0.0".into(),
                component: "extra".into(),
                changed: "core now calls extra::init(config) instead of extra::start()".into(),
                action: "rename start to init in your copy of src/pg.rs and take the config".into(),
            }]
        );
    }
}
