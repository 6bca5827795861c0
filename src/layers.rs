//! Layers point down: commands → domain (template, upgrade, policy, manifest) → IO (fsx,
//! journal, git). A test, reading the sources, that no module reaches up a layer.

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk src"))
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.into_path())
        .collect()
}

/// `(file, line)` for every line of a module that names a forbidden path.
fn violations(files: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if let Some(f) = forbidden.iter().find(|f| code.contains(*f)) {
                out.push(format!("{}:{}: uses {f}", file.display(), n + 1));
            }
        }
    }
    out
}

#[test]
fn no_module_depends_on_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let commands = [
        "crate::commands",
        "super::commands",
        "crate::ui",
        "inquire::",
    ];
    let domain: Vec<PathBuf> = ["template", "upgrade", "manifest"]
        .iter()
        .flat_map(|d| sources(&src.join(d)))
        .chain(
            ["policy.rs", "manifest.rs", "service.rs"]
                .iter()
                .map(|f| src.join(f)),
        )
        .collect();
    let io: Vec<PathBuf> = sources(&src.join("git"))
        .into_iter()
        .chain(
            ["fsx.rs", "journal.rs", "workspace.rs"]
                .iter()
                .map(|f| src.join(f)),
        )
        .collect();
    let mut found = violations(&domain, &commands);
    let mut io_forbidden = commands.to_vec();
    io_forbidden.extend(["crate::upgrade", "crate::template", "crate::policy"]);
    found.extend(violations(&io, &io_forbidden));
    assert!(
        found.is_empty(),
        "upward dependencies:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_git_layer_uses_git2() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let git = src.join("git");
    let outside: Vec<PathBuf> = sources(&src)
        .into_iter()
        .filter(|f| !f.starts_with(&git) && !f.ends_with("layers.rs"))
        .collect();
    assert!(
        outside.iter().any(|f| f.ends_with("fleet/campaign.rs")),
        "the domain's sources are scanned"
    );
    // The crate by name, and its object database reached through a repository it handed out.
    let found = violations(&outside, &["git2", ".odb()", "mempack"]);
    assert!(
        found.is_empty(),
        "git2 outside src/git/ (CONTRIBUTING: src/git/ is the only git layer):\n{}",
        found.join("\n")
    );
}
