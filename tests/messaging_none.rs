//! Service 3.1.0 adds messaging behind the question `messaging` (default `none`): a service
//! that does not choose it renders exactly what 3.0.0 rendered, release metadata aside, whether
//! it is new or upgraded from 1.0.0.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use cargo_platform::template::Catalogue;
use cargo_platform::template::answers::{self, Given};
use cargo_platform::template::release::Mode;
use cargo_platform::template::render::{self, FileSet};
use common::{describe, platform, scratch};

const BEFORE: &str = "3.0.0";
const MESSAGING: &str = "3.1.0";

fn given(pairs: &[(&str, &str)]) -> Vec<Given> {
    pairs
        .iter()
        .map(|(key, value)| Given {
            key: (*key).to_owned(),
            value: toml::Value::String((*value).to_owned()),
            origin: "test".into(),
        })
        .collect()
}

fn render_at(version: &str, pairs: &[(&str, &str)]) -> FileSet {
    let catalogue = Catalogue::load().expect("embedded templates load");
    let template = catalogue.get("service").expect("service template");
    let release = template.release(version).expect("release");
    let spec = template.spec(&release.version).expect("spec");
    let resolved = answers::resolve(&spec.questions, &given(pairs), None).expect("answers");
    render::render(&spec, "orders", &resolved).expect("render")
}

/// The only difference a release may make to a file it does not change: the version it names.
fn as_before(contents: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(contents)
        .replace(MESSAGING, BEFORE)
        .into_bytes()
}

#[test]
fn messaging_none_renders_what_3_0_0_rendered_for_every_idempotency_store() {
    for store in ["memory", "postgres", "redis"] {
        let before = render_at(BEFORE, &[("owner", "team-a"), ("idempotency_store", store)]);
        for answers in [
            vec![("owner", "team-a"), ("idempotency_store", store)],
            vec![
                ("owner", "team-a"),
                ("idempotency_store", store),
                ("messaging", "none"),
            ],
        ] {
            let after = render_at(MESSAGING, &answers);
            assert_eq!(
                after.keys().collect::<Vec<_>>(),
                before.keys().collect::<Vec<_>>(),
                "{answers:?}: the set of files differs from {BEFORE}'s"
            );
            for (path, file) in &after {
                let old = &before[path];
                assert_eq!(
                    (&file.component, file.mode),
                    (&old.component, old.mode),
                    "{path}"
                );
                assert!(
                    as_before(&file.contents) == old.contents,
                    "{answers:?}: {path} differs from {BEFORE}'s render beyond the version:\n{}",
                    String::from_utf8_lossy(&file.contents)
                );
            }
        }
    }
}

#[test]
fn messaging_nats_renders_the_component_and_none_does_not() {
    let nats = render_at(MESSAGING, &[("owner", "team-a"), ("messaging", "nats")]);
    let none = render_at(MESSAGING, &[("owner", "team-a")]);
    let messaging_files = |files: &FileSet| -> Vec<String> {
        files
            .iter()
            .filter(|(_, f)| f.component == "messaging")
            .map(|(path, _)| path.clone())
            .collect()
    };
    assert!(messaging_files(&none).is_empty());
    assert_eq!(
        messaging_files(&nats),
        [
            "src/platform/messaging/broker.rs",
            "src/platform/messaging/consumer.rs",
            "src/platform/messaging/mod.rs",
            "src/platform/messaging/nats.rs",
            "tests/messaging.rs",
        ]
    );
    let text =
        |files: &FileSet, path: &str| String::from_utf8(files[path].contents.clone()).unwrap();
    assert!(text(&nats, "Cargo.toml").contains("async-nats"));
    assert!(text(&nats, "config/default.toml").contains("[messaging]"));
    assert!(!text(&none, "Cargo.toml").contains("async-nats"));
    assert!(!text(&none, "config/default.toml").contains("[messaging]"));
}

fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == ".git" || rel == "platform.toml" {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

/// The check: 1.0.0 straight to 3.1.0 with messaging=none renders nothing of it; the
/// result is what `new` gives at 3.1.0.
#[test]
fn upgrade_from_1_0_0_to_3_1_0_with_messaging_none_renders_nothing_of_it() {
    let tmp = scratch();
    let run = |cwd: &Path, args: &[&str]| {
        let out = platform(cwd)
            .args(args)
            .env("CARGO_PLATFORM_TODAY", "2026-12-02")
            .output()
            .expect("run");
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
    };
    let upgraded = tmp.path().join("up");
    let fresh = tmp.path().join("fresh");
    for (dir, version) in [(&upgraded, "1.0.0"), (&fresh, MESSAGING)] {
        std::fs::create_dir_all(dir).unwrap();
        run(
            dir,
            &[
                "new",
                "orders",
                "--set",
                "owner=team-a",
                "--template-version",
                version,
                "--yes",
            ],
        );
    }
    let service = upgraded.join("orders");
    run(&service, &["upgrade", "--to", MESSAGING, "--commit"]);
    let after = tree(&service);
    assert!(
        after.keys().all(|path| !path.contains("messaging")),
        "{:?}",
        after.keys().collect::<Vec<_>>()
    );
    for (path, contents) in &after {
        let text = String::from_utf8_lossy(contents);
        assert!(
            !text.contains("async-nats") && !text.contains("[messaging]"),
            "{path}"
        );
    }
    let fresh = tree(&fresh.join("orders"));
    let modes = render_at(MESSAGING, &[("owner", "team-a")]);
    let paths: std::collections::BTreeSet<&String> = after.keys().chain(fresh.keys()).collect();
    for path in paths {
        if after.get(path) == fresh.get(path) {
            continue;
        }
        // Seeded files are the team's: written once by `new` (1.0.0's here), never upgraded.
        assert!(
            modes.get(path).is_some_and(|f| f.mode == Mode::Seeded),
            "{path} differs from a fresh `new` at {MESSAGING}"
        );
    }
    let manifest = std::fs::read_to_string(service.join("platform.toml")).unwrap();
    assert!(manifest.contains("messaging = \"none\""), "{manifest}");
}

/// Turning messaging on later: `add messaging --set messaging=nats` on a 3.1.0 service gives
/// what `new --set messaging=nats` gives, but for the example's event wiring (seeded, for new
/// services only), and its config keeps the team's seeded `[items]` valid.
#[test]
fn add_messaging_nats_brings_what_new_renders_but_the_seeded_example_wiring() {
    let tmp = scratch();
    let run = |cwd: &Path, args: &[&str]| {
        let out = platform(cwd).args(args).output().expect("run");
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
    };
    let (added, fresh) = (tmp.path().join("added"), tmp.path().join("fresh"));
    for (dir, messaging) in [(&added, "messaging=none"), (&fresh, "messaging=nats")] {
        std::fs::create_dir_all(dir).unwrap();
        run(
            dir,
            &[
                "new",
                "orders",
                "--set",
                "owner=team-a",
                "--set",
                messaging,
                "--template-version",
                MESSAGING,
                "--yes",
            ],
        );
    }
    let service = added.join("orders");
    run(&service, &["add", "messaging", "--set", "messaging=nats"]);
    let after = tree(&service);
    let fresh = tree(&fresh.join("orders"));
    let modes = render_at(MESSAGING, &[("owner", "team-a"), ("messaging", "nats")]);
    let paths: std::collections::BTreeSet<&String> = after.keys().chain(fresh.keys()).collect();
    let mut differ = Vec::new();
    for path in paths {
        if after.get(path) != fresh.get(path) {
            assert!(
                modes.get(path).is_some_and(|f| f.mode == Mode::Seeded),
                "{path} differs from a fresh `new --set messaging=nats`"
            );
            differ.push(path.as_str());
        }
    }
    assert_eq!(
        differ,
        [
            "src/app/items/events.rs",
            "src/app/items/handlers.rs",
            "src/app/items/mod.rs",
            "src/app/mod.rs",
            "tests/items_events.rs",
        ],
        "only the example's wiring is new services' alone"
    );
    assert!(!after.contains_key("tests/items_events.rs"));
    let config = String::from_utf8(after["config/default.toml"].clone()).unwrap();
    let items: toml::Table = config.parse::<toml::Table>().unwrap()["items"]
        .as_table()
        .cloned()
        .unwrap();
    assert_eq!(
        items.keys().collect::<Vec<_>>(),
        ["create_delay_ms"],
        "the seeded ItemsConfig (deny_unknown_fields) reads exactly these"
    );
}
