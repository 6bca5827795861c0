//! The manifest after an upgrade: version, answers, components, file records and the ledger.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;

use super::files::Planner;
use super::migrations::{MigrationAction, MigrationStep};
use super::plan::{Options, Status};
use crate::manifest::{
    ComponentRecord, ComponentState, FileRecord, Manifest, MigrationRecord, MigrationStatus,
};
use crate::template::answers::Answers;
use crate::template::render::{FileSet, sha256_hex};

/// Records `--eject` components as ejected (keeping an earlier ejection's record).
pub(super) fn eject_components(m: &mut Manifest, opts: &Options) {
    for c in &opts.eject {
        let record = m.components.entry(c.clone()).or_insert(ComponentRecord {
            state: ComponentState::Managed,
            reason: None,
            date: None,
        });
        if record.state != ComponentState::Ejected {
            *record = ComponentRecord {
                state: ComponentState::Ejected,
                reason: Some("ejected by cargo platform upgrade --eject".into()),
                date: Some(opts.today),
            };
        }
    }
}

#[allow(clippy::too_many_arguments)]
/// The manifest after the upgrade: version, answers, components, the hashes of what the
/// platform wrote, and the migration ledger.
pub(super) fn updated_manifest(
    manifest: &Manifest,
    new: &FileSet,
    new_answers: &Answers,
    ejected: &BTreeSet<String>,
    opts: &Options,
    to: &Version,
    migrations: &[MigrationStep],
    planner: &Planner<'_>,
) -> Manifest {
    let mut m = manifest.clone();
    m.version = to.clone();
    m.tool_version = env!("CARGO_PKG_VERSION").to_string();
    m.answers = new_answers.clone();
    for name in new
        .values()
        .map(|f| f.component.clone())
        .chain(manifest.components.keys().cloned())
    {
        m.components.entry(name).or_insert(ComponentRecord {
            state: ComponentState::Managed,
            reason: None,
            date: None,
        });
    }
    eject_components(&mut m, opts);
    // Excluded files were not written: their record stays what the platform last wrote there
    // (at the path they stay at), so `status` does not report them as the team's edits.
    let excluded: Vec<(&str, &str)> = planner
        .entries
        .iter()
        .filter(|e| e.status == Status::Excluded)
        .map(|e| (e.from.as_deref().unwrap_or(&e.path), e.path.as_str()))
        .collect();
    let mut files = BTreeMap::new();
    for (path, record) in &manifest.files {
        if ejected.contains(&record.component) || excluded.iter().any(|(p, _)| p == path) {
            files.insert(path.clone(), record.clone());
        }
    }
    for (path, f) in new {
        if ejected.contains(&f.component) {
            continue;
        }
        if planner.not_ours.contains(path) || excluded.iter().any(|(_, q)| q == path) {
            continue;
        }
        files.insert(
            path.clone(),
            FileRecord {
                component: f.component.clone(),
                mode: f.mode,
                sha256: sha256_hex(&f.contents),
            },
        );
    }
    m.files = files;
    for step in migrations {
        let status = match step.action {
            MigrationAction::Apply => MigrationStatus::Applied,
            MigrationAction::Skip => MigrationStatus::Skipped,
            _ => continue,
        };
        m.migrations.push(MigrationRecord {
            id: step.id.clone(),
            status,
            date: opts.today,
        });
    }
    m
}
