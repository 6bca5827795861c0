//! Per-file decisions of an upgrade: for every file of the old and new renders (and the team's
//! own TOML files a migration edits), what happens to it given what is on disk.

use std::collections::BTreeSet;

use globset::GlobSet;

use super::conflicts::{self, Style};
use super::migrations::{MigrationEdit, literal_dir};
use super::plan::{ConflictStyle, Disk, Entry, OnDisk, Status};
use super::structured;
use super::text;
use crate::error::{Error, Result};
use crate::fsx::Write;
use crate::template::release::Mode;
use crate::template::render::{self, FileSet};

/// Decides, file by file, what the upgrade does, collecting entries and writes.
pub(super) struct Planner<'a> {
    pub disk: &'a dyn Disk,
    pub ejected: &'a BTreeSet<String>,
    pub excludes: &'a GlobSet,
    pub edits: &'a [MigrationEdit<'a>],
    pub style: Style,
    pub entries: Vec<Entry>,
    pub writes: Vec<Write>,
    /// New-version paths the platform does not own after this upgrade (the team's file is there).
    pub not_ours: BTreeSet<String>,
}

impl Planner<'_> {
    pub fn excluded(&self, path: &str) -> bool {
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
    pub fn both(
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
        let merged = text::merge3(base, ours, theirs, &self.style.labels);
        self.outcome(conflicts::text(&self.style, q, base, ours, theirs, merged))
    }

    /// Queues an outcome's `.rej` file; its contents and detail are the caller's.
    fn outcome(&mut self, outcome: conflicts::Outcome) -> (Vec<u8>, Option<String>) {
        if let Some(rej) = outcome.rej {
            self.writes.push(rej);
        }
        (outcome.contents, outcome.detail)
    }

    fn merge_toml(
        &mut self,
        q: &str,
        base: &[u8],
        ours: &[u8],
        theirs: &[u8],
    ) -> Result<(Vec<u8>, Option<String>)> {
        if ours == base {
            // The team never edited it: the template's new version, byte for byte (a key-level
            // merge would keep the old layout and put the template's additions elsewhere).
            return Ok((theirs.to_vec(), None));
        }
        let (mut base_s, mut ours_s, theirs_s) = (lossy(base), lossy(ours), lossy(theirs));
        let mut notes = Vec::new();
        for edit in self.edits {
            if !edit.files.is_match(q) {
                continue;
            }
            if let Ok(Some(t)) = structured::rename_key(&base_s, edit.from, edit.to) {
                base_s = t;
            }
            match structured::rename_key(&ours_s, edit.from, edit.to) {
                Ok(Some(t)) => ours_s = t,
                Ok(None) => {}
                Err(e) => notes.push(format!("{}: {e}", edit.step.id)),
            }
        }
        let mark = (self.style.conflict == ConflictStyle::Markers)
            .then_some(self.style.labels.theirs.as_str());
        let merged = structured::merge(&base_s, &ours_s, &theirs_s, mark).map_err(|e| {
            Error::new(format!("{q}: {e}")).hint(format!("fix {q} so it parses, or --exclude {q}"))
        })?;
        notes.extend(conflicts::key_notes(&merged.conflicts));
        if let Some(rej) = conflicts::key_rej(&self.style, q, &merged.conflicts) {
            self.writes.push(rej);
        }
        let detail = (!notes.is_empty()).then(|| notes.join("; "));
        Ok((merged.text.into_bytes(), detail))
    }

    /// The template no longer ships `p`.
    pub fn removed_by_template(&mut self, p: &str, base: &render::RenderedFile) -> Result<()> {
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
    pub fn added_by_template(&mut self, q: &str, theirs: &render::RenderedFile) -> Result<()> {
        if self.untouchable(q, q, &theirs.component) {
            return Ok(());
        }
        match self.disk.read(q)? {
            OnDisk::Missing if theirs.new_only => {
                // An example for new services: this service's own code does not call it.
                self.not_ours.insert(q.to_string());
                self.entry(
                    q,
                    Status::Kept,
                    None,
                    Some("seeded for new services only: not added to an existing one".into()),
                );
            }
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
    pub fn team_toml_edits(&mut self, old: &FileSet, new: &FileSet) -> Result<()> {
        let mut dirs: BTreeSet<String> = BTreeSet::new();
        for edit in self.edits {
            dirs.insert(literal_dir(edit.pattern));
        }
        let mut paths: BTreeSet<String> = BTreeSet::new();
        for dir in dirs {
            paths.extend(self.disk.list(&dir)?);
        }
        for path in paths {
            if old.contains_key(&path)
                || new.contains_key(&path)
                || self.excluded(&path)
                || !self.edits.iter().any(|e| e.files.is_match(&path))
            {
                continue;
            }
            let OnDisk::File(bytes) = self.disk.read(&path)? else {
                continue;
            };
            let mut text = lossy(&bytes);
            let mut applied = Vec::new();
            let mut problems = Vec::new();
            for edit in self.edits {
                if !edit.files.is_match(&path) {
                    continue;
                }
                match structured::rename_key(&text, edit.from, edit.to) {
                    Ok(Some(t)) => {
                        text = t;
                        applied.push(format!("{} → {} ({})", edit.from, edit.to, edit.step.id));
                    }
                    Ok(None) => {}
                    Err(e) => problems.push(format!("{}: {e}", edit.step.id)),
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
        Ok(())
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
