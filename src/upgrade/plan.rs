//! Planning an upgrade: from the manifest, the old and new renders and the files on disk, decide
//! what happens to every file. Pure: reads come through [`Disk`], nothing is written here.

use std::collections::{BTreeMap, BTreeSet};

use globset::{Glob, GlobSet, GlobSetBuilder};
use semver::Version;
use serde::Serialize;

use super::structured;
use super::text::{self, Labels, Merged};
use crate::error::{Error, Result};
use crate::manifest::{ComponentRecord, ComponentState, FileRecord, Manifest, MigrationRecord};
use crate::template::Template;
use crate::template::answers::{self, Answers, Given};
use crate::template::release::{Edit, Mode};
use crate::template::render::{self, FileSet, sha256_hex};

/// What the planner may read of the service.
pub trait Disk {
    /// The file at `path` (relative to the service root).
    fn read(&self, path: &str) -> Result<OnDisk>;
    /// Regular files directly inside `dir` (relative, `/`-separated), not recursive.
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
    pub today: String,
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

/// One change to the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put { path: String, contents: Vec<u8> },
    Remove { path: String },
}

impl Write {
    pub fn path(&self) -> &str {
        match self {
            Write::Put { path, .. } | Write::Remove { path } => path,
        }
    }
}

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
    if to < from {
        return Err(Error::new(format!(
            "cannot downgrade: the service is on {} {from}, --to asks for {to}",
            template.name
        ))
        .hint("upgrades only move forward; restore an older commit from git to go back"));
    }
    let hops: Vec<Version> = template
        .releases
        .iter()
        .map(|r| r.version.clone())
        .filter(|v| *v > from && *v <= to)
        .collect();

    let old_spec = template.spec(&from)?;
    let new_spec = template.spec(&to)?;
    for c in &opts.eject {
        crate::commands::new::check_ejectable(&new_spec, c)?;
    }
    let ejected: BTreeSet<String> = manifest
        .components
        .iter()
        .filter(|(_, c)| c.state == ComponentState::Ejected)
        .map(|(n, _)| n.clone())
        .chain(opts.eject.iter().cloned())
        .collect();
    let excludes = globs(&opts.exclude)?;

    let migrations = migration_steps(template, manifest, &hops, &opts.skip)?;
    let actions = team_actions(template, &hops, &ejected);

    if hops.is_empty() {
        let mut after = manifest.clone();
        eject_components(&mut after, opts);
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

    let given: Vec<Given> = manifest
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
        .collect();
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

    let renames = composed_renames(template, &hops);
    let edits: Vec<(&MigrationStep, &Edit)> = migrations
        .iter()
        .filter(|m| m.action == MigrationAction::Apply)
        .flat_map(|m| {
            template
                .releases
                .iter()
                .flat_map(|r| r.meta.migrations.iter())
                .filter(move |meta| meta.id == m.id)
                .flat_map(move |meta| meta.edits.iter().map(move |e| (m, e)))
        })
        .collect();

    let mut planner = Planner {
        disk,
        ejected: &ejected,
        excludes: &excludes,
        edits: &edits,
        labels: Labels {
            ours: "yours".into(),
            theirs: format!("template {} {to}", template.name),
        },
        conflict: opts.conflict,
        base_label: format!("template {} {from}", template.name),
        entries: Vec::new(),
        writes: Vec::new(),
        not_ours: BTreeSet::new(),
    };
    verify_base(manifest, &old, &planner)?;

    let mut reached: BTreeSet<&str> = BTreeSet::new();
    for (p, base) in &old {
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
    for (q, theirs) in &new {
        if !reached.contains(q.as_str()) {
            planner.added_by_template(q, theirs)?;
        }
    }
    planner.team_toml_edits(&old, &new)?;

    let manifest_after = updated_manifest(
        manifest,
        &new,
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

fn globs(patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let glob = Glob::new(p).map_err(|e| {
            Error::new(format!("--exclude {p}: not a valid glob: {e}"))
                .hint("e.g. --exclude 'src/platform/**'")
        })?;
        b.add(glob);
    }
    b.build().map_err(|e| Error::new(format!("--exclude: {e}")))
}

fn migration_steps(
    template: &Template,
    manifest: &Manifest,
    hops: &[Version],
    skip: &[String],
) -> Result<Vec<MigrationStep>> {
    let mut steps = Vec::new();
    for release in template
        .releases
        .iter()
        .filter(|r| hops.contains(&r.version))
    {
        for m in &release.meta.migrations {
            let recorded = manifest.migrations.iter().find(|r| r.id == m.id);
            let action = match recorded {
                Some(r) if r.status == "skipped" => MigrationAction::AlreadySkipped,
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

/// Old path → new path, composing every hop's renames in order.
fn composed_renames(template: &Template, hops: &[Version]) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for release in template
        .releases
        .iter()
        .filter(|r| hops.contains(&r.version))
    {
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

struct Planner<'a> {
    disk: &'a dyn Disk,
    ejected: &'a BTreeSet<String>,
    excludes: &'a GlobSet,
    edits: &'a [(&'a MigrationStep, &'a Edit)],
    labels: Labels,
    conflict: ConflictStyle,
    /// Names the merge base in `.rej` headers, e.g. `template service 1.0.0`.
    base_label: String,
    entries: Vec<Entry>,
    writes: Vec<Write>,
    /// New-version paths the platform does not own after this upgrade (the team's file is there).
    not_ours: BTreeSet<String>,
}

impl Planner<'_> {
    fn excluded(&self, path: &str) -> bool {
        self.excludes.is_match(path)
    }

    fn entry(&mut self, path: &str, status: Status, from: Option<&str>, detail: Option<String>) {
        self.entries.push(Entry {
            path: path.to_string(),
            status,
            from: from.map(str::to_string),
            detail,
        });
    }

    fn put(&mut self, path: &str, contents: Vec<u8>) {
        self.writes.push(Write::Put {
            path: path.to_string(),
            contents,
        });
    }

    /// Off the golden path or excluded: record it and touch nothing.
    fn untouchable(&mut self, p: &str, q: &str, component: &str) -> bool {
        if self.ejected.contains(component) {
            self.entry(
                q,
                Status::Ejected,
                (p != q).then_some(p),
                Some(format!("component `{component}` is ejected")),
            );
            true
        } else if self.excluded(p) || self.excluded(q) {
            self.entry(q, Status::Excluded, (p != q).then_some(p), None);
            true
        } else {
            false
        }
    }

    /// A file in both versions (at `p` before, `q` after).
    fn both(
        &mut self,
        p: &str,
        q: &str,
        base: &render::RenderedFile,
        theirs: &render::RenderedFile,
    ) -> Result<()> {
        if self.untouchable(p, q, &theirs.component)
            || (base.component != theirs.component && self.untouchable(p, q, &base.component))
        {
            return Ok(());
        }
        let renamed = p != q;
        let from = renamed.then_some(p);
        if theirs.mode == Mode::Seeded {
            self.entry(
                p,
                Status::Unchanged,
                None,
                Some("seeded: yours, never touched by upgrades".into()),
            );
            return Ok(());
        }
        let ours = match self.disk.read(p)? {
            OnDisk::Missing => {
                self.entry(
                    q,
                    Status::Kept,
                    from,
                    Some("deleted by you: stays deleted".into()),
                );
                return Ok(());
            }
            OnDisk::Other => {
                self.entry(
                    q,
                    Status::Kept,
                    from,
                    Some("not a regular file on disk: left alone".into()),
                );
                return Ok(());
            }
            OnDisk::File(bytes) => bytes,
        };
        if renamed && self.disk.read(q)? != OnDisk::Missing {
            self.not_ours.insert(q.to_string());
            self.entry(
                q,
                Status::Conflict,
                from,
                Some(format!(
                    "the template moves {p} here, but {q} already exists: both left as they are"
                )),
            );
            return Ok(());
        }
        let (result, conflict_detail) = if theirs.mode == Mode::Structured {
            self.merge_toml(q, &base.contents, &ours, &theirs.contents)?
        } else {
            self.merge_text(q, &base.contents, &ours, &theirs.contents)
        };
        if renamed {
            self.writes.push(Write::Remove {
                path: p.to_string(),
            });
            self.put(q, result.clone());
        } else if result != ours {
            self.put(q, result.clone());
        }
        let status = match (&conflict_detail, renamed) {
            (Some(_), _) => Status::Conflict,
            (None, true) => Status::Renamed,
            (None, false) if result == ours => Status::Unchanged,
            (None, false) if ours == base.contents => Status::Updated,
            (None, false) => Status::Merged,
        };
        let detail = conflict_detail.or_else(|| {
            renamed.then(|| {
                if ours == base.contents {
                    "moved by the template".to_string()
                } else {
                    "moved by the template, with your edits".to_string()
                }
            })
        });
        self.entry(q, status, from, detail);
        Ok(())
    }

    fn merge_text(
        &mut self,
        q: &str,
        base: &[u8],
        ours: &[u8],
        theirs: &[u8],
    ) -> (Vec<u8>, Option<String>) {
        match text::merge3(base, ours, theirs, &self.labels) {
            Merged::Clean(c) => (c, None),
            Merged::Conflict {
                with_markers,
                ours_resolved,
            } => match self.conflict {
                ConflictStyle::Markers => {
                    (with_markers, Some("conflict markers in the file".into()))
                }
                ConflictStyle::Reject => {
                    let base = String::from_utf8_lossy(base);
                    let theirs = String::from_utf8_lossy(theirs);
                    let mut opts = diffy::DiffOptions::new();
                    opts.set_original_filename(format!("a/{q}"))
                        .set_modified_filename(format!("b/{q}"));
                    let patch = format!(
                        "# The change from {} to {} that could not be merged into {q}.\n{}",
                        self.base_label,
                        self.labels.theirs,
                        opts.create_patch(&base, &theirs)
                    );
                    self.put(&format!("{q}.rej"), patch.into_bytes());
                    (
                        ours_resolved,
                        Some(format!(
                            "your side kept; the template's change is in {q}.rej"
                        )),
                    )
                }
            },
            Merged::BinaryConflict => {
                self.put(&format!("{q}.rej"), theirs.to_vec());
                (
                    ours.to_vec(),
                    Some(format!(
                        "binary file changed on both sides: yours kept, the template's version is in {q}.rej"
                    )),
                )
            }
        }
    }

    fn merge_toml(
        &mut self,
        q: &str,
        base: &[u8],
        ours: &[u8],
        theirs: &[u8],
    ) -> Result<(Vec<u8>, Option<String>)> {
        let (mut base_s, mut ours_s, theirs_s) = (lossy(base), lossy(ours), lossy(theirs));
        let mut notes = Vec::new();
        for (m, edit) in self.edits {
            let Edit::RenameKey { files, from, to } = edit;
            if !glob_matches(files, q) {
                continue;
            }
            if let Ok(Some(t)) = structured::rename_key(&base_s, from, to) {
                base_s = t;
            }
            match structured::rename_key(&ours_s, from, to) {
                Ok(Some(t)) => ours_s = t,
                Ok(None) => {}
                Err(e) => notes.push(format!("{}: {e}", m.id)),
            }
        }
        let mark = (self.conflict == ConflictStyle::Markers).then_some(self.labels.theirs.as_str());
        let merged = structured::merge(&base_s, &ours_s, &theirs_s, mark).map_err(|e| {
            Error::new(format!("{q}: {e}")).hint(format!("fix {q} so it parses, or --exclude {q}"))
        })?;
        for c in &merged.conflicts {
            notes.push(format!(
                "`{}`: yours {}, template {}",
                c.key,
                c.ours.as_deref().unwrap_or("(removed)"),
                c.theirs.as_deref().unwrap_or("(removed)")
            ));
        }
        if !merged.conflicts.is_empty() && self.conflict == ConflictStyle::Reject {
            let rej: String = merged
                .conflicts
                .iter()
                .map(|c| {
                    format!(
                        "{} = {}\n",
                        c.key,
                        c.theirs.as_deref().unwrap_or("(removed by the template)")
                    )
                })
                .collect();
            self.put(
                &format!("{q}.rej"),
                format!(
                    "# {} wants these keys; yours were kept\n{rej}",
                    self.labels.theirs
                )
                .into_bytes(),
            );
        }
        let detail = (!notes.is_empty()).then(|| notes.join("; "));
        Ok((merged.text.into_bytes(), detail))
    }

    /// The template no longer ships `p`.
    fn removed_by_template(&mut self, p: &str, base: &render::RenderedFile) -> Result<()> {
        if self.untouchable(p, p, &base.component) {
            return Ok(());
        }
        if base.mode == Mode::Seeded {
            self.entry(
                p,
                Status::Unchanged,
                None,
                Some("seeded: yours, never touched by upgrades".into()),
            );
            return Ok(());
        }
        match self.disk.read(p)? {
            OnDisk::Missing => self.entry(
                p,
                Status::Deleted,
                None,
                Some("removed by the template; already gone".into()),
            ),
            OnDisk::File(ours) if ours == base.contents => {
                self.writes.push(Write::Remove {
                    path: p.to_string(),
                });
                self.entry(
                    p,
                    Status::Deleted,
                    None,
                    Some("removed by the template".into()),
                );
            }
            _ => self.entry(
                p,
                Status::Kept,
                None,
                Some("removed by the template, but you edited it: kept, and now yours".into()),
            ),
        }
        Ok(())
    }

    /// The template adds `q`.
    fn added_by_template(&mut self, q: &str, theirs: &render::RenderedFile) -> Result<()> {
        if self.untouchable(q, q, &theirs.component) {
            return Ok(());
        }
        match self.disk.read(q)? {
            OnDisk::Missing => {
                self.put(q, theirs.contents.clone());
                self.entry(q, Status::New, None, None);
            }
            OnDisk::File(ours) if ours == theirs.contents => {
                self.entry(q, Status::Unchanged, None, None)
            }
            OnDisk::File(ours) if theirs.mode == Mode::Structured => {
                let (result, detail) = self.merge_toml(q, b"", &ours, &theirs.contents)?;
                let status = if detail.is_some() {
                    Status::Conflict
                } else {
                    Status::Merged
                };
                if result != ours {
                    self.put(q, result);
                }
                self.entry(q, status, None, detail);
            }
            _ if theirs.mode == Mode::Seeded => self.entry(
                q,
                Status::Unchanged,
                None,
                Some("seeded: you already have this file".into()),
            ),
            _ => {
                self.put(&format!("{q}.rej"), theirs.contents.clone());
                self.entry(
                    q,
                    Status::Conflict,
                    None,
                    Some(format!("the template adds this file but yours exists: yours kept, the template's is in {q}.rej")),
                );
            }
        }
        Ok(())
    }

    /// Migration edits on the team's own TOML files (those the template does not render).
    fn team_toml_edits(&mut self, old: &FileSet, new: &FileSet) -> Result<()> {
        let mut dirs: BTreeSet<String> = BTreeSet::new();
        for (_, edit) in self.edits {
            let Edit::RenameKey { files, .. } = edit;
            dirs.insert(literal_dir(files));
        }
        for dir in dirs {
            for path in self.disk.list(&dir)? {
                if old.contains_key(&path) || new.contains_key(&path) || self.excluded(&path) {
                    continue;
                }
                let OnDisk::File(bytes) = self.disk.read(&path)? else {
                    continue;
                };
                let mut text = lossy(&bytes);
                let mut applied = Vec::new();
                let mut problems = Vec::new();
                for (m, edit) in self.edits {
                    let Edit::RenameKey { files, from, to } = edit;
                    if !glob_matches(files, &path) {
                        continue;
                    }
                    match structured::rename_key(&text, from, to) {
                        Ok(Some(t)) => {
                            text = t;
                            applied.push(format!("{from} → {to} ({})", m.id));
                        }
                        Ok(None) => {}
                        Err(e) => problems.push(format!("{}: {e}", m.id)),
                    }
                }
                if !problems.is_empty() {
                    self.entry(&path, Status::Conflict, None, Some(problems.join("; ")));
                } else if !applied.is_empty() {
                    self.put(&path, text.into_bytes());
                    self.entry(
                        &path,
                        Status::Updated,
                        None,
                        Some(format!("your file: renamed {}", applied.join(", "))),
                    );
                }
            }
        }
        Ok(())
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn glob_matches(pattern: &str, path: &str) -> bool {
    Glob::new(pattern)
        .map(|g| g.compile_matcher().is_match(path))
        .unwrap_or(false)
}

/// The directory part of a glob before its first wildcard (`config/*.toml` → `config`).
fn literal_dir(pattern: &str) -> String {
    let literal: Vec<&str> = pattern
        .split('/')
        .take_while(|seg| !seg.contains(['*', '?', '[', '{']))
        .collect();
    let n = literal
        .len()
        .min(pattern.split('/').count().saturating_sub(1));
    literal[..n].join("/")
}

/// Records `--eject` components as ejected (keeping an earlier ejection's record).
fn eject_components(m: &mut Manifest, opts: &Options) {
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
                date: Some(opts.today.clone()),
            };
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn updated_manifest(
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
    let mut files = BTreeMap::new();
    for (path, record) in &manifest.files {
        if ejected.contains(&record.component) {
            files.insert(path.clone(), record.clone());
        }
    }
    for (path, f) in new {
        if ejected.contains(&f.component) {
            continue;
        }
        if planner.not_ours.contains(path) {
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
            MigrationAction::Apply => "applied",
            MigrationAction::Skip => "skipped",
            _ => continue,
        };
        m.migrations.push(MigrationRecord {
            id: step.id.clone(),
            status: status.into(),
            date: opts.today.clone(),
        });
    }
    m
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
