//! Released versions are frozen: every release of every template matches its entry in
//! `templates/releases.lock` (see `cargo_platform::template::frozen` for what is fingerprinted).
//! A new release fails until it is recorded with
//! `RELEASES_LOCK_BLESS=1 cargo test --test released_versions released_versions_match_the_lock`,
//! which only adds entries.
//!
//! The check reads the templates from disk: `templates/` of this repository, or the directory in
//! `CARGO_PLATFORM_TEMPLATE_DIR` (the lock is `releases.lock` at its root). The other tests here
//! run it in a child process against a copy of `templates/` they change, and read what an
//! author would read.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use cargo_platform::template::frozen::{self, BLESS_ENV, LOCK_FILE};
use cargo_platform::template::{Catalogue, TEMPLATE_DIR_ENV};

fn templates_dir() -> PathBuf {
    match std::env::var_os(TEMPLATE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
    }
}

#[test]
fn released_versions_match_the_lock() {
    let dir = templates_dir();
    let catalogue = Catalogue::from_disk(&dir).unwrap_or_else(|e| panic!("{e}"));
    let lock = dir.join(LOCK_FILE);
    let text = match std::fs::read_to_string(&lock) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => panic!("read {}: {e}", lock.display()),
    };
    let mut problems = frozen::check(&catalogue, &text).unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os(BLESS_ENV).is_some() {
        let blessed = frozen::bless(&text, &problems).unwrap_or_else(|e| panic!("{e}"));
        if blessed != text {
            std::fs::write(&lock, &blessed)
                .unwrap_or_else(|e| panic!("write {}: {e}", lock.display()));
        }
        problems.retain(|p| !matches!(p, frozen::Problem::Unlocked { .. }));
    }
    let report: Vec<String> = problems.iter().map(|p| format!("- {p}")).collect();
    assert!(
        problems.is_empty(),
        "{} does not match the templates:\n{}",
        lock.display(),
        report.join("\n")
    );
}

/// A copy of this repository's `templates/` (lock included) to change.
fn copy_of_templates() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let tmp = common::scratch();
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.expect("walk templates");
        let to = tmp
            .path()
            .join(entry.path().strip_prefix(&src).expect("prefix"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
    tmp
}

/// `released_versions_match_the_lock`, run by this test binary in a child process on `dir`.
fn check_in_child(dir: &Path, bless: bool) -> Output {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["released_versions_match_the_lock", "--exact", "--nocapture"])
        .env(TEMPLATE_DIR_ENV, dir)
        .env_remove(BLESS_ENV);
    if bless {
        cmd.env(BLESS_ENV, "1");
    }
    cmd.output().expect("run the test binary")
}

/// What the author reads: the child's stdout and stderr.
fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn append(path: &Path, text: &str) {
    let mut was = std::fs::read_to_string(path).expect("read");
    was.push_str(text);
    std::fs::write(path, was).expect("write");
}

fn replace(path: &Path, from: &str, to: &str) {
    let was = std::fs::read_to_string(path).expect("read");
    assert_eq!(
        was.matches(from).count(),
        1,
        "{}: one `{from}`",
        path.display()
    );
    std::fs::write(path, was.replacen(from, to, 1)).expect("write");
}

#[test]
fn the_unchanged_copy_passes() {
    let tmp = copy_of_templates();
    let out = check_in_child(tmp.path(), false);
    assert!(out.status.success(), "{}", said(&out));
}

#[test]
fn changing_a_released_file_fails_saying_to_cut_a_new_release() {
    let tmp = copy_of_templates();
    append(
        &tmp.path().join("service/1.0.0/files/src/main.rs"),
        "// a fix\n",
    );
    let out = check_in_child(tmp.path(), false);
    assert!(!out.status.success(), "{}", said(&out));
    let text = said(&out);
    // The release to cut instead: the newest's patch + 1 (3.1.1 while 3.1.0 is the newest).
    let catalogue = Catalogue::from_disk(&templates_dir()).unwrap_or_else(|e| panic!("{e}"));
    let newest = &catalogue.get("service").expect("service").newest().version;
    let next = format!("{}.{}.{}", newest.major, newest.minor, newest.patch + 1);
    assert!(
        text.contains("template `service` 1.0.0 changed after its release")
            && text.contains("Released versions are frozen")
            && text.contains(&format!(
                "cut a new release instead: create templates/service/{next}/"
            ))
            && text.contains("git checkout -- templates/service/1.0.0"),
        "{text}"
    );
    // Blessing does not take a changed release: it stays failing, the lock unchanged.
    let lock = tmp.path().join(LOCK_FILE);
    let before = std::fs::read(&lock).expect("lock");
    let out = check_in_child(tmp.path(), true);
    assert!(!out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("changed after its release"));
    assert_eq!(std::fs::read(&lock).expect("lock"), before);
}

#[test]
fn adding_renaming_or_deleting_a_file_of_a_released_version_fails() {
    type Change = fn(&Path);
    let changes: [(&str, Change); 3] = [
        ("a new file", |t| {
            std::fs::write(t.join("service/2.0.0/files/src/extra.rs"), "// new\n").expect("write")
        }),
        ("a renamed file", |t| {
            std::fs::rename(
                t.join("service/2.0.0/files/tests/audit.rs"),
                t.join("service/2.0.0/files/tests/audit_events.rs"),
            )
            .expect("rename")
        }),
        ("a deleted file", |t| {
            std::fs::remove_file(t.join("service/2.1.0/files/docs/platform.md")).expect("rm")
        }),
    ];
    for (what, change) in changes {
        let tmp = copy_of_templates();
        change(tmp.path());
        let out = check_in_child(tmp.path(), false);
        assert!(!out.status.success(), "{what}: {}", said(&out));
        assert!(
            said(&out).contains("changed after its release")
                || said(&out).contains("has no [files."),
            "{what}: {}",
            said(&out)
        );
    }
}

#[test]
fn changing_what_release_toml_renders_fails() {
    for (version, from, to) in [
        ("1.0.0", "default = 8080", "default = 8081"),
        (
            "1.0.0",
            "[files.\"src/main.rs\"]\ncomponent = \"core\"\nmode = \"managed\"",
            "[files.\"src/main.rs\"]\ncomponent = \"core\"\nmode = \"seeded\"",
        ),
        (
            "2.0.0",
            "to = \"idempotency.record_ttl_secs\"",
            "to = \"idempotency.record_ttl\"",
        ),
    ] {
        let tmp = copy_of_templates();
        replace(
            &tmp.path().join(format!("service/{version}/release.toml")),
            from,
            to,
        );
        let out = check_in_child(tmp.path(), false);
        assert!(!out.status.success(), "{from} -> {to}: {}", said(&out));
        assert!(
            said(&out).contains(&format!(
                "template `service` {version} changed after its release"
            )),
            "{}",
            said(&out)
        );
    }
}

#[test]
fn changelog_support_window_and_prose_of_a_released_version_may_change() {
    let tmp = copy_of_templates();
    let v1 = tmp.path().join("service/1.0.0/release.toml");
    replace(
        &v1,
        "end_of_support = \"2027-06-30\"",
        "end_of_support = \"2027-09-30\"",
    );
    replace(
        &v1,
        "changelog = [\n",
        "changelog = [\n  \"Support extended to 2027-09-30\",\n",
    );
    replace(
        &v1,
        "help = \"Port the HTTP server listens on\"",
        "help = \"TCP port the HTTP server listens on\"",
    );
    let v2 = tmp.path().join("service/2.0.0/release.toml");
    replace(
        &v2,
        "end_of_support = \"2027-09-30\"",
        "end_of_support = \"2027-12-31\"",
    );
    replace(&v2, "required = true", "required = false");
    replace(
        &v2,
        "action = \"in your copy,",
        "action = \"in your ejected copy,",
    );
    let out = check_in_child(tmp.path(), false);
    assert!(out.status.success(), "{}", said(&out));
}

/// Removes the draft releases of a copy of the templates: a draft is in no lock, and only the
/// newest release may be one, so a test that adds a newer release must drop it first.
fn without_drafts(root: &Path) {
    for release in std::fs::read_dir(root.join("service")).expect("read dir") {
        let dir = release.expect("entry").path();
        let meta = std::fs::read_to_string(dir.join("release.toml")).unwrap_or_default();
        if meta.lines().any(|line| line.trim() == "draft = true") {
            std::fs::remove_dir_all(&dir).expect("remove draft");
        }
    }
}

#[test]
fn a_new_release_fails_until_blessed_and_blessing_only_adds() {
    let tmp = copy_of_templates();
    without_drafts(tmp.path());
    let release = tmp.path().join("service/9.0.0");
    std::fs::create_dir_all(release.join("files/docs")).expect("mkdir");
    std::fs::write(
        release.join("release.toml"),
        "version = \"9.0.0\"\ndate = \"2026-12-24\"\nsummary = \"Docs\"\nchangelog = [\"docs\"]\n",
    )
    .expect("write");
    std::fs::write(release.join("files/docs/platform.md"), "# Platform\n").expect("write");

    let out = check_in_child(tmp.path(), false);
    assert!(!out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("template `service` 9.0.0 (sha256:")
            && said(&out).contains("is not in releases.lock")
            && said(&out).contains("RELEASES_LOCK_BLESS=1 cargo test --test released_versions"),
        "{}",
        said(&out)
    );

    let lock = tmp.path().join(LOCK_FILE);
    let before = std::fs::read_to_string(&lock).expect("lock");
    let out = check_in_child(tmp.path(), true);
    assert!(out.status.success(), "{}", said(&out));
    let after = std::fs::read_to_string(&lock).expect("lock");
    let added = after
        .strip_prefix(before.as_str())
        .unwrap_or_else(|| panic!("blessing rewrote the lock:\n{before}\n---\n{after}"));
    assert!(
        added.starts_with("\"9.0.0\" = \"sha256:") && added.lines().count() == 1,
        "{added:?}"
    );

    // Recorded: it passes without blessing, and is frozen from now on.
    let out = check_in_child(tmp.path(), false);
    assert!(out.status.success(), "{}", said(&out));
    append(&release.join("files/docs/platform.md"), "more\n");
    let out = check_in_child(tmp.path(), false);
    assert!(
        said(&out).contains("template `service` 9.0.0 changed after its release")
            && said(&out).contains("create templates/service/9.0.1/"),
        "{}",
        said(&out)
    );
}

#[test]
fn a_removed_release_fails() {
    let tmp = copy_of_templates();
    std::fs::remove_dir_all(tmp.path().join("service/2.1.0")).expect("rm");
    let out = check_in_child(tmp.path(), false);
    assert!(!out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("records template `service` 2.1.0, which the templates no longer have"),
        "{}",
        said(&out)
    );
}
