//! Manifest schema 1 → 2: a pure function from what git found (the committed revisions of
//! platform.toml, oldest first) to the history schema 2 records. Git access stays in
//! `crate::git`; this only reads the data it is given.
//!
//! - The first revision is the creation: its date, template, version and tool version.
//! - Each later revision whose `[platform] version` differs from the one before is an upgrade
//!   from → to on that revision's date.
//! - No revisions (no git, or platform.toml never committed): the history is unknown — no
//!   creation date, no upgrades. Nothing is invented.
//!
//! Recovered entries say `recovered_from = "git"`; file counts and migrations are left out
//! (git does not know them).

use jiff::civil::Date;
use semver::Version;

use super::history::{Created, History, Source, UpgradeEvent};

/// One committed version of platform.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The commit's date (in the committer's time zone).
    pub date: Date,
    /// The file's text in that commit.
    pub text: String,
}

/// What a revision's `[platform]` table says, if it can be read at all.
struct Platform {
    template: String,
    version: Version,
    tool_version: Option<String>,
}

fn platform(text: &str) -> Option<Platform> {
    let table: toml::Table = toml::from_str(text).ok()?;
    let p = table.get("platform")?;
    Some(Platform {
        template: p.get("template")?.as_str()?.to_string(),
        version: Version::parse(p.get("version")?.as_str()?).ok()?,
        tool_version: p
            .get("tool_version")
            .and_then(toml::Value::as_str)
            .map(str::to_string),
    })
}

/// The schema-2 history of a schema-1 manifest, from the revisions git found (`None`: no git).
pub fn convert(found: Option<&[Revision]>) -> History {
    let mut history = History::default();
    // Revisions a person broke (not TOML, no version) say nothing; they are passed over.
    let readable = found
        .unwrap_or_default()
        .iter()
        .filter_map(|r| platform(&r.text).map(|p| (r.date, p)));
    let mut last: Option<Version> = None;
    for (date, p) in readable {
        match &last {
            None => {
                history.created = Some(Created {
                    date,
                    template: p.template.clone(),
                    version: p.version.clone(),
                    tool_version: p.tool_version.clone(),
                    source: Source::Git,
                });
            }
            Some(before) if *before != p.version => history.upgrades.push(UpgradeEvent {
                date,
                from: before.clone(),
                to: p.version.clone(),
                tool_version: p.tool_version.clone(),
                files: None,
                migrations_applied: Vec::new(),
                migrations_skipped: Vec::new(),
                source: Source::Git,
            }),
            Some(_) => {}
        }
        last = Some(p.version);
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_date;

    fn rev(date: &str, version: &str) -> Revision {
        Revision {
            date: parse_date(date).unwrap(),
            text: format!(
                "[platform]\nschema = 1\ntemplate = \"service\"\nversion = \"{version}\"\ntool_version = \"0.1.0\"\nname = \"orders\"\n"
            ),
        }
    }

    #[test]
    fn no_git_means_unknown() {
        assert_eq!(convert(None), History::default());
        assert_eq!(convert(Some(&[])), History::default());
    }

    #[test]
    fn first_revision_is_the_creation_and_version_changes_are_upgrades() {
        let h = convert(Some(&[
            rev("2026-01-05", "1.0.0"),
            rev("2026-02-01", "1.0.0"), // answers edited: not an upgrade
            rev("2026-03-10", "2.0.0"),
            Revision {
                date: parse_date("2026-03-11").unwrap(),
                text: "not = [toml".into(),
            },
            rev("2026-05-02", "2.1.0"),
        ]));
        let c = h.created.unwrap();
        assert_eq!(c.date, parse_date("2026-01-05").unwrap());
        assert_eq!(c.version, Version::new(1, 0, 0));
        assert_eq!(c.template, "service");
        assert_eq!(c.source, Source::Git);
        let ups: Vec<(String, String, String)> = h
            .upgrades
            .iter()
            .map(|u| (u.date.to_string(), u.from.to_string(), u.to.to_string()))
            .collect();
        assert_eq!(
            ups,
            vec![
                ("2026-03-10".into(), "1.0.0".into(), "2.0.0".into()),
                ("2026-05-02".into(), "2.0.0".into(), "2.1.0".into()),
            ]
        );
        assert!(h.upgrades.iter().all(|u| u.files.is_none()));
    }
}
