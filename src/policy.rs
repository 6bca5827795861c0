//! Where a service stands against its template: pending and skipped migrations, the support
//! window of its version on a given day, and platform-owned files edited locally. Pure functions
//! of the manifest, the template and a date, shared by `status`, `check` and `upgrade`.

use jiff::civil::Date;
use semver::Version;

use crate::error::{Error, Result};
use crate::manifest::{Manifest, MigrationStatus};
use crate::template::Template;
use crate::template::release::Mode;

/// Overrides "today" (YYYY-MM-DD): a testing aid, so support windows can be checked on any day.
pub const TODAY_ENV: &str = "CARGO_PLATFORM_TODAY";

/// Today's date in UTC, or the date in `CARGO_PLATFORM_TODAY` when it is set.
pub fn today() -> Result<Date> {
    match std::env::var(TODAY_ENV) {
        Ok(value) => parse_date(&value).ok_or_else(|| {
            Error::new(format!("{TODAY_ENV}=`{value}` is not a date (YYYY-MM-DD)")).hint(format!(
                "unset {TODAY_ENV} (a testing aid) or give a date such as 2027-03-31"
            ))
        }),
        Err(std::env::VarError::NotPresent) => Ok(jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::new(format!("{TODAY_ENV} is not UTF-8"))
                .hint(format!("unset {TODAY_ENV} (a testing aid)")))
        }
    }
}

/// A date written exactly as `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    crate::manifest::parse_date(text)
}

/// A migration of a release newer than the service's version that is not in its ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMigration {
    pub id: String,
    /// The release that ships it.
    pub version: Version,
    pub required: bool,
    pub description: String,
}

/// The migrations of every release newer than the service's version (up to the newest), oldest
/// release first, whose id is not in the service's ledger (applied or skipped).
pub fn pending_migrations(manifest: &Manifest, template: &Template) -> Vec<PendingMigration> {
    template
        .migrations_between(&manifest.version, &template.newest().version)
        .filter(|(_, m)| !manifest.migrations.iter().any(|entry| entry.id == m.id))
        .map(|(r, m)| PendingMigration {
            id: m.id.clone(),
            version: r.version.clone(),
            required: m.required,
            description: m.description.clone(),
        })
        .collect()
}

/// A ledger entry with status `skipped`: the team chose not to apply it, and it stays visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedMigration {
    pub id: String,
    pub date: Date,
    /// The release that ships it, its description and whether it is required — `None` when no
    /// embedded release declares this id.
    pub version: Option<Version>,
    pub required: Option<bool>,
    pub description: Option<String>,
}

/// Every ledger entry recorded as `skipped`, in ledger order, with what the template says of it.
pub fn skipped_migrations(manifest: &Manifest, template: &Template) -> Vec<SkippedMigration> {
    manifest
        .migrations
        .iter()
        .filter(|entry| entry.status == MigrationStatus::Skipped)
        .map(|entry| {
            let declared = template.migration(&entry.id);
            SkippedMigration {
                id: entry.id.clone(),
                date: entry.date,
                version: declared.map(|(r, _)| r.version.clone()),
                required: declared.map(|(_, m)| m.required),
                description: declared.map(|(_, m)| m.description.clone()),
            }
        })
        .collect()
}

/// Where a version stands in its support window on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupportState {
    /// No deprecation date reached.
    Supported,
    /// On or after the `deprecated` date, not yet past `end_of_support`.
    Deprecated,
    /// After the `end_of_support` date (the last supported day).
    EndOfSupport,
}

impl SupportState {
    pub fn as_str(self) -> &'static str {
        match self {
            SupportState::Supported => "supported",
            SupportState::Deprecated => "deprecated",
            SupportState::EndOfSupport => "end_of_support",
        }
    }
}

/// The support window of one version (from its release.toml `[support]`) evaluated on `today`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportWindow {
    pub version: Version,
    pub deprecated: Option<Date>,
    pub end_of_support: Option<Date>,
    pub today: Date,
    pub state: SupportState,
}

impl SupportWindow {
    /// Days from `today` to the end of support (negative once past it).
    pub fn days_left(&self) -> Option<i32> {
        let end = self.end_of_support?;
        self.today.until(end).ok().map(|span| span.get_days())
    }
}

/// Evaluates the support window of `version` of `template` on `today`. A version is deprecated
/// from its `deprecated` date on, and out of support after its `end_of_support` date.
pub fn support_window(
    template: &Template,
    version: &Version,
    today: Date,
) -> Result<SupportWindow> {
    let release = template
        .releases
        .iter()
        .find(|r| &r.version == version)
        .ok_or_else(|| {
            Error::new(format!(
                "template `{}` has no release {version}",
                template.name
            ))
        })?;
    let date = |key: &str, value: &Option<String>| -> Result<Option<Date>> {
        value
            .as_deref()
            .map(|v| {
                parse_date(v).ok_or_else(|| {
                    Error::new(format!(
                        "template `{}` release {version}: [support] {key} `{v}` is not a date (YYYY-MM-DD)",
                        template.name
                    ))
                    .hint("this build of cargo-platform embeds a broken release; report it to the platform team")
                })
            })
            .transpose()
    };
    let deprecated = date("deprecated", &release.meta.support.deprecated)?;
    let end_of_support = date("end_of_support", &release.meta.support.end_of_support)?;
    let state = if end_of_support.is_some_and(|end| today > end) {
        SupportState::EndOfSupport
    } else if deprecated.is_some_and(|d| today >= d) {
        SupportState::Deprecated
    } else {
        SupportState::Supported
    };
    Ok(SupportWindow {
        version: version.clone(),
        deprecated,
        end_of_support,
        today,
        state,
    })
}

/// How a platform-owned file differs from what the platform last wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Its SHA-256 differs from the one in the manifest.
    Edited,
    /// It is gone from disk.
    Deleted,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Edited => "edited",
            Change::Deleted => "deleted",
        }
    }
}

/// A managed or structured file the team changed since the platform last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEdit {
    pub path: String,
    pub component: String,
    pub mode: Mode,
    pub change: Change,
}

/// The managed and structured files recorded in the manifest whose content on disk is not what
/// the platform last wrote. `on_disk(path)` gives the SHA-256 of the file at that path relative to
/// the service root, or `None` when it does not exist. Seeded files and files of ejected
/// components are the team's and never reported; no other file is looked at.
pub fn local_edits(
    manifest: &Manifest,
    mut on_disk: impl FnMut(&str) -> Result<Option<String>>,
) -> Result<Vec<LocalEdit>> {
    let mut edits = Vec::new();
    for (path, record) in &manifest.files {
        if record.mode == Mode::Seeded || manifest.is_ejected(&record.component) {
            continue;
        }
        let change = match on_disk(path)? {
            None => Change::Deleted,
            Some(sha) if !sha.eq_ignore_ascii_case(&record.sha256) => Change::Edited,
            Some(_) => continue,
        };
        edits.push(LocalEdit {
            path: path.clone(),
            component: record.component.clone(),
            mode: record.mode,
            change,
        });
    }
    Ok(edits)
}

/// How much a `check` finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Puts the service out of policy: `check` exits 4.
    Failure,
    /// Reported, does not fail.
    Warning,
}

/// One line of `check` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// Stable, greppable: `out-of-support`, `pending-required-migration`, `deprecated`,
    /// `skipped-required-migration`.
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// What `check` reports on `today`: failures (past end of support, a required migration pending)
/// and warnings (deprecated, a required migration skipped on the record), failures first.
pub fn findings(manifest: &Manifest, template: &Template, today: Date) -> Result<Vec<Finding>> {
    let window = support_window(template, &manifest.version, today)?;
    let newer = template.newest().version > manifest.version;
    let next_step = if newer {
        "run cargo platform upgrade".to_string()
    } else {
        "no newer release is embedded in this cargo-platform: update the tool, then run cargo platform upgrade".to_string()
    };
    let what = format!("{} {}", template.name, manifest.version);
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    match (window.state, window.end_of_support, window.deprecated) {
        (SupportState::EndOfSupport, Some(end), _) => failures.push(Finding {
            severity: Severity::Failure,
            code: "out-of-support",
            message: format!("{what} reached end of support on {end}; {next_step}"),
        }),
        (SupportState::Deprecated, end, Some(since)) => {
            let until = end
                .map(|e| format!(" and reaches end of support on {e}"))
                .unwrap_or_default();
            warnings.push(Finding {
                severity: Severity::Warning,
                code: "deprecated",
                message: format!(
                    "{what} is deprecated since {since}{until}; {next_step} (warning, not failing)"
                ),
            });
        }
        _ => {}
    }
    for m in pending_migrations(manifest, template)
        .into_iter()
        .filter(|m| m.required)
    {
        failures.push(Finding {
            severity: Severity::Failure,
            code: "pending-required-migration",
            message: format!("{} ({}): {}", m.id, m.version, m.description),
        });
    }
    for m in skipped_migrations(manifest, template) {
        if m.required == Some(true) {
            let version = m.version.map(|v| format!(" ({v})")).unwrap_or_default();
            warnings.push(Finding {
                severity: Severity::Warning,
                code: "skipped-required-migration",
                message: format!(
                    "{}{version}: skipped on {} (on the record, not failing)",
                    m.id, m.date
                ),
            });
        }
    }
    failures.extend(warnings);
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use include_dir::{Dir, include_dir};

    use super::*;
    use crate::manifest::{ComponentRecord, ComponentState, FileRecord, MigrationRecord, SCHEMA};
    use crate::template::answers::Answer;
    use crate::template::render::{self, sha256_hex};
    use crate::template::{Catalogue, release::Support};

    static FIXTURES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/tests/fixtures/templates");

    fn demo() -> Template {
        Catalogue::from_dir(&FIXTURES).unwrap().templates.remove(0)
    }

    fn date(s: &str) -> Date {
        parse_date(s).unwrap()
    }

    /// A manifest as `new` writes it for the demo template at `version`.
    fn manifest(t: &Template, version: &str) -> Manifest {
        let version = Version::parse(version).unwrap();
        let spec = t.spec(&version).unwrap();
        let answers = vec![
            ("store".to_string(), Answer::String("memory".into())),
            ("audit".to_string(), Answer::Bool(true)),
        ];
        let files = render::render(&spec, "my-svc", &answers).unwrap();
        Manifest {
            schema: SCHEMA,
            template: t.name.clone(),
            version: version.clone(),
            tool_version: "0.1.0".into(),
            name: "my-svc".into(),
            answers,
            components: spec
                .components
                .keys()
                .map(|c| {
                    let record = ComponentRecord {
                        state: ComponentState::Managed,
                        reason: None,
                        date: None,
                    };
                    (c.clone(), record)
                })
                .collect(),
            files: files
                .iter()
                .map(|(p, f)| {
                    let record = FileRecord {
                        component: f.component.clone(),
                        mode: f.mode,
                        sha256: f.sha256(),
                    };
                    (p.clone(), record)
                })
                .collect(),
            migrations: Vec::new(),
            history: Default::default(),
            read_schema: SCHEMA,
        }
    }

    fn ledger(id: &str, status: MigrationStatus) -> MigrationRecord {
        MigrationRecord {
            id: id.into(),
            status,
            date: parse_date("2026-07-01").unwrap(),
        }
    }

    #[test]
    fn dates_must_be_exactly_yyyy_mm_dd() {
        assert_eq!(parse_date("2026-12-31"), Some(Date::constant(2026, 12, 31)));
        for bad in [
            "2026-1-31",
            "20261231",
            "2026-02-30",
            "2026-12-31T00:00",
            " 2026-12-31",
            "",
            "yesterday",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn migrations_of_newer_releases_are_pending_until_in_the_ledger() {
        let t = demo();
        let mut m = manifest(&t, "1.0.0");
        let pending = pending_migrations(&m, &t);
        assert_eq!(
            pending,
            vec![PendingMigration {
                id: "demo-2.0.0-rename-key".into(),
                version: Version::new(2, 0, 0),
                required: true,
                description: "Rename a config key".into(),
            }]
        );
        assert!(skipped_migrations(&m, &t).is_empty());

        m.migrations
            .push(ledger("demo-2.0.0-rename-key", MigrationStatus::Applied));
        assert!(
            pending_migrations(&m, &t).is_empty(),
            "applied: not pending"
        );

        m.migrations[0].status = MigrationStatus::Skipped;
        assert!(
            pending_migrations(&m, &t).is_empty(),
            "skipped: not pending"
        );
        let skipped = skipped_migrations(&m, &t);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].version, Some(Version::new(2, 0, 0)));
        assert_eq!(skipped[0].required, Some(true));
        assert_eq!(skipped[0].date.to_string(), "2026-07-01");

        // On the newest version nothing is pending, but a skip stays visible.
        let mut newest = manifest(&t, "2.0.0");
        assert!(pending_migrations(&newest, &t).is_empty());
        newest
            .migrations
            .push(ledger("demo-2.0.0-rename-key", MigrationStatus::Skipped));
        newest
            .migrations
            .push(ledger("from-a-forgotten-release", MigrationStatus::Skipped));
        let skipped = skipped_migrations(&newest, &t);
        assert_eq!(
            skipped.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["demo-2.0.0-rename-key", "from-a-forgotten-release"]
        );
        assert_eq!(
            skipped[1].version, None,
            "an id no release declares is still listed"
        );
    }

    #[test]
    fn support_window_on_either_side_of_each_date() {
        // demo 1.0.0: deprecated 2026-06-01, end of support 2026-12-31.
        let t = demo();
        let v1 = Version::new(1, 0, 0);
        let state = |day: &str| support_window(&t, &v1, date(day)).unwrap().state;
        assert_eq!(state("2026-05-31"), SupportState::Supported);
        assert_eq!(
            state("2026-06-01"),
            SupportState::Deprecated,
            "deprecated from its date on"
        );
        assert_eq!(
            state("2026-12-31"),
            SupportState::Deprecated,
            "end_of_support is the last supported day"
        );
        assert_eq!(state("2027-01-01"), SupportState::EndOfSupport);
        let w = support_window(&t, &v1, date("2026-12-01")).unwrap();
        assert_eq!(w.deprecated, Some(date("2026-06-01")));
        assert_eq!(w.end_of_support, Some(date("2026-12-31")));
        assert_eq!(w.days_left(), Some(30));
        assert_eq!(
            support_window(&t, &v1, date("2027-01-02"))
                .unwrap()
                .days_left(),
            Some(-2)
        );

        // demo 2.0.0 has no window: supported forever.
        let w2 = support_window(&t, &Version::new(2, 0, 0), date("2099-01-01")).unwrap();
        assert_eq!(
            (w2.state, w2.deprecated, w2.end_of_support, w2.days_left()),
            (SupportState::Supported, None, None, None)
        );
        assert!(support_window(&t, &Version::new(9, 0, 0), date("2026-01-01")).is_err());
    }

    #[test]
    fn a_malformed_support_date_is_an_error_naming_the_release() {
        let mut t = demo();
        t.releases[0].meta.support = Support {
            deprecated: None,
            end_of_support: Some("31/12/2026".into()),
        };
        let err = support_window(&t, &Version::new(1, 0, 0), date("2026-01-01")).unwrap_err();
        assert!(
            err.message
                .contains("release 1.0.0: [support] end_of_support `31/12/2026`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn check_fails_past_end_of_support_and_on_pending_required_migrations() {
        let t = demo();
        let m = manifest(&t, "1.0.0");
        let codes = |m: &Manifest, day: &str| -> Vec<(&'static str, Severity)> {
            findings(m, &t, date(day))
                .unwrap()
                .iter()
                .map(|f| (f.code, f.severity))
                .collect()
        };
        // A pending required migration fails whatever the day.
        assert_eq!(
            codes(&m, "2026-01-15"),
            [("pending-required-migration", Severity::Failure)]
        );
        // Deprecated warns (after the failures) but does not fail by itself.
        assert_eq!(
            codes(&m, "2026-06-01"),
            [
                ("pending-required-migration", Severity::Failure),
                ("deprecated", Severity::Warning)
            ]
        );
        let all = findings(&m, &t, date("2027-01-01")).unwrap();
        assert_eq!(
            all[0].to_string(),
            "out-of-support: demo 1.0.0 reached end of support on 2026-12-31; run cargo platform upgrade"
        );
        assert_eq!(
            all[1].to_string(),
            "pending-required-migration: demo-2.0.0-rename-key (2.0.0): Rename a config key"
        );
        assert_eq!(all.len(), 2);

        // Once the migration is applied, only the support window matters.
        let mut applied = m.clone();
        applied
            .migrations
            .push(ledger("demo-2.0.0-rename-key", MigrationStatus::Applied));
        assert!(codes(&applied, "2026-01-15").is_empty());
        let deprecated = findings(&applied, &t, date("2026-07-01")).unwrap();
        assert_eq!(
            deprecated[0].to_string(),
            "deprecated: demo 1.0.0 is deprecated since 2026-06-01 and reaches end of support on 2026-12-31; run cargo platform upgrade (warning, not failing)"
        );
        assert_eq!(
            codes(&applied, "2027-01-01"),
            [("out-of-support", Severity::Failure)]
        );

        // A required migration skipped on the record warns, does not fail.
        let mut skipped = m.clone();
        skipped
            .migrations
            .push(ledger("demo-2.0.0-rename-key", MigrationStatus::Skipped));
        assert_eq!(
            codes(&skipped, "2026-01-15"),
            [("skipped-required-migration", Severity::Warning)]
        );

        // The newest version, with no window: clean on any day.
        assert!(codes(&manifest(&t, "2.0.0"), "2099-01-01").is_empty());
    }

    #[test]
    fn out_of_support_on_the_newest_release_says_to_update_the_tool() {
        let mut t = demo();
        t.releases[1].meta.support.end_of_support = Some("2030-01-01".into());
        let all = findings(&manifest(&t, "2.0.0"), &t, date("2030-01-02")).unwrap();
        assert_eq!(all.len(), 1);
        assert!(
            all[0].message.contains("no newer release is embedded"),
            "{}",
            all[0]
        );
    }

    #[test]
    fn local_edits_compare_recorded_hashes_only_for_platform_owned_files() {
        let t = demo();
        let mut m = manifest(&t, "1.0.0");
        // Files as the platform wrote them.
        let mut disk: BTreeMap<String, String> = m
            .files
            .iter()
            .map(|(p, f)| (p.clone(), f.sha256.clone()))
            .collect();
        let mut looked_at = Vec::new();
        let mut edits = |m: &Manifest, disk: &BTreeMap<String, String>| {
            local_edits(m, |p| {
                looked_at.push(p.to_string());
                Ok(disk.get(p).cloned())
            })
            .unwrap()
        };
        assert!(edits(&m, &disk).is_empty());

        disk.insert(
            "src/main.rs".into(),
            sha256_hex(b"fn main() { /* ours */ }\n"),
        );
        disk.remove("old.txt");
        disk.insert("README.md".into(), sha256_hex(b"# ours\n")); // seeded: the team's
        let found = edits(&m, &disk);
        assert_eq!(
            found
                .iter()
                .map(|e| (e.path.as_str(), e.change))
                .collect::<Vec<_>>(),
            [
                ("old.txt", Change::Deleted),
                ("src/main.rs", Change::Edited)
            ]
        );
        assert_eq!(
            (found[1].component.as_str(), found[1].mode),
            ("core", Mode::Managed)
        );

        // Files of an ejected component are the team's: not reported.
        m.components.get_mut("extra").unwrap().state = ComponentState::Ejected;
        let found = edits(&m, &disk);
        assert_eq!(
            found.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
            ["src/main.rs"]
        );

        // Only recorded, non-seeded, non-ejected files were read.
        assert!(!looked_at.contains(&"README.md".to_string()));
        assert!(looked_at.iter().all(|p| m.files.contains_key(p)));

        let err = local_edits(&m, |_| Err(Error::new("cannot read src/main.rs"))).unwrap_err();
        assert!(err.message.contains("src/main.rs"));
    }

    #[test]
    fn every_embedded_support_window_parses_and_is_ordered() {
        let catalogue = Catalogue::load().unwrap();
        for t in &catalogue.templates {
            for r in &t.releases {
                let w = support_window(t, &r.version, date("2026-01-01")).unwrap();
                if let (Some(d), Some(e)) = (w.deprecated, w.end_of_support) {
                    assert!(
                        d <= e,
                        "{} {}: deprecated after end of support",
                        t.name,
                        r.version
                    );
                }
            }
        }
    }
}
