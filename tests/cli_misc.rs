//! `templates`, `completions`, help, and the commands a later release implements.

mod common;

use common::{outcome, platform, scratch, tree};

#[test]
fn templates_lists_versions_components_and_changelog() {
    let dir = scratch();
    let out = platform(dir.path()).arg("templates").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", outcome(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("service — "), "{text}");
    assert!(
        text.contains("1.0.0 (") && text.contains("core (not ejectable)"),
        "{text}"
    );
    assert!(text.contains("    - Initial release"), "{text}");
    // A release's declared interface breaks are shown where teams read release notes.
    assert!(
        text.contains("    breaks ejected auth: core's config now holds `auth.hs256_secret`"),
        "{text}"
    );

    let out = platform(dir.path())
        .args(["templates", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let service = &v["templates"][0];
    assert_eq!(service["name"], "service");
    let versions = service["versions"].as_array().unwrap();
    // Newest first; the newest is the newest release that is not a draft.
    let released = versions
        .iter()
        .find(|v| v["draft"] == false)
        .expect("a released version");
    assert_eq!(service["newest"], released["version"]);
    assert_eq!(released["newest"], true);
    let v2 = versions.iter().find(|v| v["version"] == "2.0.0").unwrap();
    assert_eq!(v2["breaks"][0]["component"], "auth", "{v2}");
    assert!(
        v2["breaks"][0]["action"]
            .as_str()
            .unwrap()
            .contains("expose_secret")
    );
    let oldest = versions.last().unwrap();
    assert_eq!(oldest["version"], "1.0.0");
    let components: Vec<&str> = oldest["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for c in [
        "core",
        "logging",
        "tracing",
        "metrics",
        "auth",
        "flags",
        "idempotency",
    ] {
        assert!(components.contains(&c), "{c} in {components:?}");
    }
    assert!(
        oldest["questions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["key"] == "idempotency_store")
    );
}

#[test]
fn completions_for_every_shell() {
    let dir = scratch();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef cargo-platform"),
        ("fish", "complete -c cargo-platform"),
    ] {
        let out = platform(dir.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script:.200}");
        assert!(
            script.contains("upgrade") && script.contains("template-version"),
            "{shell}"
        );
    }
    let out = platform(dir.path())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_shows_the_whole_surface_and_direct_invocation_works() {
    let dir = scratch();
    let out = platform(dir.path()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "new",
        "upgrade",
        "eject",
        "status",
        "check",
        "add",
        "templates",
        "completions",
    ] {
        assert!(help.contains(cmd), "{cmd} in help");
    }
    let out = platform(dir.path())
        .args(["add", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "COMPONENT",
        "--set",
        "--dry-run",
        "--allow-dirty",
        "--abort",
        "--conflict",
        "--commit",
        "--format",
    ] {
        assert!(help.contains(flag), "{flag} in add help");
    }
    let out = platform(dir.path())
        .args(["upgrade", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--dry-run",
        "--to",
        "--skip",
        "--exclude",
        "--allow-dirty",
        "--abort",
        "--conflict",
        "--commit",
        "--eject",
    ] {
        assert!(help.contains(flag), "{flag} in upgrade help");
    }
    // `cargo-platform templates` (without the `platform` cargo passes) works too.
    let out = assert_cmd::Command::cargo_bin("cargo-platform")
        .unwrap()
        .arg("templates")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("service"));
}

#[test]
fn service_commands_outside_a_service_explain_and_change_nothing() {
    let dir = scratch();
    for args in [
        &["upgrade"][..],
        &["upgrade", "--abort"],
        &["eject", "auth"],
        &["status"],
        &["check"],
    ] {
        let out = platform(dir.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no platform.toml in"), "{args:?}: {err}");
        assert!(
            err.contains("hint: run this inside a service"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(tree(dir.path()), Vec::<String>::new());
}

/// The `cargo platform …` commands in the README's "Set up" and "Quickstart" blocks, as words
/// (after `cargo platform`), up to a `&&`, `;` or `#` comment.
fn readme_platform_commands() -> Vec<Vec<String>> {
    let readme = include_str!("../README.md");
    let mut commands = Vec::new();
    for section in ["## Set up", "## Quickstart"] {
        let start = readme
            .find(section)
            .unwrap_or_else(|| panic!("README has a `{section}` section"));
        let rest = &readme[start..];
        let block_start = rest.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
        let block = &rest[block_start..];
        let block = &block[..block.find("```").expect("the block ends")];
        for line in block.lines() {
            for part in line.split("&&") {
                let part = part.split('#').next().unwrap_or("").trim();
                let Some(args) = part.strip_prefix("cargo platform ") else {
                    continue;
                };
                assert!(
                    !args.contains(['"', '\'', '$', '`', '\\', ';', '|']),
                    "keep README commands plain words so this test can run them: {args}"
                );
                commands.push(args.split_whitespace().map(str::to_string).collect());
            }
        }
    }
    commands
}

#[test]
fn the_readme_set_up_commands_run_as_pasted_without_a_terminal() {
    let commands = readme_platform_commands();
    let news: Vec<&Vec<String>> = commands.iter().filter(|c| c[0] == "new").collect();
    assert!(
        news.len() >= 2,
        "the README's Set up and Quickstart blocks each run `cargo platform new`: {commands:?}"
    );
    for args in news {
        let dir = scratch();
        let out = platform(dir.path())
            .args(args)
            .write_stdin("")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "`cargo platform {}` as pasted from the README: {}",
            args.join(" "),
            outcome(&out)
        );
        assert!(dir.path().join(&args[1]).join("platform.toml").is_file());
    }
}
