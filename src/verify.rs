//! `upgrade --verify`: runs `cargo check --all-targets` in a service and keeps the compiler's
//! first errors for the report.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};

/// The command the verification runs, as the report names it.
pub const COMMAND: &str = "cargo check --all-targets";

/// How many lines of the compiler's errors a failed check reports.
const SHOWN_LINES: usize = 12;

/// What the check found.
#[derive(Debug)]
pub struct Checked {
    pub passed: bool,
    /// The first error lines (with their `-->` locations) when it failed.
    pub first_errors: Vec<String>,
}

/// Runs `cargo check --all-targets` in `root`: the cargo that runs us (`CARGO`), else `cargo`
/// on PATH. `CARGO_TARGET_DIR` and the rest of the environment pass through.
pub fn cargo_check(root: &Path) -> Result<Checked> {
    cargo_check_with_target(root, None)
}

/// [`cargo_check`] with `CARGO_TARGET_DIR` set to `target_dir` when given (a campaign shares one
/// target directory across all its services).
pub fn cargo_check_with_target(root: &Path, target_dir: Option<&Path>) -> Result<Checked> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command.args(["check", "--all-targets"]).current_dir(root);
    if let Some(dir) = target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    let out = command.output().map_err(|e| {
        Error::new(format!(
            "cannot run `{} check --all-targets` in {}: {e}",
            Path::new(&cargo).display(),
            root.display()
        ))
    })?;
    Ok(Checked {
        passed: out.status.success(),
        first_errors: first_errors(&String::from_utf8_lossy(&out.stderr)),
    })
}

/// The first error messages and their locations, without the source excerpts in between.
fn first_errors(stderr: &str) -> Vec<String> {
    let mut lines: Vec<String> = stderr
        .lines()
        .filter(|l| l.starts_with("error") || l.trim_start().starts_with("-->"))
        .map(|l| l.trim_end().to_string())
        .take(SHOWN_LINES)
        .collect();
    if lines.is_empty() {
        // Not a compiler error (a missing toolchain, a broken manifest): show its last words.
        let all: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        lines = all[all.len().saturating_sub(SHOWN_LINES)..]
            .iter()
            .map(|l| l.to_string())
            .collect();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_errors_and_locations_and_drops_the_excerpts() {
        let stderr = "    Checking orders v0.1.0\nerror[E0308]: mismatched types\n  --> src/a.rs:38:16\n   |\n38 |     sign(&x)\n   |          ^^ expected `&str`\n\nerror: could not compile `orders` (lib) due to 1 previous error\n";
        assert_eq!(
            first_errors(stderr),
            vec![
                "error[E0308]: mismatched types",
                "  --> src/a.rs:38:16",
                "error: could not compile `orders` (lib) due to 1 previous error"
            ]
        );
        assert_eq!(first_errors("some failure\n\n"), vec!["some failure"]);
    }
}
