//! `[history]` (manifest schema 2): when the service was created and each upgrade since.
//!
//! ```toml
//! [history]
//! created = { date = "2026-11-22", template = "service", version = "2.0.0", tool_version = "0.1.0" }
//!
//! [[history.upgrades]]
//! date = "2027-01-10"
//! from = "2.0.0"
//! to = "2.1.0"
//! tool_version = "0.2.0"
//! updated = 7
//! merged = 1
//! conflicts = 0
//! migrations_applied = ["service-2.1.0-metrics"]
//! migrations_skipped = []
//!
//! [[history.adds]]
//! date = "2027-02-01"
//! version = "2.1.0"
//! component = "idempotency"
//! set = { idempotency_store = "postgres" }
//! tool_version = "0.2.0"
//! updated = 9
//! merged = 0
//! conflicts = 0
//! ```
//!
//! `adds` records each `cargo platform add`: the component turned on and the answers it set.
//!
//! Absent `created` means unknown (a schema-1 manifest with no git history to recover it from);
//! nothing is ever invented. Entries recovered from git carry `recovered_from = "git"` and only
//! what git can tell (no file counts, no migrations).

use jiff::civil::Date;
use semver::Version;
use serde::{Deserialize, Deserializer};
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, value};

use crate::error::Result;
use crate::template::answers::{Answer, Answers};
use crate::template::release;

/// What the manifest knows of the service's past.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct History {
    /// `None`: unknown (never invented).
    pub created: Option<Created>,
    /// Oldest first.
    pub upgrades: Vec<UpgradeEvent>,
    /// Each `cargo platform add`, oldest first.
    pub adds: Vec<AddEvent>,
}

impl History {
    /// The date of the newest upgrade, if any is known.
    pub fn last_upgraded(&self) -> Option<Date> {
        self.upgrades.iter().map(|u| u.date).max()
    }
}

/// How an entry came to be in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Written by the tool as it happened.
    Recorded,
    /// Recovered from the git history of platform.toml (a schema-1 manifest).
    Git,
}

impl Source {
    const WORDS: &[(&str, Source)] = &[("git", Source::Git)];
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        release::one_of(d, Self::WORDS)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub date: Date,
    pub template: String,
    pub version: Version,
    /// The cargo-platform version that created it (`None` when git's copy does not say).
    pub tool_version: Option<String>,
    pub source: Source,
}

/// Files an upgrade touched, by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileCounts {
    /// Written with nothing for the team to resolve: new, updated, renamed (a team edit moves
    /// with the file) or deleted.
    pub updated: usize,
    /// 3-way merged with the team's edits, cleanly.
    pub merged: usize,
    /// Left in conflict for the team to resolve.
    pub conflicts: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeEvent {
    pub date: Date,
    pub from: Version,
    pub to: Version,
    pub tool_version: Option<String>,
    /// `None` when unknown (recovered from git).
    pub files: Option<FileCounts>,
    pub migrations_applied: Vec<String>,
    pub migrations_skipped: Vec<String>,
    pub source: Source,
}

/// A component (or a choice of one) turned on after creation by `cargo platform add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddEvent {
    pub date: Date,
    /// The template version the service was (and stayed) on.
    pub version: Version,
    pub component: String,
    /// The answers it changed, with their new values, in question order.
    pub set: Answers,
    pub tool_version: Option<String>,
    pub files: FileCounts,
}

fn version<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Version, D::Error> {
    let text = String::deserialize(d)?;
    Version::parse(&text)
        .map_err(|e| serde::de::Error::custom(format!("\"{text}\" is not a version (X.Y.Z): {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHistory {
    created: Option<RawCreated>,
    #[serde(default)]
    upgrades: Vec<RawUpgrade>,
    #[serde(default)]
    adds: Vec<RawAdd>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdd {
    #[serde(deserialize_with = "super::date::required")]
    date: Date,
    #[serde(deserialize_with = "version")]
    version: Version,
    component: String,
    set: toml::Table,
    tool_version: Option<String>,
    updated: usize,
    merged: usize,
    conflicts: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCreated {
    #[serde(deserialize_with = "super::date::required")]
    date: Date,
    template: String,
    #[serde(deserialize_with = "version")]
    version: Version,
    tool_version: Option<String>,
    recovered_from: Option<Source>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpgrade {
    #[serde(deserialize_with = "super::date::required")]
    date: Date,
    #[serde(deserialize_with = "version")]
    from: Version,
    #[serde(deserialize_with = "version")]
    to: Version,
    tool_version: Option<String>,
    updated: Option<usize>,
    merged: Option<usize>,
    conflicts: Option<usize>,
    #[serde(default)]
    migrations_applied: Vec<String>,
    #[serde(default)]
    migrations_skipped: Vec<String>,
    recovered_from: Option<Source>,
}

impl RawHistory {
    pub(super) fn typed(self, path: &str) -> Result<History> {
        let created = self.created.map(|c| Created {
            date: c.date,
            template: c.template,
            version: c.version,
            tool_version: c.tool_version,
            source: c.recovered_from.unwrap_or(Source::Recorded),
        });
        let mut upgrades = Vec::with_capacity(self.upgrades.len());
        for (i, u) in self.upgrades.into_iter().enumerate() {
            let files = match (u.updated, u.merged, u.conflicts) {
                (Some(updated), Some(merged), Some(conflicts)) => Some(FileCounts {
                    updated,
                    merged,
                    conflicts,
                }),
                (None, None, None) => None,
                _ => bail!(
                    "{path}: history.upgrades[{i}]: give updated, merged and conflicts together, or none of them"
                ),
            };
            upgrades.push(UpgradeEvent {
                date: u.date,
                from: u.from,
                to: u.to,
                tool_version: u.tool_version,
                files,
                migrations_applied: u.migrations_applied,
                migrations_skipped: u.migrations_skipped,
                source: u.recovered_from.unwrap_or(Source::Recorded),
            });
        }
        let mut adds = Vec::with_capacity(self.adds.len());
        for (i, a) in self.adds.into_iter().enumerate() {
            let mut set = Answers::new();
            for (key, v) in a.set {
                set.push((
                    key.clone(),
                    match v {
                        toml::Value::String(s) => Answer::String(s),
                        toml::Value::Boolean(b) => Answer::Bool(b),
                        toml::Value::Integer(n) => Answer::Int(n),
                        other => bail!(
                            "{path}: history.adds[{i}].set.{key} = {other} is not a string, bool or integer"
                        ),
                    },
                ));
            }
            adds.push(AddEvent {
                date: a.date,
                version: a.version,
                component: a.component,
                set,
                tool_version: a.tool_version,
                files: FileCounts {
                    updated: a.updated,
                    merged: a.merged,
                    conflicts: a.conflicts,
                },
            });
        }
        Ok(History {
            created,
            upgrades,
            adds,
        })
    }
}

impl History {
    /// Writes `[history]` into `doc`, keeping the table (and its comments) when it is there.
    pub(super) fn write(&self, doc: &mut DocumentMut) {
        if !doc.get("history").is_some_and(Item::is_table) {
            doc["history"] = Item::Table(Table::new());
        }
        let t = doc["history"].as_table_mut().expect("just made a table");
        match &self.created {
            Some(c) => {
                let mut it = InlineTable::new();
                it.insert("date", c.date.to_string().into());
                it.insert("template", c.template.as_str().into());
                it.insert("version", c.version.to_string().into());
                if let Some(tool) = &c.tool_version {
                    it.insert("tool_version", tool.as_str().into());
                }
                if c.source == Source::Git {
                    it.insert("recovered_from", "git".into());
                }
                t["created"] = value(it);
            }
            None => {
                t.remove("created");
            }
        }
        let mut ups = ArrayOfTables::new();
        for u in &self.upgrades {
            let mut e = Table::new();
            e["date"] = value(u.date.to_string());
            e["from"] = value(u.from.to_string());
            e["to"] = value(u.to.to_string());
            if let Some(tool) = &u.tool_version {
                e["tool_version"] = value(tool.as_str());
            }
            if let Some(f) = u.files {
                e["updated"] = value(f.updated as i64);
                e["merged"] = value(f.merged as i64);
                e["conflicts"] = value(f.conflicts as i64);
            }
            if u.source == Source::Recorded {
                e["migrations_applied"] = value(strings(&u.migrations_applied));
                e["migrations_skipped"] = value(strings(&u.migrations_skipped));
            } else {
                e["recovered_from"] = value("git");
            }
            ups.push(e);
        }
        if ups.is_empty() {
            t.remove("upgrades");
        } else {
            t["upgrades"] = Item::ArrayOfTables(ups);
        }
        let mut adds = ArrayOfTables::new();
        for a in &self.adds {
            let mut e = Table::new();
            e["date"] = value(a.date.to_string());
            e["version"] = value(a.version.to_string());
            e["component"] = value(a.component.as_str());
            let mut set = InlineTable::new();
            for (k, v) in &a.set {
                set.insert(k, v.to_toml());
            }
            e["set"] = value(set);
            if let Some(tool) = &a.tool_version {
                e["tool_version"] = value(tool.as_str());
            }
            e["updated"] = value(a.files.updated as i64);
            e["merged"] = value(a.files.merged as i64);
            e["conflicts"] = value(a.files.conflicts as i64);
            adds.push(e);
        }
        if adds.is_empty() {
            t.remove("adds");
        } else {
            t["adds"] = Item::ArrayOfTables(adds);
        }
    }
}

fn strings(items: &[String]) -> Array {
    items.iter().map(String::as_str).collect()
}
