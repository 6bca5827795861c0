//! Reading a service's facts from its `status --format json` document: the fact files of
//! `fleet report --from`, and the status computed for `--root`/`--fleet` (the same path, so both
//! read the same fields).

use std::path::Path;

use jiff::civil::Date;
use semver::Version;
use serde::{Deserialize, Deserializer};

use super::aggregate::{EjectedFact, Files, ServiceFacts, Upgrade};
use crate::error::{Error, Result};
use crate::report::fleet::SkippedEntry;
use crate::template::Catalogue;

#[derive(Deserialize)]
struct Doc {
    name: String,
    path: String,
    #[serde(default)]
    owner: Option<String>,
    template: String,
    #[serde(deserialize_with = "version")]
    version: Version,
    today: Date,
    #[serde(default)]
    history: Option<History>,
    ejected: Vec<Ejected>,
    local_edits: Vec<Edit>,
    #[serde(default)]
    pending_migrations: Vec<Pending>,
    policy: Policy,
}

#[derive(Deserialize)]
struct Pending {
    id: String,
    #[serde(deserialize_with = "version")]
    version: Version,
    required: bool,
    description: String,
}

#[derive(Deserialize)]
struct History {
    created: Option<Date>,
    #[serde(default)]
    upgrade_entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    date: Date,
    #[serde(deserialize_with = "version")]
    from: Version,
    #[serde(deserialize_with = "version")]
    to: Version,
    files: Option<EntryFiles>,
}

#[derive(Deserialize)]
struct EntryFiles {
    updated: usize,
    merged: usize,
    conflicts: usize,
}

#[derive(Deserialize)]
struct Ejected {
    component: String,
    reason: Option<String>,
    date: Option<Date>,
}

#[derive(Deserialize)]
struct Edit {
    path: String,
}

#[derive(Deserialize)]
struct Policy {
    findings: Vec<Finding>,
}

#[derive(Deserialize)]
struct Finding {
    code: String,
    severity: String,
    message: String,
}

/// The facts in one `status` JSON document; `shown` names it in errors. The team is the
/// `owner` the status reports.
pub fn parse(value: serde_json::Value, shown: &str) -> Result<ServiceFacts> {
    #[derive(Deserialize)]
    struct Header {
        schema: Option<u32>,
        command: Option<String>,
    }
    let not_status = || format!("{shown} is not a `cargo platform status --format json` report");
    let header =
        Header::deserialize(&value).map_err(|e| Error::new(format!("{}: {e}", not_status())))?;
    match (header.schema, header.command.as_deref()) {
        (Some(crate::report::SCHEMA), Some("status")) => {}
        (Some(schema), _) if schema != crate::report::SCHEMA => {
            return Err(Error::new(format!(
                "{shown} has report schema {schema}; this cargo-platform reads schema {}",
                crate::report::SCHEMA
            )));
        }
        (Some(_), Some(command)) => {
            return Err(Error::new(format!(
                "{shown} is the report of `{command}`, not of `status`"
            )));
        }
        _ => {
            return Err(Error::new(format!(
                "{}: no `schema` and `command`",
                not_status()
            )));
        }
    }
    let doc: Doc =
        serde_json::from_value(value).map_err(|e| Error::new(format!("{}: {e}", not_status())))?;
    let history = doc.history.unwrap_or(History {
        created: None,
        upgrade_entries: Vec::new(),
    });
    Ok(ServiceFacts {
        name: doc.name,
        location: doc.path,
        team: doc.owner,
        template: doc.template,
        version: doc.version,
        observed: doc.today,
        created: history.created,
        upgrades: history
            .upgrade_entries
            .into_iter()
            .map(|e| Upgrade {
                date: e.date,
                from: e.from,
                to: e.to,
                files: e.files.map(|f| Files {
                    updated: f.updated,
                    merged: f.merged,
                    conflicts: f.conflicts,
                }),
            })
            .collect(),
        ejected: doc
            .ejected
            .into_iter()
            .map(|e| EjectedFact {
                component: e.component,
                reason: e.reason,
                date: e.date,
            })
            .collect(),
        local_edits: doc.local_edits.into_iter().map(|e| e.path).collect(),
        // As `check` words the finding (policy::findings).
        pending_required: doc
            .pending_migrations
            .into_iter()
            .filter(|p| p.required)
            .map(|p| {
                let message = format!("{} ({}): {}", p.id, p.version, p.description);
                (p.version, message)
            })
            .collect(),
        policy_errors: doc
            .policy
            .findings
            .into_iter()
            .filter(|f| f.severity == "failure" && f.code != "out-of-support")
            .map(|f| f.message)
            .collect(),
    })
}

/// The facts in the text of a fact file.
pub fn parse_text(text: &str, shown: &str) -> Result<ServiceFacts> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::new(format!("{shown} is not valid JSON: {e}")))?;
    parse(value, shown)
}

fn version<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Version, D::Error> {
    let text = String::deserialize(d)?;
    text.parse()
        .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a version: {e}")))
}

/// Every `*.json` fact file in `dir` (sorted by name): the facts read, and the files that could
/// not be read with the reason. An unreadable directory is an error.
pub fn read_dir(dir: &Path) -> Result<(Vec<ServiceFacts>, Vec<SkippedEntry>)> {
    let entries = fs_err::read_dir(dir).map_err(|e| {
        Error::from(e).hint("pass a directory of `cargo platform status --format json` files")
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut facts = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        let shown = path.display().to_string();
        let read = fs_err::read_to_string(&path)
            .map_err(Error::from)
            .and_then(|text| parse_text(&text, &shown));
        match read {
            Ok(f) => facts.push(f),
            Err(e) => skipped.push(SkippedEntry {
                location: shown,
                reason: super::one_line(&e.message),
            }),
        }
    }
    Ok((facts, skipped))
}

/// The facts of every service found under `--root` trees and in the fleet file, read through
/// their status report (the fleet file's team wins over the owner).
pub fn read_found(
    found: super::discover::Found,
    catalogue: &Catalogue,
    today: Date,
) -> (Vec<ServiceFacts>, Vec<SkippedEntry>) {
    let (read, mut skipped) =
        super::gather_with(found, catalogue, today, |status, _, team, _| (status, team));
    let mut facts = Vec::new();
    for (status, team) in read {
        let mut json = Vec::new();
        let parsed = crate::report::write_json(&status, &mut json)
            .map_err(Error::from)
            .and_then(|()| {
                let value = serde_json::from_slice(&json)
                    .map_err(|e| Error::new(format!("{}: {e}", status.path)))?;
                parse(value, &status.path)
            });
        match parsed {
            Ok(mut f) => {
                f.team = team;
                facts.push(f);
            }
            Err(e) => skipped.push(SkippedEntry {
                location: status.path.clone(),
                reason: super::one_line(&e.message),
            }),
        }
    }
    (facts, skipped)
}

/// The services of `first` and then `then`, each once. A service is identified by its
/// template, its name and the day it was created (`None`, unknown, is a value like any other):
/// a fact file published by its CI and its clone under a `--root` name different locations for
/// the same service. Of two observations of one service the later (`observed`) is kept; on a
/// tie, the one met first.
pub fn merge(first: Vec<ServiceFacts>, then: Vec<ServiceFacts>) -> Vec<ServiceFacts> {
    let mut kept: Vec<ServiceFacts> = Vec::new();
    let mut at: std::collections::HashMap<(String, String, Option<Date>), usize> =
        std::collections::HashMap::new();
    for f in first.into_iter().chain(then) {
        let identity = (f.template.clone(), f.name.clone(), f.created);
        match at.get(&identity) {
            Some(&i) if kept[i].observed < f.observed => kept[i] = f,
            Some(_) => {}
            None => {
                at.insert(identity, kept.len());
                kept.push(f);
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(findings: &str) -> String {
        format!(
            r#"{{"schema": 1, "command": "status", "name": "a", "path": "a", "owner": "core",
            "template": "service", "version": "1.0.0", "today": "2027-07-01",
            "history": {{"created": "2026-12-01", "upgrade_entries": [
              {{"date": "2027-01-02", "from": "0.9.0", "to": "1.0.0", "files": null}}]}},
            "ejected": [{{"component": "auth", "reason": null, "date": "2027-01-03"}}],
            "local_edits": [{{"path": "Cargo.toml"}}],
            "pending_migrations": [
              {{"id": "m1", "version": "2.0.0", "required": true, "description": "rename"}},
              {{"id": "m2", "version": "2.0.0", "required": false, "description": "tidy"}}],
            "policy": {{"ok": false, "findings": {findings}}}}}"#
        )
    }

    #[test]
    fn a_status_document_gives_the_facts_without_its_out_of_support_finding() {
        let findings = r#"[
          {"code": "out-of-support", "severity": "failure", "message": "past its end"},
          {"code": "pending-required-migration", "severity": "failure", "message": "m1"},
          {"code": "deprecated", "severity": "warning", "message": "old"}]"#;
        let f = parse_text(&status(findings), "a.json").unwrap();
        assert_eq!(f.team.as_deref(), Some("core"));
        assert_eq!(f.created, Some("2026-12-01".parse().unwrap()));
        assert_eq!(f.upgrades.len(), 1);
        assert_eq!(f.upgrades[0].files, None);
        assert_eq!(f.ejected[0].component, "auth");
        assert_eq!(f.local_edits, vec!["Cargo.toml".to_string()]);
        assert_eq!(f.policy_errors, vec!["m1".to_string()]);
        assert_eq!(
            f.pending_required,
            vec![("2.0.0".parse().unwrap(), "m1 (2.0.0): rename".to_string())]
        );
    }

    #[test]
    fn merge_keeps_one_observation_per_service_the_latest() {
        let f = |name: &str, created: &str, observed: &str, location: &str| {
            let mut f = parse_text(&status("[]"), "a.json").unwrap();
            f.name = name.into();
            f.created = Some(created.parse().unwrap());
            f.observed = observed.parse().unwrap();
            f.location = location.into();
            f
        };
        let roots = vec![
            f("a", "2026-12-01", "2027-07-01", "root/a"),
            f("b", "2026-12-01", "2027-07-01", "root/b"),
        ];
        let from = vec![
            // The same a, observed on the same day (the root's kept) and later (kept).
            f("a", "2026-12-01", "2027-07-01", "ci/a-same-day"),
            f("b", "2026-12-01", "2027-07-02", "ci/b-later"),
            // Another service of the same name, created another day.
            f("a", "2027-01-05", "2027-07-01", "ci/other-a"),
        ];
        let merged = merge(roots, from);
        let locations: Vec<&str> = merged.iter().map(|f| f.location.as_str()).collect();
        assert_eq!(locations, ["root/a", "ci/b-later", "ci/other-a"]);
    }

    #[test]
    fn other_documents_are_errors_naming_the_file() {
        let other = r#"{"schema": 1, "command": "check", "ok": true}"#;
        let e = parse_text(other, "c.json").unwrap_err();
        assert!(
            e.message.contains("c.json is the report of `check`"),
            "{}",
            e.message
        );
        let newer = r#"{"schema": 2, "command": "status"}"#;
        let e = parse_text(newer, "n.json").unwrap_err();
        assert!(
            e.message.contains("n.json has report schema 2"),
            "{}",
            e.message
        );
        let e = parse_text("[]", "x.json").unwrap_err();
        assert!(e.message.contains("x.json is not a"), "{}", e.message);
    }
}
