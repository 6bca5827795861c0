//! Released versions are frozen: the fingerprint of everything a release contributes to what its
//! version renders, and the lock file (`templates/releases.lock`) that records it per release.
//!
//! A service on version N upgrades from N's exact old render (the base of every 3-way merge),
//! so a released version must render tomorrow exactly what it rendered on release day. The
//! fingerprint covers, per release:
//! - every file under its `files/` overlay: path and bytes;
//! - from `release.toml`: `questions` (key, type, default, choices, pattern, min, max),
//!   `components` (name, ejectable), `files` entries (component, mode, when, syntax, raw),
//!   `deleted`, `renamed`, and each migration's `id` (recorded in every service's ledger) and
//!   `edits` (what `upgrade` does to the team's files).
//!
//! Metadata that never renders may change after release, and is left out: `date`, `summary`,
//! `changelog`, the `[support]` window, a question's `help`, a component's `description`, a
//! migration's `description` and `required`, and `[[breaks]]`.
//!
//! Rendering version N overlays releases 1..N, so N's render is fixed once the fingerprints of
//! releases 1..N are (and the renderer itself is: the render snapshots catch a change there).

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use super::release::{ComponentMeta, Edit, FileMeta, MigrationMeta, Question, ReleaseMeta};
use super::{Catalogue, Release, Template};
use crate::error::{Error, Result};

/// The lock file's name, at the root of the templates directory.
pub const LOCK_FILE: &str = "releases.lock";

/// Set to anything to add the releases missing from the lock (existing entries are never
/// rewritten): [`BLESS_COMMAND`].
pub const BLESS_ENV: &str = "RELEASES_LOCK_BLESS";

/// The command that records new releases in the lock.
pub const BLESS_COMMAND: &str =
    "RELEASES_LOCK_BLESS=1 cargo test --test released_versions released_versions_match_the_lock";

const HEADER: &str = "\
# Released versions are frozen: the sha256 of everything each release contributes to what its
# version renders (files/ overlay, and release.toml's questions, components, files, deleted,
# renamed, migration ids and edits; not its changelog, support window or other prose).
# `cargo test --test released_versions` fails when a release no longer matches its entry: cut
# a new release instead. New releases are added, never rewritten, by:
#   RELEASES_LOCK_BLESS=1 cargo test --test released_versions released_versions_match_the_lock
# See CONTRIBUTING.md, \"Cutting a release\".
";

/// `sha256:<hex>` over everything in `release` that affects what a version renders (see the
/// module docs for what is in and what is out).
pub fn fingerprint(release: &Release) -> String {
    let mut h = Fields(Sha256::new());
    h.field("fingerprint", b"cargo-platform release v1");
    // Destructured in full so that a new field in release.toml fails to compile here until
    // someone decides whether it renders.
    let ReleaseMeta {
        version: _,
        date: _,
        summary: _,
        // A draft is never in the lock (`check` skips it); a released one has `draft = false`.
        draft: _,
        changelog: _,
        support: _,
        questions,
        components,
        files,
        deleted,
        renamed,
        migrations,
        breaks: _,
    } = &release.meta;
    h.count("questions", questions.len());
    for q in questions {
        let Question {
            key,
            kind,
            help: _,
            default,
            choices,
            pattern,
            min,
            max,
        } = q;
        h.field("key", key.as_bytes());
        h.field("type", kind.as_str().as_bytes());
        h.opt("default", default.as_ref().map(|v| v.to_string()));
        h.opt("choices", choices.as_ref().map(|c| c.join("\0")));
        h.opt("pattern", pattern.clone());
        h.opt("min", min.map(|v| v.to_string()));
        h.opt("max", max.map(|v| v.to_string()));
    }
    h.count("components", components.len());
    for (name, meta) in components {
        let ComponentMeta {
            description: _,
            ejectable,
        } = meta;
        h.field("component", name.as_bytes());
        h.field("ejectable", if *ejectable { b"true" } else { b"false" });
    }
    h.count("files", files.len());
    for (path, meta) in files {
        let FileMeta {
            component,
            mode,
            when,
            syntax,
            raw,
            new_only,
        } = meta;
        h.field("path", path.as_bytes());
        h.field("component", component.as_bytes());
        h.field("mode", mode.as_str().as_bytes());
        h.opt("when", when.clone());
        h.opt("syntax", syntax.map(|s| format!("{s:?}")));
        h.field("raw", if *raw { b"true" } else { b"false" });
        // Hashed only when set: a field added after releases were locked keeps their prints.
        if *new_only {
            h.field("new_only", b"true");
        }
    }
    h.count("deleted", deleted.len());
    for path in deleted {
        h.field("path", path.as_bytes());
    }
    h.count("renamed", renamed.len());
    for (from, to) in renamed {
        h.field("from", from.as_bytes());
        h.field("to", to.as_bytes());
    }
    h.count("migrations", migrations.len());
    for m in migrations {
        let MigrationMeta {
            id,
            description: _,
            required: _,
            edits,
        } = m;
        h.field("id", id.as_bytes());
        h.count("edits", edits.len());
        for edit in edits {
            match edit {
                Edit::RenameKey { files, from, to } => {
                    h.field("kind", b"rename_key");
                    h.field("files", files.as_bytes());
                    h.field("from", from.as_bytes());
                    h.field("to", to.as_bytes());
                }
            }
        }
    }
    let mut overlay: Vec<(String, &[u8])> = release
        .files
        .map(|dir| {
            super::all_files(dir)
                .into_iter()
                .map(|f| (super::relative(dir, f.path()), f.contents()))
                .collect()
        })
        .unwrap_or_default();
    overlay.sort();
    h.count("overlay", overlay.len());
    for (path, bytes) in overlay {
        h.field("path", path.as_bytes());
        h.field("bytes", bytes);
    }
    format!("sha256:{}", super::render::sha256_hex(&h.0.finalize()))
}

/// Feeds named, length-prefixed fields into the hash, so no two different releases feed the
/// same bytes.
struct Fields(Sha256);

impl Fields {
    fn field(&mut self, name: &str, value: &[u8]) {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
    }

    fn opt(&mut self, name: &str, value: Option<String>) {
        match value {
            Some(v) => self.field(name, v.as_bytes()),
            None => self.field(name, b"\xff(none)"),
        }
    }

    fn count(&mut self, name: &str, n: usize) {
        self.field(name, &(n as u64).to_le_bytes());
    }
}

/// A release that does not match the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A locked release whose content changed.
    Changed {
        template: String,
        version: String,
        locked: String,
        now: String,
        /// The version to cut instead: the template's newest, patch + 1.
        next: String,
    },
    /// A release the lock does not record yet.
    Unlocked {
        template: String,
        version: String,
        fingerprint: String,
    },
    /// A locked release that is gone from the templates.
    Removed { template: String, version: String },
    /// A locked (released) release marked `draft = true` again.
    LockedDraft { template: String, version: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Changed {
                template,
                version,
                locked,
                now,
                next,
            } => write!(
                f,
                "template `{template}` {version} changed after its release ({LOCK_FILE} has {locked}, \
                 the templates now give {now}). Released versions are frozen: services on \
                 {version} upgrade from its exact old render, so it must never render anything \
                 else. Undo the change under templates/{template}/{version}/ (e.g. `git checkout \
                 -- templates/{template}/{version}`) and cut a new release instead: create \
                 templates/{template}/{next}/ with a release.toml and only the changed files under \
                 files/ (CONTRIBUTING.md, \"Adding a template version\"), then record it with \
                 `{BLESS_COMMAND}`. Only the changelog, support window and other prose of a \
                 released version may change."
            ),
            Problem::Unlocked {
                template,
                version,
                fingerprint,
            } => write!(
                f,
                "template `{template}` {version} ({fingerprint}) is not in {LOCK_FILE}: a new \
                 release is recorded when it ships. Run `{BLESS_COMMAND}` (it adds the missing \
                 entries and never rewrites an existing one) and commit templates/{LOCK_FILE} \
                 with the release; from then on {version} is frozen."
            ),
            Problem::Removed { template, version } => write!(
                f,
                "{LOCK_FILE} records template `{template}` {version}, which the templates no \
                 longer have. Released versions stay forever (services on {version} upgrade from \
                 its exact old render): restore templates/{template}/{version}/ from git."
            ),
            Problem::LockedDraft { template, version } => write!(
                f,
                "template `{template}` {version} is marked `draft = true`, but {LOCK_FILE} \
                 records it as released. A released version never becomes a draft again (it \
                 would vanish as the default while services are on it): remove `draft = true` \
                 from templates/{template}/{version}/release.toml."
            ),
        }
    }
}

/// The lock's entries: template → version → fingerprint.
type Entries = BTreeMap<String, BTreeMap<String, String>>;

fn parse_lock(text: &str) -> Result<Entries> {
    toml::from_str(text).map_err(|e| {
        Error::new(format!("{LOCK_FILE} is not a valid lock: {e}")).hint(format!(
            "it holds one table per template, `\"X.Y.Z\" = \"sha256:…\"` per release; restore it \
             from git, then run `{BLESS_COMMAND}`"
        ))
    })
}

/// Every release of every template against the lock (`text`, empty when there is none yet).
pub fn check(catalogue: &Catalogue, text: &str) -> Result<Vec<Problem>> {
    let locked = parse_lock(text)?;
    let mut problems = Vec::new();
    for template in &catalogue.templates {
        let entries = locked.get(&template.name);
        for release in &template.releases {
            let version = release.version.to_string();
            let now = fingerprint(release);
            let locked = entries.and_then(|e| e.get(&version));
            if release.is_draft() {
                // A draft is under construction: not frozen, not demanded. Once `draft = true`
                // is removed it is a release like any other, and must be recorded.
                if locked.is_some() {
                    problems.push(Problem::LockedDraft {
                        template: template.name.clone(),
                        version,
                    });
                }
                continue;
            }
            match locked {
                Some(was) if *was == now => {}
                Some(was) => problems.push(Problem::Changed {
                    template: template.name.clone(),
                    version,
                    locked: was.clone(),
                    now,
                    next: next_patch(template),
                }),
                None => problems.push(Problem::Unlocked {
                    template: template.name.clone(),
                    version,
                    fingerprint: now,
                }),
            }
        }
    }
    for (name, versions) in &locked {
        let template = catalogue.templates.iter().find(|t| &t.name == name);
        for version in versions.keys() {
            let known = template
                .is_some_and(|t| t.releases.iter().any(|r| r.version.to_string() == *version));
            if !known {
                problems.push(Problem::Removed {
                    template: name.clone(),
                    version: version.clone(),
                });
            }
        }
    }
    Ok(problems)
}

/// The lock with every `Unlocked` release of `problems` added; existing entries, comments and
/// layout are kept byte for byte (toml_edit), and nothing else is changed.
pub fn bless(text: &str, problems: &[Problem]) -> Result<String> {
    parse_lock(text)?;
    // A new lock starts with the header; toml_edit would keep a comments-only document's
    // comments after the tables it gains.
    let (header, source) = if text.trim().is_empty() {
        (format!("{HEADER}\n"), "")
    } else {
        (String::new(), text)
    };
    let mut doc: toml_edit::DocumentMut = source
        .parse()
        .map_err(|e| Error::new(format!("{LOCK_FILE}: {e}")))?;
    for problem in problems {
        if let Problem::Unlocked {
            template,
            version,
            fingerprint,
        } = problem
        {
            let table = doc
                .entry(template)
                .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
                .as_table_mut()
                .ok_or_else(|| Error::new(format!("{LOCK_FILE}: `{template}` is not a table")))?;
            if table.contains_key(version) {
                continue;
            }
            table.insert(version, toml_edit::value(fingerprint.as_str()));
        }
    }
    Ok(header + &doc.to_string())
}

/// The template's newest version with its patch number + 1: the release to cut instead of
/// changing a released one.
fn next_patch(template: &Template) -> String {
    let newest = &template.newest().version;
    semver::Version::new(newest.major, newest.minor, newest.patch + 1).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "version = \"1.0.0\"\ndate = \"2026-01-01\"\nsummary = \"s\"\n\
        changelog = [\"first\"]\n\
        [support]\ndeprecated = \"2027-01-01\"\n\
        [[questions]]\nkey = \"store\"\ntype = \"choice\"\nhelp = \"Where\"\ndefault = \"memory\"\n\
        choices = [\"memory\", \"postgres\"]\n\
        [components.core]\ndescription = \"c\"\nejectable = false\n\
        [[migrations]]\nid = \"t-1.0.0-x\"\ndescription = \"d\"\n\
        edits = [{ kind = \"rename_key\", files = \"config/*.toml\", from = \"a.b\", to = \"a.c\" }]\n\
        [[breaks]]\ncomponent = \"core\"\nchanged = \"x\"\naction = \"y\"\n";

    fn release(text: &str) -> Release {
        Release {
            version: semver::Version::new(1, 0, 0),
            meta: toml::from_str(text).unwrap(),
            files: None,
        }
    }

    fn print(text: &str) -> String {
        fingerprint(&release(text))
    }

    #[test]
    fn prose_and_support_windows_do_not_count() {
        let base = print(V1);
        for (from, to) in [
            (
                "changelog = [\"first\"]",
                "changelog = [\"first\", \"fixed a typo\"]",
            ),
            ("summary = \"s\"", "summary = \"a better summary\""),
            ("date = \"2026-01-01\"", "date = \"2026-01-02\""),
            (
                "deprecated = \"2027-01-01\"",
                "deprecated = \"2026-12-01\"\nend_of_support = \"2027-06-30\"",
            ),
            ("help = \"Where\"", "help = \"Where results are kept\""),
            ("description = \"c\"", "description = \"core things\""),
            (
                "description = \"d\"",
                "description = \"clearer\"\nrequired = true",
            ),
            ("action = \"y\"", "action = \"do this instead\""),
        ] {
            let changed = V1.replacen(from, to, 1);
            assert_ne!(changed, V1, "{from}");
            assert_eq!(print(&changed), base, "{from} -> {to} must not count");
        }
    }

    #[test]
    fn everything_that_renders_counts() {
        let base = print(V1);
        for (from, to) in [
            ("default = \"memory\"", "default = \"postgres\""),
            (
                "\"memory\", \"postgres\"]",
                "\"memory\", \"postgres\", \"redis\"]",
            ),
            ("key = \"store\"", "key = \"storage\""),
            ("type = \"choice\"", "type = \"string\""),
            ("ejectable = false", "ejectable = true"),
            ("id = \"t-1.0.0-x\"", "id = \"t-1.0.0-y\""),
            ("to = \"a.c\"", "to = \"a.d\""),
            ("[components.core]", "[components.core2]"),
            ("summary = \"s\"\n", "summary = \"s\"\ndeleted = [\"x\"]\n"),
            (
                "summary = \"s\"\n",
                "summary = \"s\"\nrenamed = { a = \"b\" }\n",
            ),
            (
                "[[questions]]",
                "[files.\"a.rs\"]\ncomponent = \"core\"\nmode = \"managed\"\n[[questions]]",
            ),
        ] {
            let changed = V1.replacen(from, to, 1);
            assert_ne!(changed, V1, "{from}");
            assert_ne!(print(&changed), base, "{from} -> {to} must count");
        }
    }

    fn template(releases: Vec<Release>) -> Catalogue {
        Catalogue {
            templates: vec![Template {
                name: "t".into(),
                description: "d".into(),
                releases,
            }],
        }
    }

    fn at(version: &str, text: &str) -> Release {
        Release {
            version: semver::Version::parse(version).unwrap(),
            meta: toml::from_str(&text.replacen("1.0.0", version, 1)).unwrap(),
            files: None,
        }
    }

    #[test]
    fn a_draft_is_not_demanded_until_its_flag_is_removed() {
        let draft = V1.replacen("summary = \"s\"\n", "summary = \"s\"\ndraft = true\n", 1);
        let one = fingerprint(&at("1.0.0", V1));
        let lock = format!("[t]\n\"1.0.0\" = \"{one}\"\n");
        let drafting = template(vec![at("1.0.0", V1), at("2.0.0", &draft)]);
        assert_eq!(check(&drafting, &lock).unwrap(), vec![]);

        let released = template(vec![at("1.0.0", V1), at("2.0.0", V1)]);
        let problems = check(&released, &lock).unwrap();
        assert_eq!(
            problems,
            vec![Problem::Unlocked {
                template: "t".into(),
                version: "2.0.0".into(),
                fingerprint: fingerprint(&at("2.0.0", V1)),
            }]
        );
        // The flag is prose: removing it does not change what the release renders.
        assert_eq!(
            fingerprint(&at("2.0.0", &draft)),
            fingerprint(&at("2.0.0", V1))
        );

        let redrafted = template(vec![at("1.0.0", &draft)]);
        let problems = check(&redrafted, &lock).unwrap();
        assert_eq!(
            problems,
            vec![Problem::LockedDraft {
                template: "t".into(),
                version: "1.0.0".into(),
            }]
        );
        assert!(
            problems[0]
                .to_string()
                .contains("remove `draft = true` from templates/t/1.0.0/release.toml"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn bless_adds_and_never_rewrites() {
        let text = "# ours\n[service]\n\"1.0.0\" = \"sha256:aaa\" # keep\n";
        let problems = vec![
            Problem::Unlocked {
                template: "service".into(),
                version: "2.0.0".into(),
                fingerprint: "sha256:bbb".into(),
            },
            Problem::Changed {
                template: "service".into(),
                version: "1.0.0".into(),
                locked: "sha256:aaa".into(),
                now: "sha256:ccc".into(),
                next: "2.0.1".into(),
            },
        ];
        let blessed = bless(text, &problems).unwrap();
        assert_eq!(
            blessed,
            "# ours\n[service]\n\"1.0.0\" = \"sha256:aaa\" # keep\n\"2.0.0\" = \"sha256:bbb\"\n"
        );
        let fresh = bless("", &problems[..1]).unwrap();
        assert!(fresh.starts_with(HEADER), "{fresh}");
        assert!(
            HEADER.contains(BLESS_COMMAND),
            "the header names the command that blesses"
        );
        assert!(
            fresh.ends_with("\n\n[service]\n\"2.0.0\" = \"sha256:bbb\"\n"),
            "{fresh}"
        );
        assert!(bless("[service\n", &problems).is_err());
    }
}
