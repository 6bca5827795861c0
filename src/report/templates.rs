//! The report of `cargo platform templates`: every embedded template and release.

use std::io::{self, Write};

use serde::Serialize;

use crate::template::release::{Edit, MigrationMeta, Question, ReleaseMeta};

#[derive(Debug, Clone, Serialize)]
pub struct TemplatesReport {
    pub templates: Vec<TemplateInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TemplateInfo {
    pub name: String,
    pub description: String,
    /// The newest embedded version that is not a draft.
    pub newest: String,
    /// Newest first.
    pub versions: Vec<VersionInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    pub version: String,
    /// Release date, `YYYY-MM-DD`.
    pub date: String,
    pub summary: String,
    pub changelog: Vec<String>,
    pub support: SupportInfo,
    /// This is the template's newest version (the newest that is not a draft).
    pub newest: bool,
    /// A release under construction: never a default, rendered only with `--allow-draft`.
    pub draft: bool,
    pub components: Vec<ComponentInfo>,
    pub questions: Vec<QuestionInfo>,
    /// The migrations this release ships.
    pub migrations: Vec<MigrationInfo>,
    /// What this release changed in what core expects of a component: a copy of that
    /// component ejected before this release needs the team's change.
    pub breaks: Vec<BreakInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BreakInfo {
    /// The ejectable component whose ejected copy no longer fits.
    pub component: String,
    /// What changed.
    pub changed: String,
    /// What the team must do to its ejected copy.
    pub action: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SupportInfo {
    /// `YYYY-MM-DD` from which the version is deprecated, if announced.
    pub deprecated: Option<String>,
    /// The version's last supported day, `YYYY-MM-DD`, if announced.
    pub end_of_support: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComponentInfo {
    pub name: String,
    pub description: String,
    pub ejectable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuestionInfo {
    /// The `--set` key.
    pub key: String,
    /// `string`, `bool`, `int` or `choice`.
    #[serde(rename = "type")]
    pub kind: String,
    pub help: String,
    /// The default answer (string, boolean or integer), `null` when the question has none.
    pub default: Option<serde_json::Value>,
    /// The allowed answers of a `choice` question, else `null`.
    pub choices: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationInfo {
    pub id: String,
    pub description: String,
    /// `check` fails while it is pending.
    pub required: bool,
    pub edits: Vec<EditInfo>,
}

/// A structured edit a migration applies (JSON: tagged by `kind`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EditInfo {
    /// Moves a config key's value to a new dotted key in every file matching `files`.
    RenameKey {
        files: String,
        from: String,
        to: String,
    },
}

impl VersionInfo {
    pub fn new(
        version: String,
        meta: &ReleaseMeta,
        newest: bool,
        components: Vec<ComponentInfo>,
        questions: &[Question],
    ) -> Self {
        VersionInfo {
            version,
            date: meta.date.clone(),
            summary: meta.summary.clone(),
            changelog: meta.changelog.clone(),
            support: SupportInfo {
                deprecated: meta.support.deprecated.clone(),
                end_of_support: meta.support.end_of_support.clone(),
            },
            newest,
            draft: meta.draft,
            components,
            questions: questions.iter().map(QuestionInfo::from).collect(),
            migrations: meta.migrations.iter().map(MigrationInfo::from).collect(),
            breaks: meta
                .breaks
                .iter()
                .map(|b| BreakInfo {
                    component: b.component.clone(),
                    changed: b.changed.clone(),
                    action: b.action.clone(),
                })
                .collect(),
        }
    }
}

impl From<&Question> for QuestionInfo {
    fn from(q: &Question) -> Self {
        QuestionInfo {
            key: q.key.clone(),
            kind: q.kind.as_str().to_string(),
            help: q.help.clone(),
            default: q
                .default
                .as_ref()
                .map(|d| serde_json::to_value(d).unwrap_or_default()),
            choices: q.choices.clone(),
        }
    }
}

impl From<&MigrationMeta> for MigrationInfo {
    fn from(m: &MigrationMeta) -> Self {
        MigrationInfo {
            id: m.id.clone(),
            description: m.description.clone(),
            required: m.required,
            edits: m
                .edits
                .iter()
                .map(|e| match e {
                    Edit::RenameKey { files, from, to } => EditInfo::RenameKey {
                        files: files.clone(),
                        from: from.clone(),
                        to: to.clone(),
                    },
                })
                .collect(),
        }
    }
}

impl super::Report for TemplatesReport {
    const COMMAND: &'static str = "templates";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        for t in &self.templates {
            writeln!(out, "{} — {}", t.name, t.description)?;
            for v in &t.versions {
                let mut flags = Vec::new();
                if v.newest {
                    flags.push("newest".to_string());
                }
                if v.draft {
                    flags.push("draft: only with --allow-draft".to_string());
                }
                if let Some(d) = &v.support.deprecated {
                    flags.push(format!("deprecated {d}"));
                }
                if let Some(d) = &v.support.end_of_support {
                    flags.push(format!("end of support {d}"));
                }
                let flags = if flags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", flags.join(", "))
                };
                writeln!(out, "  {} ({}){flags} — {}", v.version, v.date, v.summary)?;
                for entry in &v.changelog {
                    writeln!(out, "    - {entry}")?;
                }
                let components: Vec<String> = v
                    .components
                    .iter()
                    .map(|c| {
                        if c.ejectable {
                            c.name.clone()
                        } else {
                            format!("{} (not ejectable)", c.name)
                        }
                    })
                    .collect();
                writeln!(out, "    components: {}", components.join(", "))?;
                for b in &v.breaks {
                    writeln!(out, "    breaks ejected {}: {}", b.component, b.changed)?;
                }
            }
        }
        Ok(())
    }
}
