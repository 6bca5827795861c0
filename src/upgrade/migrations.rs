//! The migrations of an upgrade: which ones it applies or skips (against the service's ledger),
//! and their structured edits with file globs compiled once.

use globset::GlobMatcher;
use semver::Version;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::{Manifest, MigrationStatus};
use crate::template::Template;
use crate::template::release::{Edit, path_glob};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationAction {
    Apply,
    Skip,
    AlreadyApplied,
    AlreadySkipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationStep {
    pub id: String,
    pub version: String,
    pub description: String,
    pub required: bool,
    pub action: MigrationAction,
}

/// A structured edit of a migration this upgrade applies, its file glob compiled once.
pub(super) struct MigrationEdit<'a> {
    pub step: &'a MigrationStep,
    /// The glob as the release wrote it (`config/*.toml`).
    pub pattern: &'a str,
    pub files: GlobMatcher,
    pub from: &'a str,
    pub to: &'a str,
}

/// The structured edits of the migrations this upgrade applies, globs compiled (an invalid one
/// is an error naming it).
pub(super) fn compiled_edits<'a>(
    template: &'a Template,
    migrations: &'a [MigrationStep],
) -> Result<Vec<MigrationEdit<'a>>> {
    let mut out = Vec::new();
    for step in migrations
        .iter()
        .filter(|m| m.action == MigrationAction::Apply)
    {
        let Some((_, meta)) = template.migration(&step.id) else {
            continue;
        };
        for edit in &meta.edits {
            let Edit::RenameKey { files, from, to } = edit;
            let matcher = path_glob(files).map_err(|e| {
                Error::new(format!(
                    "migration `{}` of template {}: files `{files}` is not a valid glob: {e}",
                    step.id, template.name
                ))
                .hint("this is a defect in the template release; skip the migration with --skip, or report it to the platform team")
            })?;
            out.push(MigrationEdit {
                step,
                pattern: files,
                files: matcher.compile_matcher(),
                from,
                to,
            });
        }
    }
    Ok(out)
}

/// What this upgrade does with each migration of the releases after `from` up to `to`.
pub(super) fn migration_steps(
    template: &Template,
    manifest: &Manifest,
    from: &Version,
    to: &Version,
    skip: &[String],
) -> Result<Vec<MigrationStep>> {
    let mut steps = Vec::new();
    for (release, m) in template.migrations_between(from, to) {
        let recorded = manifest.migrations.iter().find(|r| r.id == m.id);
        let action = match recorded {
            Some(r) if r.status == MigrationStatus::Skipped => MigrationAction::AlreadySkipped,
            Some(_) => MigrationAction::AlreadyApplied,
            None if skip.contains(&m.id) => MigrationAction::Skip,
            None => MigrationAction::Apply,
        };
        steps.push(MigrationStep {
            id: m.id.clone(),
            version: release.version.to_string(),
            description: m.description.clone(),
            required: m.required,
            action,
        });
    }
    for id in skip {
        if !steps.iter().any(|s| &s.id == id) {
            let pending: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
            return Err(
                Error::new(format!("--skip {id}: no such migration in this upgrade")).hint(
                    if pending.is_empty() {
                        "this upgrade has no migrations".to_string()
                    } else {
                        format!("migrations in this upgrade: {}", pending.join(", "))
                    },
                ),
            );
        }
    }
    Ok(steps)
}

/// The directory part of a glob before its first wildcard (`config/*.toml` → `config`).
pub(super) fn literal_dir(pattern: &str) -> String {
    let literal: Vec<&str> = pattern
        .split('/')
        .take_while(|seg| !seg.contains(['*', '?', '[', '{']))
        .collect();
    let n = literal
        .len()
        .min(pattern.split('/').count().saturating_sub(1));
    literal[..n].join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_dir_of_globs() {
        assert_eq!(literal_dir("config/*.toml"), "config");
        assert_eq!(literal_dir("*.toml"), "");
        assert_eq!(literal_dir("a/b/**/x.toml"), "a/b");
        assert_eq!(literal_dir("config/local.toml"), "config");
    }
}
