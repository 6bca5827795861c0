//! The schema of `release.toml`: one release of a template (see CONTRIBUTING.md).

use std::collections::BTreeMap;

use serde::Deserialize;

/// Who owns a file after `new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The platform's: upgrades 3-way merge it.
    Managed,
    /// Written once; the team's from then on.
    Seeded,
    /// TOML the team also edits; upgrades edit it key by key.
    Structured,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Managed => "managed",
            Mode::Seeded => "seeded",
            Mode::Structured => "structured",
        }
    }

    const WORDS: &[(&str, Mode)] = &[
        ("managed", Mode::Managed),
        ("seeded", Mode::Seeded),
        ("structured", Mode::Structured),
    ];
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d, Self::WORDS)
    }
}

/// Deserialises one of a closed set of words; anything else is an error listing them:
/// `unknown value "skiped"; expected applied or skipped`.
pub(crate) fn one_of<'de, D, T>(d: D, words: &[(&str, T)]) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Copy,
{
    let text = String::deserialize(d)?;
    if let Some((_, v)) = words.iter().find(|(w, _)| *w == text) {
        return Ok(*v);
    }
    let names: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
    let expected = match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Err(serde::de::Error::custom(format!(
        "unknown value {text:?}; expected {expected}"
    )))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseMeta {
    pub version: String,
    pub date: String,
    pub summary: String,
    /// A release under construction: never the default anywhere (the newest release is the
    /// newest that is not a draft), rendered only when asked for by version with the opt-in
    /// (`--allow-draft`), and not in `releases.lock`. Only the newest release may be one.
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub changelog: Vec<String>,
    #[serde(default)]
    pub support: Support,
    #[serde(default)]
    pub questions: Vec<Question>,
    #[serde(default)]
    pub components: BTreeMap<String, ComponentMeta>,
    #[serde(default)]
    pub files: BTreeMap<String, FileMeta>,
    #[serde(default)]
    pub deleted: Vec<String>,
    #[serde(default)]
    pub renamed: BTreeMap<String, String>,
    #[serde(default)]
    pub migrations: Vec<MigrationMeta>,
    /// Interface breaks between core and a component: what a team that ejected the component
    /// must change in its copy when it upgrades through this release.
    #[serde(default)]
    pub breaks: Vec<Break>,
}

/// A `[[breaks]]` entry: this release changed what core expects of `component` (or what the
/// component may expect of core), so an ejected copy of it no longer fits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Break {
    /// The ejectable component whose ejected copy no longer fits.
    pub component: String,
    /// What changed, in the words a team reads.
    pub changed: String,
    /// What the team must do to its ejected copy.
    pub action: String,
}

/// The support window of a release.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Support {
    pub deprecated: Option<String>,
    pub end_of_support: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuestionKind {
    String,
    Bool,
    Int,
    Choice,
}

impl QuestionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionKind::String => "string",
            QuestionKind::Bool => "bool",
            QuestionKind::Int => "int",
            QuestionKind::Choice => "choice",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: QuestionKind,
    pub help: String,
    pub default: Option<toml::Value>,
    pub choices: Option<Vec<String>>,
    pub pattern: Option<String>,
    pub min: Option<i64>,
    pub max: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentMeta {
    pub description: String,
    #[serde(default = "yes")]
    pub ejectable: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMeta {
    pub component: String,
    pub mode: Mode,
    /// A minijinja expression over the answers; the file is rendered only when it is true.
    pub when: Option<String>,
    /// `alt` switches to `[[ ]]` / `[% %]` / `[# #]` delimiters.
    pub syntax: Option<Syntax>,
    /// Copied verbatim, not rendered.
    #[serde(default)]
    pub raw: bool,
    /// Seeded files only: written by `new` alone, never added by `upgrade` or `add` to a service
    /// that was created without it (an example wired into a new service's own seeded code,
    /// which an existing service's code does not call).
    #[serde(default)]
    pub new_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Syntax {
    Default,
    Alt,
}

/// A migration a release ships: an id in the service's ledger, and what it does.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationMeta {
    pub id: String,
    pub description: String,
    /// `check` fails while a required migration is pending.
    #[serde(default)]
    pub required: bool,
    /// Structured edits this migration applies on top of the file merges.
    #[serde(default)]
    pub edits: Vec<Edit>,
}

/// A glob over service paths (`--exclude`, a migration's `files`): `*` and `?` stay within one
/// directory, `**` crosses directories.
pub fn path_glob(pattern: &str) -> Result<globset::Glob, globset::Error> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
}

/// A structured edit to the team's TOML files.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Edit {
    /// Move a config key's value to a new dotted key in every matching TOML file.
    RenameKey {
        /// Glob of the files to edit, e.g. `config/*.toml`.
        files: String,
        from: String,
        to: String,
    },
}
