//! The pull-request body of one campaign branch (Markdown): the changelog of every hop, the
//! migrations applied or skipped, what happened to each file, the ejected components left alone,
//! and what to do before deploying (renamed config keys and environment variables).

use std::fmt::Write as _;

use super::campaign::CampaignService;
use super::upgrade::{FileStatus, MigrationAction, UpgradeReport};
use crate::template::Template;
use crate::template::release::Edit;

/// The body for `service`'s branch, from the upgrade's plan (`details`); `ejected` is each
/// component the service ejected, with the reason recorded.
pub fn render(
    template: &Template,
    details: &UpgradeReport,
    service: &CampaignService,
    ejected: &[(String, Option<String>)],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Upgrades **{}** from template `{}` {} to {}.\n",
        details.name, details.template, details.from, details.to
    );
    let _ = writeln!(
        s,
        "Made by `cargo platform fleet upgrade` on `{}` ({}); the same 3-way merge as `cargo platform upgrade`, with no conflict left.\n",
        service.base_ref,
        service.base.as_deref().unwrap_or("?")
    );

    let _ = writeln!(s, "## Before you deploy\n");
    let mut notes = Vec::new();
    for release in template
        .releases
        .iter()
        .filter(|r| details.hops.contains(&r.version.to_string()))
    {
        for m in &release.meta.migrations {
            let applied = details
                .migrations
                .iter()
                .any(|d| d.id == m.id && d.action == MigrationAction::Apply);
            if !applied {
                continue;
            }
            for Edit::RenameKey { files, from, to } in &m.edits {
                notes.push(format!(
                    "Config key `{from}` is now `{to}` (renamed in `{files}`): rename it, and its environment variable, wherever your deployments set it."
                ));
            }
            if m.required {
                notes.push(format!("`{}`: {}", m.id, m.description));
            }
        }
    }
    if notes.is_empty() {
        let _ = writeln!(
            s,
            "Nothing: no config key or environment variable changes.\n"
        );
    } else {
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "## Changelog\n");
    for release in template
        .releases
        .iter()
        .filter(|r| details.hops.contains(&r.version.to_string()))
    {
        let _ = writeln!(
            s,
            "### {} ({}): {}\n",
            release.version, release.meta.date, release.meta.summary
        );
        for entry in &release.meta.changelog {
            let _ = writeln!(s, "- {entry}");
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "## Migrations\n");
    if details.migrations.is_empty() {
        let _ = writeln!(s, "None.\n");
    } else {
        for m in &details.migrations {
            let what = match m.action {
                MigrationAction::Apply => "applied",
                MigrationAction::Skip => "skipped",
                MigrationAction::AlreadyApplied => "already applied",
                MigrationAction::AlreadySkipped => "already skipped",
            };
            let _ = writeln!(
                s,
                "- `{}` ({}): {what} — {}",
                m.id, m.version, m.description
            );
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "## Files\n");
    let _ = writeln!(s, "| file | outcome |\n|---|---|");
    for f in details
        .files
        .iter()
        .filter(|f| !matches!(f.status, FileStatus::Unchanged | FileStatus::Ejected))
    {
        let outcome = match (&f.from, &f.detail) {
            (Some(from), _) => format!("{} (from `{from}`)", f.status.as_str()),
            (None, Some(d)) => format!("{}: {d}", f.status.as_str()),
            _ => f.status.as_str().to_string(),
        };
        let _ = writeln!(s, "| `{}` | {} |", f.path, outcome.replace('|', "\\|"));
    }
    let unchanged = details
        .files
        .iter()
        .filter(|f| f.status == FileStatus::Unchanged)
        .count();
    let _ = writeln!(s, "\n{unchanged} other platform file(s) unchanged.\n");

    let _ = writeln!(s, "## Ejected components\n");
    if ejected.is_empty() {
        let _ = writeln!(s, "None: every component is on the golden path.");
    } else {
        for (component, reason) in ejected {
            let why = reason
                .as_deref()
                .map_or_else(String::new, |r| format!(" (ejected: {r})"));
            let _ = writeln!(
                s,
                "- `{component}`{why}: its files are yours; this upgrade left them exactly as they are."
            );
        }
    }
    s
}
