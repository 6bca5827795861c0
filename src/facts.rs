//! Where one service stands — the facts `status` reports and `fleet` gathers — computed from the
//! manifest, the template, a date, and the platform files read through a [`ServiceTree`]: the
//! work tree on disk, or a git ref's tree read without a checkout.

use jiff::civil::Date;

use crate::error::Result;
use crate::manifest::{ComponentState, Manifest};
use crate::policy;
use crate::report::status::{Component, Ejected, Policy, StatusReport};
use crate::service::{InFlight, Service};
use crate::template::Template;

/// Where a service's files are read from.
pub trait ServiceTree {
    /// The SHA-256 (lowercase hex) of the file at `rel` (a manifest path, relative to the
    /// service root), or `None` when it does not exist.
    fn sha256(&self, rel: &str) -> Result<Option<String>>;
}

/// A service's work tree on disk.
impl ServiceTree for Service {
    fn sha256(&self, rel: &str) -> Result<Option<String>> {
        self.sha256_on_disk(rel)
    }
}

/// The status of the service whose manifest is `manifest`, on `today`. `path` is where it was
/// found (as the report shows it); `in_flight` what [`Service::in_flight`] found (a git ref's
/// tree: [`InFlight::No`]). Reads only the files the manifest records, through `tree`.
pub fn status(
    manifest: &Manifest,
    template: &Template,
    tree: &dyn ServiceTree,
    path: String,
    in_flight: &InFlight,
    today: Date,
) -> Result<StatusReport> {
    let m = manifest;
    let behind = template
        .released()
        .filter(|r| r.version > m.version)
        .count();
    let window = policy::support_window(template, &m.version, today)?;
    let edits = policy::local_edits(m, |rel| tree.sha256(rel))?;
    let findings = policy::findings(m, template, today)?;
    Ok(StatusReport {
        name: m.name.clone(),
        path,
        owner: m
            .answers
            .iter()
            .find(|(k, _)| k == "owner")
            .map(|(_, a)| match a {
                crate::template::answers::Answer::String(s) => s.clone(),
                other => other.to_string(),
            }),
        template: m.template.clone(),
        version: m.version.to_string(),
        newest: template.newest().version.to_string(),
        up_to_date: behind == 0,
        releases_behind: behind,
        tool_version: m.tool_version.clone(),
        upgrade_in_flight: matches!(
            in_flight,
            InFlight::Upgrading(_) | InFlight::Interrupted | InFlight::VerifyPending
        ),
        change: in_flight.into(),
        today: today.to_string(),
        support: (&window).into(),
        history: (&m.history).into(),
        pending_migrations: policy::pending_migrations(m, template)
            .iter()
            .map(Into::into)
            .collect(),
        skipped_migrations: policy::skipped_migrations(m, template)
            .iter()
            .map(Into::into)
            .collect(),
        components: m
            .components
            .iter()
            .map(|(name, c)| Component::new(name, c))
            .collect(),
        ejected: m
            .components
            .iter()
            .filter(|(_, c)| c.state == ComponentState::Ejected)
            .map(|(name, c)| Ejected::new(name, c))
            .collect(),
        local_edits: edits.iter().map(Into::into).collect(),
        policy: Policy::new(&findings),
    })
}
