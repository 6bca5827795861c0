//! Planning an upgrade: from the manifest, the old and new renders and the files on disk, decide
//! what happens to every file. Pure: reads come through [`Disk`], nothing is written here.
//!
//! This module walks the hops and renders; the concerns live beside it: which migrations run
//! (`migrations`), what happens to each file (`files`), how conflicts are left (`conflicts`) and
//! the manifest afterwards (`record`).

use std::collections::{BTreeMap, BTreeSet};

use globset::{GlobSet, GlobSetBuilder};
use semver::Version;
use serde::Serialize;

use super::conflicts::Style;
use super::files::Planner;
pub use super::migrations::{MigrationAction, MigrationStep};
use super::migrations::{compiled_edits, migration_steps};
use super::record::{eject_components, updated_manifest};
use super::text::Labels;
pub use crate::fsx::Write;

use crate::error::{Error, Result};
use crate::manifest::{ComponentState, Manifest};
use crate::template::Template;
use crate::template::answers::{self, Given};
use crate::template::release::{Mode, path_glob};
use crate::template::render::{self, FileSet};

/// What the planner may read of the service.
pub trait Disk {
    /// The file at `path` (relative to the service root).
    fn read(&self, path: &str) -> Result<OnDisk>;
    /// Regular files under `dir` (relative, `/`-separated), recursively; `target/` and `.git/`
    /// are not entered.
    fn list(&self, dir: &str) -> Result<Vec<String>>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDisk {
    Missing,
    File(Vec<u8>),
    /// A symlink, directory or other non-regular entry: never touched.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictStyle {
    Markers,
    Reject,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub to: Option<Version>,
    pub skip: Vec<String>,
    pub exclude: Vec<String>,
    pub eject: Vec<String>,
    pub conflict: ConflictStyle,
    pub today: jiff::civil::Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    New,
    Unchanged,
    Updated,
    Merged,
    Conflict,
    Renamed,
    Deleted,
    Kept,
    Ejected,
    Excluded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Unchanged => "unchanged",
            Status::Updated => "updated",
            Status::Merged => "merged",
            Status::Conflict => "conflict",
            Status::Renamed => "renamed",
            Status::Deleted => "deleted",
            Status::Kept => "kept",
            Status::Ejected => "ejected",
            Status::Excluded => "excluded",
        }
    }
}

/// What happens to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub path: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Something the team must do by hand: a release this upgrade passes through declares a break
/// (`[[breaks]]` in its release.toml) in a component the service has ejected, so the team's copy
/// of that component no longer fits the new core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamAction {
    /// The release that declared the break.
    pub version: String,
    pub component: String,
    /// What changed.
    pub changed: String,
    /// What the team must do.
    pub action: String,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub from: Version,
    pub to: Version,
    /// Every release stepped through, oldest first (empty: already there).
    pub hops: Vec<Version>,
    pub migrations: Vec<MigrationStep>,
    pub entries: Vec<Entry>,
    /// Breaks in ejected components: the upgrade needs the team's attention (exit 3).
    pub actions: Vec<TeamAction>,
    /// File changes, in order; the manifest is written separately, last.
    pub writes: Vec<Write>,
    pub manifest: Manifest,
}

impl Plan {
    pub fn conflicts(&self) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.status == Status::Conflict)
            .collect()
    }

    pub fn is_noop(&self) -> bool {
        self.hops.is_empty()
    }
}

/// Plans the upgrade of `manifest`'s service (of `template`) as `opts` ask.
pub fn plan(
    template: &Template,
    manifest: &Manifest,
    disk: &dyn Disk,
    opts: &Options,
) -> Result<Plan> {
    let from = manifest.version.clone();
    let to = match &opts.to {
        Some(v) => template.release(&v.to_string())?.version.clone(),
        None => template.newest().version.clone(),
    };
    if to < from && opts.to.is_none() {
        return Err(Error::new(format!(
            "the service is on {} {from}, newer than the newest release {to}: {from} is a draft \
             (or no longer embedded in this cargo-platform), and a draft is never an upgrade's \
             default target",
            template.name
        ))
        .hint(format!(
            "nothing to upgrade to until {from} is released; a service rendered from a draft is \
             for trying it only (see `cargo platform templates`)"
        )));
    }
    if to < from {
        return Err(Error::new(format!(
            "cannot downgrade: the service is on {} {from}, --to asks for {to}",
            template.name
        ))
        .hint("upgrades only move forward; restore an older commit from git to go back"));
    }
    let hops: Vec<Version> = template
        .releases_between(&from, &to)
        .map(|r| r.version.clone())
        .collect();

    let old_spec = template.spec(&from)?;
    let new_spec = template.spec(&to)?;
    for c in &opts.eject {
        new_spec.check_ejectable(c)?;
    }
    let ejected: BTreeSet<String> = manifest
        .components
        .iter()
        .filter(|(_, c)| c.state == ComponentState::Ejected)
        .map(|(n, _)| n.clone())
        .chain(opts.eject.iter().cloned())
        .collect();
    let excludes = globs(&opts.exclude)?;

    let migrations = migration_steps(template, manifest, &from, &to, &opts.skip)?;
    let actions = team_actions(template, &hops, &ejected);

    if hops.is_empty() {
        let mut after = manifest.clone();
        eject_components(&mut after, &opts.eject, opts.today);
        return Ok(Plan {
            from,
            to,
            hops,
            migrations,
            entries: Vec::new(),
            actions,
            writes: Vec::new(),
            manifest: after,
        });
    }

    let given = recorded_answers(manifest);
    let old_answers = answers::resolve(&old_spec.questions, &given, None)?;
    let new_given: Vec<Given> = given
        .iter()
        .filter(|g| new_spec.questions.iter().any(|q| q.key == g.key))
        .cloned()
        .collect();
    let new_answers = answers::resolve(&new_spec.questions, &new_given, None).map_err(|e| {
        e.context(format!("{} {to} asks a new question", template.name))
            .hint("add the answer under [answers] in platform.toml, then run the upgrade again")
    })?;
    let old = render::render(&old_spec, &manifest.name, &old_answers)?;
    let new = render::render(&new_spec, &manifest.name, &new_answers)?;

    let renames = composed_renames(template, &from, &to);
    let edits = compiled_edits(template, &migrations)?;

    let mut planner = Planner {
        disk,
        ejected: &ejected,
        excludes: &excludes,
        edits: &edits,
        style: Style {
            conflict: opts.conflict,
            labels: Labels {
                ours: "yours".into(),
                theirs: format!("template {} {to}", template.name),
            },
            base: format!("template {} {from}", template.name),
        },
        entries: Vec::new(),
        writes: Vec::new(),
        not_ours: BTreeSet::new(),
    };
    merge_renders(&mut planner, manifest, &old, &new, &renames)?;

    let target_components: Vec<String> = new_spec.components.keys().cloned().collect();
    let manifest_after = updated_manifest(
        manifest,
        &new,
        &target_components,
        &new_answers,
        &ejected,
        opts,
        &to,
        &migrations,
        &planner,
    );
    let Planner {
        entries, writes, ..
    } = planner;
    Ok(Plan {
        from,
        to,
        hops,
        migrations,
        entries,
        actions,
        writes,
        manifest: manifest_after,
    })
}

/// The answers platform.toml records, as given answers (for [`answers::resolve`]).
pub(super) fn recorded_answers(manifest: &Manifest) -> Vec<Given> {
    manifest
        .answers
        .iter()
        .map(|(k, v)| Given {
            key: k.clone(),
            value: match v {
                answers::Answer::String(s) => toml::Value::String(s.clone()),
                answers::Answer::Bool(b) => toml::Value::Boolean(*b),
                answers::Answer::Int(i) => toml::Value::Integer(*i),
            },
            origin: format!("platform.toml [answers] {k}"),
        })
        .collect()
}

/// The per-file decisions `upgrade` and `add` share: base = `old` (the render the manifest's
/// hashes prove), theirs = `new`, ours = the files on disk; `renames` maps old paths to new.
pub(super) fn merge_renders(
    planner: &mut Planner<'_>,
    manifest: &Manifest,
    old: &FileSet,
    new: &FileSet,
    renames: &BTreeMap<String, String>,
) -> Result<()> {
    verify_base(manifest, old, planner)?;
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    for (p, base) in old {
        let q = renames
            .get(p.as_str())
            .map(String::as_str)
            .unwrap_or(p.as_str());
        match new.get(q) {
            Some(theirs) => {
                reached.insert(q);
                planner.both(p, q, base, theirs)?;
            }
            None => planner.removed_by_template(p, base)?,
        }
    }
    for (q, theirs) in new {
        if !reached.contains(q.as_str()) {
            planner.added_by_template(q, theirs)?;
        }
    }
    planner.team_toml_edits(old, new)
}

/// The breaks that the releases in `hops` declare for the ejected components, oldest first.
fn team_actions(
    template: &Template,
    hops: &[Version],
    ejected: &BTreeSet<String>,
) -> Vec<TeamAction> {
    template
        .releases
        .iter()
        .filter(|r| hops.contains(&r.version))
        .flat_map(|r| {
            r.meta
                .breaks
                .iter()
                .filter(|b| ejected.contains(&b.component))
                .map(|b| TeamAction {
                    version: r.version.to_string(),
                    component: b.component.clone(),
                    changed: b.changed.clone(),
                    action: b.action.clone(),
                })
        })
        .collect()
}

pub(super) fn globs(patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let glob = path_glob(p).map_err(|e| {
            Error::new(format!("--exclude {p}: not a valid glob: {e}"))
                .hint("e.g. --exclude 'src/platform/**'")
        })?;
        b.add(glob);
    }
    b.build().map_err(|e| Error::new(format!("--exclude: {e}")))
}

/// Old path → new path, composing every hop's renames in order.
fn composed_renames(template: &Template, from: &Version, to: &Version) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for release in template.releases_between(from, to) {
        for (from, to) in &release.meta.renamed {
            let mut hit = false;
            for target in map.values_mut() {
                if target == from {
                    *target = to.clone();
                    hit = true;
                }
            }
            if !hit {
                map.insert(from.clone(), to.clone());
            }
        }
    }
    map
}

/// The old render must reproduce the hashes the manifest recorded: that proves the merge base.
fn verify_base(manifest: &Manifest, old: &FileSet, planner: &Planner<'_>) -> Result<()> {
    let mut mismatched = Vec::new();
    for (path, record) in &manifest.files {
        if record.mode == Mode::Seeded
            || planner.ejected.contains(&record.component)
            || planner.excluded(path)
        {
            continue;
        }
        match old.get(path) {
            Some(f) if f.sha256() == record.sha256 => {}
            Some(_) => {
                mismatched.push(format!("{path}: the render differs from the recorded hash"))
            }
            None => mismatched.push(format!(
                "{path}: recorded, but {} does not render it",
                manifest.version
            )),
        }
    }
    if mismatched.is_empty() {
        return Ok(());
    }
    Err(Error::new(format!(
        "the merge base does not match what was generated: re-rendering {} {} with the recorded answers does not reproduce {} file(s):\n    {}",
        manifest.template,
        manifest.version,
        mismatched.len(),
        mismatched.join("\n    ")
    ))
    .hint("were [answers] or [files] in platform.toml edited by hand? restore platform.toml from git, or --exclude those paths"))
}
