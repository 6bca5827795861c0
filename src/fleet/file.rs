//! The fleet file (`--fleet FILE`): the repositories of a fleet, one `[[repository]]` table
//! each. Parsed and validated up front; a bad file is an error before anything is read.
//!
//! ```toml
//! [[repository]]
//! path = "clones/orders"      # required: relative to the fleet file's directory
//! ref = "main"                # optional: read from this git ref, without a checkout
//! services = ["services/*"]   # optional: globs of service directories in a monorepo
//! team = "payments"           # optional: overrides the services' `owner` answer
//! ```

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    #[serde(default)]
    repository: Vec<RawRepository>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepository {
    path: String,
    #[serde(rename = "ref")]
    reference: Option<String>,
    services: Option<Vec<String>>,
    team: Option<String>,
}

/// One repository of the fleet.
#[derive(Debug, Clone)]
pub struct Repository {
    /// Resolved against the fleet file's directory.
    pub path: PathBuf,
    pub reference: Option<String>,
    /// The service directories to read (relative to the repository root, `.` for the root);
    /// `None`: every `platform.toml` found.
    pub services: Option<Vec<ServiceGlob>>,
    pub team: Option<String>,
}

/// A glob of service directories, as written and compiled.
#[derive(Debug, Clone)]
pub struct ServiceGlob {
    pub pattern: String,
    pub matcher: GlobMatcher,
}

/// Parses a fleet file; `file` is where it was read from (relative paths in it are resolved
/// against its directory).
pub fn parse(text: &str, file: &Path) -> Result<Vec<Repository>> {
    let fix = "see golden-path.md section 10, \"The fleet\", for the fleet file's schema";
    let raw: RawFleet = toml::from_str(text).map_err(|e| {
        Error::new(format!("{} is not a valid fleet file: {e}", file.display())).hint(fix)
    })?;
    let base = file.parent().unwrap_or(Path::new(""));
    raw.repository
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let at = || {
                format!(
                    "{}: repository {} (path `{}`)",
                    file.display(),
                    i + 1,
                    r.path
                )
            };
            if r.path.trim().is_empty() {
                return Err(Error::new(format!("{}: `path` is empty", at())).hint(fix));
            }
            if r.reference.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err(Error::new(format!("{}: `ref` is empty", at())).hint(fix));
            }
            let services = r
                .services
                .map(|globs| {
                    globs
                        .into_iter()
                        .map(|pattern| {
                            let glob = GlobBuilder::new(&pattern)
                                .literal_separator(true)
                                .build()
                                .map_err(|e| {
                                Error::new(format!(
                                    "{}: `services` glob `{pattern}` is invalid: {e}",
                                    at()
                                ))
                                .hint(fix)
                            })?;
                            Ok(ServiceGlob {
                                matcher: glob.compile_matcher(),
                                pattern,
                            })
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .transpose()?;
            Ok(Repository {
                path: base.join(&r.path),
                reference: r.reference,
                services,
                team: r.team,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_file_and_every_key_is_read() {
        let text = r#"
[[repository]]
path = "clones/orders"

[[repository]]
path = "mono"
ref = "main"
services = ["services/*"]
team = "payments"
"#;
        let repos = parse(text, Path::new("fleet/fleet.toml")).unwrap();
        assert_eq!(repos.len(), 2);
        assert_eq!(repos[0].path, Path::new("fleet/clones/orders"));
        assert!(repos[0].reference.is_none() && repos[0].services.is_none());
        assert_eq!(repos[1].reference.as_deref(), Some("main"));
        assert_eq!(repos[1].team.as_deref(), Some("payments"));
        let globs = repos[1].services.as_ref().unwrap();
        assert!(globs[0].matcher.is_match("services/orders"));
        assert!(!globs[0].matcher.is_match("services/orders/nested"));
    }

    #[test]
    fn unknown_keys_and_bad_globs_are_errors_naming_the_entry() {
        let err = parse(
            "[[repository]]\npath = \"a\"\nbranch = \"x\"\n",
            Path::new("f.toml"),
        )
        .unwrap_err();
        assert!(
            err.message.contains("f.toml") && err.message.contains("branch"),
            "{err}"
        );
        let err = parse(
            "[[repository]]\npath = \"a\"\nservices = [\"[\"]\n",
            Path::new("f.toml"),
        )
        .unwrap_err();
        assert!(
            err.message.contains("repository 1") && err.message.contains("`[`"),
            "{err}"
        );
        let err = parse("[[repository]]\npath = \"\"\n", Path::new("f.toml")).unwrap_err();
        assert!(err.message.contains("`path` is empty"), "{err}");
    }
}
