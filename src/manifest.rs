//! `platform.toml`: what the platform knows about a service, read with serde and written with
//! toml_edit so hand-added comments and ordering survive.

use std::collections::BTreeMap;

use jiff::civil::Date;
use semver::Version;
use serde::{Deserialize, Deserializer};
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use crate::error::{Error, Result};
use crate::template::answers::{Answer, Answers};
use crate::template::release::{self, Mode};

pub mod history;
pub mod v1_to_v2;

pub use history::{AddEvent, Created, FileCounts, History, Source, UpgradeEvent};

pub const FILE_NAME: &str = "platform.toml";
/// The newest manifest schema this tool reads and writes. Schema 1 (no `[history]`) is read
/// through [`v1_to_v2`]; schema 3 adds `[[history.adds]]` and is written only by a manifest that
/// has one ([`Manifest::written_schema`]), so a service never `add`ed stays readable by tools that
/// read schema 2. See CONTRIBUTING.md "Manifest schema versions".
pub const SCHEMA: i64 = 3;

/// Whether the platform still manages a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentState {
    Managed,
    Ejected,
}

impl ComponentState {
    const WORDS: &[(&str, ComponentState)] = &[
        ("managed", ComponentState::Managed),
        ("ejected", ComponentState::Ejected),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ComponentState::Managed => "managed",
            ComponentState::Ejected => "ejected",
        }
    }
}

impl<'de> Deserialize<'de> for ComponentState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        release::one_of(d, Self::WORDS)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentRecord {
    pub state: ComponentState,
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "date::optional")]
    pub date: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    pub component: String,
    pub mode: Mode,
    pub sha256: String,
}

/// What became of a migration in the service's ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationStatus {
    Applied,
    /// The team chose not to apply it (`upgrade --skip`); it stays on the record.
    Skipped,
}

impl MigrationStatus {
    const WORDS: &[(&str, MigrationStatus)] = &[
        ("applied", MigrationStatus::Applied),
        ("skipped", MigrationStatus::Skipped),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MigrationStatus::Applied => "applied",
            MigrationStatus::Skipped => "skipped",
        }
    }
}

impl<'de> Deserialize<'de> for MigrationStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        release::one_of(d, Self::WORDS)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationRecord {
    pub id: String,
    pub status: MigrationStatus,
    #[serde(deserialize_with = "date::required")]
    pub date: Date,
}

/// A date written exactly as `YYYY-MM-DD` (no time, no offset).
pub fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if shaped { text.parse().ok() } else { None }
}

/// Dates in the manifest: `YYYY-MM-DD` strings.
mod date {
    use jiff::civil::Date;
    use serde::{Deserialize, Deserializer, de::Error};

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_date(&text)
            .ok_or_else(|| D::Error::custom(format!("\"{text}\" is not a date (YYYY-MM-DD)")))
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        required(d).map(Some)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub schema: i64,
    pub template: String,
    pub version: Version,
    pub tool_version: String,
    pub name: String,
    pub answers: Answers,
    pub components: BTreeMap<String, ComponentRecord>,
    pub files: BTreeMap<String, FileRecord>,
    pub migrations: Vec<MigrationRecord>,
    /// When the service was created and each upgrade since (schema 2).
    pub history: History,
    /// The schema the file on disk was written in (1 or 2); `schema` is always [`SCHEMA`]
    /// once read, so the next write stores the current schema.
    pub read_schema: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    platform: RawPlatform,
    #[serde(default)]
    answers: toml::Table,
    #[serde(default)]
    components: BTreeMap<String, ComponentRecord>,
    #[serde(default)]
    files: BTreeMap<String, FileRecord>,
    #[serde(default)]
    migrations: Vec<MigrationRecord>,
    /// Schema 2 only (a schema-1 file with `[history]` is refused naming the key).
    history: Option<history::RawHistory>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    schema: i64,
    template: String,
    version: String,
    tool_version: String,
    name: String,
}

/// The key a deserialisation error is about, as TOML spells it: `files."src/main.rs".mode`.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if bare {
                    out.push_str(key);
                } else {
                    out.push_str(&format!("{key:?}"));
                }
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

impl Manifest {
    /// The schema this manifest is written in: the oldest that holds everything in it (3 with
    /// `[[history.adds]]`, else 2), so older tools keep reading services that use nothing new.
    pub fn written_schema(&self) -> i64 {
        if self.history.adds.is_empty() {
            2
        } else {
            SCHEMA
        }
    }

    /// Parses and validates a manifest; `path` is only used in messages. A schema-1 file goes
    /// through [`v1_to_v2::convert`] with nothing recovered from git: its history is unknown
    /// (see `Service::locate`, which backfills it from git).
    pub fn parse(text: &str, path: &str) -> Result<Manifest> {
        Manifest::parse_with(text, path, || None)
    }

    /// As [`Manifest::parse`]; for a schema-1 file, `recover` is asked for the revisions of
    /// platform.toml git has (oldest first), and the history is backfilled from them.
    pub fn parse_with(
        text: &str,
        path: &str,
        recover: impl FnOnce() -> Option<Vec<v1_to_v2::Revision>>,
    ) -> Result<Manifest> {
        let fix = "fix the file by hand, or restore it from git";
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| Error::new(format!("{path} is not valid TOML: {e}")).hint(fix))?;
        let schema = table
            .get("platform")
            .and_then(|p| p.get("schema"))
            .and_then(toml::Value::as_integer);
        match schema {
            Some(s) if s > SCHEMA => {
                return Err(Error::new(format!(
                    "{path} has manifest schema {s}, but this cargo-platform ({}) reads schema {SCHEMA} at most",
                    env!("CARGO_PKG_VERSION")
                ))
                .hint("upgrade the tool: cargo install cargo-platform"));
            }
            Some(s) if s < 1 => bail!("{path}: [platform] schema = {s} is not a schema version"),
            Some(_) => {}
            None => {
                return Err(Error::new(format!("{path}: [platform] schema is missing")).hint(fix));
            }
        }
        let raw: RawManifest = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = key_path(e.path());
                let message = e.inner().message().trim().to_string();
                let at = if key.is_empty() || key == "." {
                    String::new()
                } else {
                    format!("{key}: ")
                };
                Error::new(format!("{path}: {at}{message}")).hint(fix)
            })?;
        let version = Version::parse(&raw.platform.version).map_err(|e| {
            Error::new(format!(
                "{path}: [platform] version `{}` is not X.Y.Z: {e}",
                raw.platform.version
            ))
            .hint(fix)
        })?;
        let mut answers = Answers::new();
        for (key, v) in raw.answers {
            let answer = match v {
                toml::Value::String(s) => Answer::String(s),
                toml::Value::Boolean(b) => Answer::Bool(b),
                toml::Value::Integer(i) => Answer::Int(i),
                other => {
                    bail!("{path}: [answers] {key} = {other} is not a string, bool or integer")
                }
            };
            answers.push((key, answer));
        }
        let mut files = BTreeMap::new();
        for (file, f) in raw.files {
            // Commands read (and upgrade writes) these paths: they must stay inside the service.
            let inside = !file.is_empty()
                && !file.starts_with('/')
                && !file.contains('\\')
                && !file.contains(':')
                && file
                    .split('/')
                    .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
            if !inside {
                return Err(Error::new(format!(
                    "{path}: [files.\"{file}\"] is not a relative path inside the service (a/b/c, no `..`)"
                ))
                .hint(fix));
            }
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("{path}: [files.\"{file}\"] sha256 is not a SHA-256 hex digest");
            }
            files.insert(file, f);
        }
        let read_schema = raw.platform.schema;
        let history = match (read_schema, raw.history) {
            (1, Some(_)) => {
                return Err(Error::new(format!(
                    "{path}: [history] belongs to manifest schema 2, but [platform] schema = 1"
                ))
                .hint("set `schema = 2` under [platform], or remove [history]"));
            }
            (1, None) => History::default(),
            (_, Some(h)) => h.typed(path)?,
            (_, None) => History::default(),
        };
        let mut m = Manifest {
            schema: SCHEMA,
            template: raw.platform.template,
            version,
            tool_version: raw.platform.tool_version,
            name: raw.platform.name,
            answers,
            components: raw.components,
            files,
            migrations: raw.migrations,
            history,
            read_schema,
        };
        if read_schema == 1 {
            let found = recover();
            m.history = v1_to_v2::convert(found.as_deref());
        }
        Ok(m)
    }

    pub fn is_ejected(&self, component: &str) -> bool {
        self.components
            .get(component)
            .is_some_and(|c| c.state == ComponentState::Ejected)
    }

    /// Serialises into `existing` (the file as it is on disk, if any), keeping its comments and
    /// the order of keys that stay.
    pub fn to_toml(&self, existing: Option<&str>) -> Result<String> {
        let mut doc: DocumentMut = match existing {
            Some(text) => text
                .parse()
                .map_err(|e| Error::new(format!("{FILE_NAME} is not valid TOML: {e}")))?,
            None => {
                let mut doc = DocumentMut::new();
                doc.decor_mut().set_prefix(
                    "# Written by cargo-platform: the service's template, answers, components and the\n\
                     # hashes of platform-owned files. Commit it; `cargo platform status` reads it.\n",
                );
                doc
            }
        };
        let platform = table_at(&mut doc, "platform");
        platform["schema"] = value(self.written_schema());
        platform["template"] = value(self.template.as_str());
        platform["version"] = value(self.version.to_string());
        platform["tool_version"] = value(self.tool_version.as_str());
        platform["name"] = value(self.name.as_str());

        let answers = table_at(&mut doc, "answers");
        let keep: Vec<&str> = self.answers.iter().map(|(k, _)| k.as_str()).collect();
        answers.retain(|k, _| keep.contains(&k));
        for (key, answer) in &self.answers {
            answers[key.as_str()] = Item::Value(answer.to_toml());
        }
        // In question order, as `new` writes them (a new question's answer is not appended).
        let rank = |k: &str| keep.iter().position(|have| *have == k);
        answers.sort_values_by(|a, _, b, _| rank(a.get()).cmp(&rank(b.get())));

        let components = table_at(&mut doc, "components");
        components.set_implicit(true);
        components.retain(|k, _| self.components.contains_key(k));
        for (name, c) in &self.components {
            let t = components
                .entry(name)
                .or_insert_with(|| Item::Table(Table::new()))
                .as_table_mut()
                .ok_or_else(|| {
                    Error::new(format!("{FILE_NAME}: [components.{name}] is not a table"))
                })?;
            t["state"] = value(c.state.as_str());
            set_opt(t, "reason", c.reason.as_deref());
            set_opt(t, "date", c.date.map(|d| d.to_string()).as_deref());
        }
        // Sorted, as `new` writes them: a table added by an upgrade lands where a fresh
        // manifest has it, not at the end.
        components.sort_values();

        let files = table_at(&mut doc, "files");
        files.set_implicit(true);
        files.retain(|k, _| self.files.contains_key(k));
        for (path, f) in &self.files {
            let t = files
                .entry(path)
                .or_insert_with(|| Item::Table(Table::new()))
                .as_table_mut()
                .ok_or_else(|| {
                    Error::new(format!("{FILE_NAME}: [files.\"{path}\"] is not a table"))
                })?;
            t["component"] = value(f.component.as_str());
            t["mode"] = value(f.mode.as_str());
            t["sha256"] = value(f.sha256.as_str());
        }
        files.sort_values();

        let mut ledger = ArrayOfTables::new();
        for m in &self.migrations {
            let mut t = Table::new();
            t["id"] = value(m.id.as_str());
            t["status"] = value(m.status.as_str());
            t["date"] = value(m.date.to_string());
            ledger.push(t);
        }
        if ledger.is_empty() {
            doc.remove("migrations");
        } else {
            doc["migrations"] = Item::ArrayOfTables(ledger);
        }
        self.history.write(&mut doc);
        Ok(doc.to_string())
    }
}

fn table_at<'d>(doc: &'d mut DocumentMut, key: &str) -> &'d mut Table {
    if !doc.get(key).is_some_and(Item::is_table) {
        doc[key] = Item::Table(Table::new());
    }
    doc[key].as_table_mut().expect("just made a table")
}

fn set_opt(t: &mut Table, key: &str, v: Option<&str>) {
    match v {
        Some(v) => t[key] = value(v),
        None => {
            t.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut components = BTreeMap::new();
        components.insert(
            "core".into(),
            ComponentRecord {
                state: ComponentState::Managed,
                reason: None,
                date: None,
            },
        );
        components.insert(
            "auth".into(),
            ComponentRecord {
                state: ComponentState::Ejected,
                reason: Some("we use mTLS".into()),
                date: parse_date("2026-11-22"),
            },
        );
        let mut files = BTreeMap::new();
        files.insert(
            "src/main.rs".into(),
            FileRecord {
                component: "core".into(),
                mode: Mode::Managed,
                sha256: "a".repeat(64),
            },
        );
        Manifest {
            schema: SCHEMA,
            template: "service".into(),
            version: Version::new(1, 0, 0),
            tool_version: "0.1.0".into(),
            name: "orders".into(),
            answers: vec![
                ("owner".into(), Answer::String("payments".into())),
                ("port".into(), Answer::Int(8080)),
            ],
            components,
            files,
            migrations: vec![MigrationRecord {
                id: "service-2.0.0-audit".into(),
                status: MigrationStatus::Applied,
                date: parse_date("2026-11-22").unwrap(),
            }],
            history: History {
                created: Some(Created {
                    date: parse_date("2026-01-05").unwrap(),
                    template: "service".into(),
                    version: Version::new(1, 0, 0),
                    tool_version: None,
                    source: Source::Git,
                }),
                upgrades: vec![
                    UpgradeEvent {
                        date: parse_date("2026-03-10").unwrap(),
                        from: Version::new(1, 0, 0),
                        to: Version::new(1, 1, 0),
                        tool_version: Some("0.0.9".into()),
                        files: None,
                        migrations_applied: vec![],
                        migrations_skipped: vec![],
                        source: Source::Git,
                    },
                    UpgradeEvent {
                        date: parse_date("2026-11-22").unwrap(),
                        from: Version::new(1, 1, 0),
                        to: Version::new(2, 0, 0),
                        tool_version: Some("0.1.0".into()),
                        files: Some(FileCounts {
                            updated: 4,
                            merged: 1,
                            conflicts: 2,
                        }),
                        migrations_applied: vec!["service-2.0.0-audit".into()],
                        migrations_skipped: vec!["service-2.0.0-x".into()],
                        source: Source::Recorded,
                    },
                ],
                adds: vec![AddEvent {
                    date: parse_date("2026-11-30").unwrap(),
                    version: Version::new(2, 0, 0),
                    component: "idempotency".into(),
                    set: vec![(
                        "idempotency_store".into(),
                        Answer::String("postgres".into()),
                    )],
                    tool_version: Some("0.1.0".into()),
                    files: FileCounts {
                        updated: 9,
                        merged: 1,
                        conflicts: 0,
                    },
                }],
            },
            read_schema: SCHEMA,
        }
    }

    /// `sample()` as a schema-1 tool wrote it: no `[history]`.
    fn sample_v1_text() -> String {
        let mut doc: DocumentMut = sample().to_toml(None).unwrap().parse().unwrap();
        doc.remove("history");
        doc["platform"]["schema"] = value(1);
        doc.to_string()
    }

    #[test]
    fn a_schema_1_manifest_is_read_as_schema_2_with_what_git_recovered() {
        let text = sample_v1_text();
        let m = Manifest::parse(&text, "platform.toml").unwrap();
        assert_eq!((m.schema, m.read_schema), (SCHEMA, 1));
        assert_eq!(m.history, History::default(), "no git: unknown");
        let rev = |date: &str, version: &str| v1_to_v2::Revision {
            date: parse_date(date).unwrap(),
            text: text.replace("version = \"1.0.0\"", &format!("version = \"{version}\"")),
        };
        let m = Manifest::parse_with(&text, "platform.toml", || {
            Some(vec![rev("2026-01-05", "1.0.0"), rev("2026-02-07", "2.0.0")])
        })
        .unwrap();
        assert_eq!(
            m.history.created.as_ref().unwrap().date.to_string(),
            "2026-01-05"
        );
        assert_eq!(m.history.upgrades.len(), 1);
        // Written back, it is schema 2 with the history, and reads the same.
        let again = Manifest::parse(&m.to_toml(Some(&text)).unwrap(), "p").unwrap();
        assert_eq!(again.read_schema, 2);
        assert_eq!(again.history.upgrades[0].to, Version::new(2, 0, 0));
    }

    #[test]
    fn a_schema_2_manifest_never_asks_git() {
        let text = sample().to_toml(None).unwrap();
        let m = Manifest::parse_with(&text, "p", || panic!("asked git")).unwrap();
        assert_eq!(m, sample());
    }

    #[test]
    fn history_in_a_schema_1_file_and_bad_history_entries_are_errors_naming_the_key() {
        let text = sample().to_toml(None).unwrap();
        let err = Manifest::parse(&text.replace("schema = 3", "schema = 1"), "p").unwrap_err();
        assert!(
            err.message
                .contains("[history] belongs to manifest schema 2"),
            "{}",
            err.message
        );
        assert_eq!(
            parse_err("to = \"2.0.0\"", "to = \"two\""),
            "platform.toml: history.upgrades[1].to: \"two\" is not a version (X.Y.Z): unexpected character 't' while parsing major version number"
        );
        assert_eq!(
            parse_err("merged = 1\n", ""),
            "platform.toml: history.upgrades[1]: give updated, merged and conflicts together, or none of them"
        );
        assert_eq!(
            parse_err("recovered_from = \"git\"\n", "recovered_from = \"svn\"\n"),
            "platform.toml: history.upgrades[0].recovered_from: unknown value \"svn\"; expected git"
        );
    }

    #[test]
    fn round_trips() {
        let m = sample();
        let text = m.to_toml(None).unwrap();
        assert_eq!(Manifest::parse(&text, "platform.toml").unwrap(), m);
    }

    #[test]
    fn adds_are_written_as_history_adds_and_bad_ones_name_the_key() {
        let text = sample().to_toml(None).unwrap();
        assert!(
            text.contains(
                "[[history.adds]]\ndate = \"2026-11-30\"\nversion = \"2.0.0\"\ncomponent = \"idempotency\"\nset = { idempotency_store = \"postgres\" }\ntool_version = \"0.1.0\"\nupdated = 9\nmerged = 1\nconflicts = 0\n"
            ),
            "{text}"
        );
        let bad = text.replace(
            "set = { idempotency_store = \"postgres\" }",
            "set = { idempotency_store = 1.5 }",
        );
        assert_eq!(
            Manifest::parse(&bad, "platform.toml").unwrap_err().message,
            "platform.toml: history.adds[0].set.idempotency_store = 1.5 is not a string, bool or integer"
        );
    }

    #[test]
    fn schema_3_is_written_only_with_an_add_and_a_newer_one_is_refused() {
        let with_add = sample();
        assert!(!with_add.history.adds.is_empty());
        let text = with_add.to_toml(None).unwrap();
        assert!(text.contains("schema = 3\n"), "{text}");
        assert_eq!(Manifest::parse(&text, "p").unwrap().read_schema, 3);
        let mut without = sample();
        without.history.adds.clear();
        let text = without.to_toml(None).unwrap();
        assert!(text.contains("schema = 2\n"), "{text}");
        let err = Manifest::parse(&text.replace("schema = 2", "schema = 4"), "p").unwrap_err();
        assert!(
            err.message.contains("schema 4") && err.message.contains("reads schema 3 at most"),
            "{}",
            err.message
        );
    }

    #[test]
    fn keeps_hand_comments_on_rewrite() {
        let m = sample();
        let text = m.to_toml(None).unwrap();
        let edited = text.replace(
            "[answers]",
            "# our answers, reviewed by the team\n[answers]",
        );
        let mut m2 = m.clone();
        m2.version = Version::new(2, 0, 0);
        let rewritten = m2.to_toml(Some(&edited)).unwrap();
        assert!(
            rewritten.contains("# our answers, reviewed by the team\n[answers]"),
            "{rewritten}"
        );
        assert_eq!(
            Manifest::parse(&rewritten, "p").unwrap().version,
            Version::new(2, 0, 0)
        );
    }

    #[test]
    fn newer_schema_asks_to_upgrade_the_tool() {
        let text = sample()
            .to_toml(None)
            .unwrap()
            .replace("schema = 3", "schema = 99");
        let err = Manifest::parse(&text, "platform.toml").unwrap_err();
        assert!(err.message.contains("schema 99"), "{}", err.message);
        assert!(err.hints[0].contains("upgrade the tool"));
    }

    /// Parses `sample()` with `from` replaced by `to` and returns the error message.
    fn parse_err(from: &str, to: &str) -> String {
        let text = sample().to_toml(None).unwrap();
        assert!(text.contains(from), "{from} not in {text}");
        Manifest::parse(&text.replacen(from, to, 1), "platform.toml")
            .unwrap_err()
            .message
    }

    #[test]
    fn unknown_status_date_mode_and_state_are_errors_naming_the_key() {
        assert_eq!(
            parse_err("status = \"applied\"", "status = \"skiped\""),
            "platform.toml: migrations[0].status: unknown value \"skiped\"; expected applied or skipped"
        );
        assert_eq!(
            parse_err(
                "status = \"applied\"\ndate = \"2026-11-22\"",
                "status = \"applied\"\ndate = \"22/11/2026\""
            ),
            "platform.toml: migrations[0].date: \"22/11/2026\" is not a date (YYYY-MM-DD)"
        );
        assert_eq!(
            parse_err("mode = \"managed\"", "mode = \"manged\""),
            "platform.toml: files.\"src/main.rs\".mode: unknown value \"manged\"; expected managed, seeded or structured"
        );
        assert_eq!(
            parse_err("state = \"ejected\"", "state = \"eject\""),
            "platform.toml: components.auth.state: unknown value \"eject\"; expected managed or ejected"
        );
        assert_eq!(
            parse_err("date = \"2026-11-22\"\n", "date = \"2026-02-30\"\n"),
            "platform.toml: components.auth.date: \"2026-02-30\" is not a date (YYYY-MM-DD)"
        );
    }

    #[test]
    fn a_skipped_migration_is_typed_skipped() {
        let text = sample()
            .to_toml(None)
            .unwrap()
            .replace("\"applied\"", "\"skipped\"");
        let m = Manifest::parse(&text, "platform.toml").unwrap();
        assert_eq!(m.migrations[0].status, MigrationStatus::Skipped);
    }

    #[test]
    fn bad_fields_are_named() {
        let text = sample().to_toml(None).unwrap();
        let err = Manifest::parse(&text.replace("\"managed\"", "\"owned\""), "p.toml").unwrap_err();
        assert!(err.message.contains("owned"), "{}", err.message);
        let err = Manifest::parse(
            // The first one is [platform]'s (history's dates come later).
            &text.replacen("version = \"1.0.0\"", "version = \"one\"", 1),
            "p.toml",
        )
        .unwrap_err();
        assert!(err.message.contains("version `one`"), "{}", err.message);
        for bad in ["../escape", "/etc/passwd", "a//b", "./a", "C:\\\\x"] {
            let err = Manifest::parse(&text.replace("src/main.rs", bad), "p.toml").unwrap_err();
            assert!(
                err.message
                    .contains("not a relative path inside the service"),
                "{bad}: {}",
                err.message
            );
        }
        let err = Manifest::parse("[platform]\nschema = 1\n", "p.toml").unwrap_err();
        assert!(err.message.contains("p.toml"), "{}", err.message);
    }
}
