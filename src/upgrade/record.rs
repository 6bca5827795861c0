//! The manifest after an upgrade: version, answers, components, file records and the ledger.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;

use super::files::Planner;
use super::migrations::{MigrationAction, MigrationStep};
use super::plan::{Options, Status};
use crate::manifest::{
    ComponentRecord, ComponentState, FileCounts, FileRecord, Manifest, MigrationRecord,
    MigrationStatus, Source, UpgradeEvent,
};
use crate::template::answers::Answers;
use crate::template::render::{FileSet, sha256_hex};

/// Records `--eject` components as ejected (keeping an earlier ejection's record).
pub(super) fn eject_components(m: &mut Manifest, eject: &[String], today: jiff::civil::Date) {
    for c in eject {
        let record = m.components.entry(c.clone()).or_insert(ComponentRecord {
            state: ComponentState::Managed,
            reason: None,
            date: None,
        });
        if record.state != ComponentState::Ejected {
            *record = ComponentRecord {
                state: ComponentState::Ejected,
                reason: Some("ejected by cargo platform upgrade --eject".into()),
                date: Some(today),
            };
        }
    }
}

#[allow(clippy::too_many_arguments)]
/// The manifest after the upgrade: version, answers, components, the hashes of what the
/// platform wrote, and the migration ledger. Every component of the target release is
/// recorded, as `new` records them, including one the answers render no file of (a release's
/// new component behind a choice left off).
pub(super) fn updated_manifest(
    manifest: &Manifest,
    new: &FileSet,
    target_components: &[String],
    new_answers: &Answers,
    ejected: &BTreeSet<String>,
    opts: &Options,
    to: &Version,
    migrations: &[MigrationStep],
    planner: &Planner<'_>,
) -> Manifest {
    let mut m = rendered_manifest(
        manifest,
        new,
        target_components,
        new_answers,
        ejected,
        &opts.eject,
        opts.today,
        planner,
    );
    m.version = to.clone();
    let mut event = UpgradeEvent {
        date: opts.today,
        from: manifest.version.clone(),
        to: to.clone(),
        tool_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        files: Some(file_counts(planner)),
        migrations_applied: Vec::new(),
        migrations_skipped: Vec::new(),
        source: Source::Recorded,
    };
    for step in migrations {
        let status = match step.action {
            MigrationAction::Apply => MigrationStatus::Applied,
            MigrationAction::Skip => MigrationStatus::Skipped,
            _ => continue,
        };
        match status {
            MigrationStatus::Applied => event.migrations_applied.push(step.id.clone()),
            MigrationStatus::Skipped => event.migrations_skipped.push(step.id.clone()),
        }
        m.migrations.push(MigrationRecord {
            id: step.id.clone(),
            status,
            date: opts.today,
        });
    }
    m.history.upgrades.push(event);
    m
}

/// The manifest after writing `new` (rendered with `new_answers`), shared by `upgrade` and `add`:
/// the answers, the components (those of `new`'s files and `target_components`; `eject` ones
/// recorded as ejected), and the hashes of what the platform wrote. The version and the history
/// are the caller's.
#[allow(clippy::too_many_arguments)]
pub(super) fn rendered_manifest(
    manifest: &Manifest,
    new: &FileSet,
    target_components: &[String],
    new_answers: &Answers,
    ejected: &BTreeSet<String>,
    eject: &[String],
    today: jiff::civil::Date,
    planner: &Planner<'_>,
) -> Manifest {
    let mut m = manifest.clone();
    m.tool_version = env!("CARGO_PKG_VERSION").to_string();
    m.answers = new_answers.clone();
    for name in new
        .values()
        .map(|f| f.component.clone())
        .chain(target_components.iter().cloned())
        .chain(manifest.components.keys().cloned())
    {
        m.components.entry(name).or_insert(ComponentRecord {
            state: ComponentState::Managed,
            reason: None,
            date: None,
        });
    }
    eject_components(&mut m, eject, today);
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
    m
}

/// The upgrade's files by outcome: written as the template has them (new, updated, renamed,
/// deleted), merged with the team's edits, or left in conflict.
pub(super) fn file_counts(planner: &Planner<'_>) -> FileCounts {
    let mut counts = FileCounts::default();
    for e in &planner.entries {
        match e.status {
            Status::New | Status::Updated | Status::Renamed | Status::Deleted => {
                counts.updated += 1
            }
            Status::Merged => counts.merged += 1,
            Status::Conflict => counts.conflicts += 1,
            Status::Unchanged | Status::Kept | Status::Ejected | Status::Excluded => {}
        }
    }
    counts
}
