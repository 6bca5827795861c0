//! The report of `cargo platform fleet upgrade` (a campaign) and of `fleet matrix`: one outcome
//! per service, counts per outcome and per team, as human text, JSON or Markdown.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::fleet::SkippedEntry;
use super::upgrade::{Action, Verify};
use crate::commands::ExitStatus;

#[derive(Debug, Clone, Serialize)]
pub struct CampaignReport {
    /// `--dry-run`: planned, nothing written anywhere.
    pub dry_run: bool,
    /// The target as given with `--to`; `null`: the newest release of each service's template.
    pub to: Option<String>,
    /// Services per outcome.
    pub counts: Counts,
    /// Services per outcome, per team (sorted by team; services without a team under `null`).
    pub teams: Vec<TeamCounts>,
    /// One entry per service, sorted by repository then directory.
    pub services: Vec<CampaignService>,
    /// Places that could not be read at all (a missing path, a directory that is not a git
    /// repository), with their reason.
    pub skipped: Vec<SkippedEntry>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub ready: usize,
    pub needs_hands: usize,
    pub refused: usize,
    pub up_to_date: usize,
}

impl Counts {
    fn add(&mut self, outcome: CampaignOutcome) {
        match outcome {
            CampaignOutcome::Ready => self.ready += 1,
            CampaignOutcome::NeedsHands => self.needs_hands += 1,
            CampaignOutcome::Refused => self.refused += 1,
            CampaignOutcome::UpToDate => self.up_to_date += 1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamCounts {
    pub team: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
}

/// One service's outcome (JSON: `ready`, `needs_hands`, `refused`, `up_to_date`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignOutcome {
    Ready,
    NeedsHands,
    Refused,
    UpToDate,
}

impl CampaignOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignOutcome::Ready => "ready",
            CampaignOutcome::NeedsHands => "needs hands",
            CampaignOutcome::Refused => "refused",
            CampaignOutcome::UpToDate => "up to date",
        }
    }
}

/// What happened to the campaign branch (JSON: `created`, `refreshed`, `unchanged`, `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchState {
    /// Created by this run.
    Created,
    /// Existed on an older base (or with other content) and was moved to the new commit.
    Refreshed,
    /// Already carried exactly this commit.
    Unchanged,
    /// Not written (nothing to commit, nothing committable, or a dry run).
    None,
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignService {
    /// The service's name (platform.toml), else its directory.
    pub name: String,
    /// The repository, as found.
    pub repository: String,
    /// The service directory in the repository (`.` for the root).
    pub dir: String,
    /// The default branch the upgrade starts from (fleet file `ref`, `origin/HEAD`, or HEAD's
    /// branch).
    pub base_ref: String,
    /// The commit of `base_ref` the upgrade was made on; `null` when it could not be read.
    pub base: Option<String>,
    pub team: Option<String>,
    pub template: Option<String>,
    /// The version on the default branch.
    pub from: Option<String>,
    /// The target version.
    pub to: Option<String>,
    /// Every release stepped through, oldest first.
    pub hops: Vec<String>,
    pub outcome: CampaignOutcome,
    /// Why, in words.
    pub reason: String,
    /// The campaign branch (without `refs/heads/`); `null` when none applies.
    pub branch: Option<String>,
    pub branch_state: BranchState,
    /// The campaign commit (what the branch points at, or would with `--dry-run`).
    pub commit: Option<String>,
    /// `--push`: whether the branch is on the remote now; `null` without `--push`.
    pub pushed: Option<bool>,
    /// Why the push failed, when it failed for the operator's reasons (no such remote,
    /// credentials, network: the branch is committed here, the run exits 1); `null` otherwise.
    pub push_error: Option<String>,
    /// Files left in conflict (never committed).
    pub conflicts: Vec<String>,
    /// Breaks declared for components this service ejected.
    pub actions: Vec<Action>,
    /// The one command the team runs in its checkout, for `needs_hands`.
    pub next_step: Option<String>,
    pub migrations_applied: Vec<String>,
    pub migrations_skipped: Vec<String>,
    /// Files by what the upgrade did to them (`updated`, `merged`, `new`, …: count).
    pub files: BTreeMap<String, usize>,
    /// `--verify`'s result; `null` when not run.
    pub verify: Option<Verify>,
    /// The pull-request body written with `--out`; `null` without it.
    pub pr_body: Option<String>,
}

impl CampaignReport {
    pub fn new(
        dry_run: bool,
        to: Option<String>,
        mut services: Vec<CampaignService>,
        skipped: Vec<SkippedEntry>,
    ) -> Self {
        services.sort_by(|a, b| (&a.repository, &a.dir).cmp(&(&b.repository, &b.dir)));
        let mut counts = Counts::default();
        let mut teams: BTreeMap<Option<String>, Counts> = BTreeMap::new();
        for s in &services {
            counts.add(s.outcome);
            teams.entry(s.team.clone()).or_default().add(s.outcome);
        }
        CampaignReport {
            dry_run,
            to,
            counts,
            teams: teams
                .into_iter()
                .map(|(team, counts)| TeamCounts { team, counts })
                .collect(),
            services,
            skipped,
        }
    }

    /// 1 when any service was refused or any place could not be read (the campaign could not
    /// even try there: that wins), else 3 when any needs hands, else 0.
    pub fn exit_status(&self) -> ExitStatus {
        let unpushed = self.services.iter().any(|s| s.push_error.is_some());
        if self.counts.refused > 0 || !self.skipped.is_empty() || unpushed {
            ExitStatus::Incomplete
        } else if self.counts.needs_hands > 0 {
            ExitStatus::NeedsAttention
        } else {
            ExitStatus::Success
        }
    }

    fn summary(&self) -> String {
        let c = &self.counts;
        format!(
            "{} ready, {} need hands, {} refused, {} up to date",
            c.ready, c.needs_hands, c.refused, c.up_to_date
        )
    }

    /// The Markdown for the platform team's tracking issue.
    pub fn markdown(&self, out: &mut dyn Write) -> io::Result<()> {
        let target = self.to.as_deref().unwrap_or("the newest release");
        writeln!(out, "# Upgrade campaign to {target}")?;
        writeln!(out)?;
        if self.dry_run {
            writeln!(out, "_Dry run: nothing was written._")?;
            writeln!(out)?;
        }
        writeln!(out, "**{}**", self.summary())?;
        writeln!(out)?;
        writeln!(out, "| team | ready | needs hands | refused | up to date |")?;
        writeln!(out, "|---|---:|---:|---:|---:|")?;
        for t in &self.teams {
            let c = &t.counts;
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                md(t.team.as_deref().unwrap_or("(no team)")),
                c.ready,
                c.needs_hands,
                c.refused,
                c.up_to_date
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "| | service | team | from → to | outcome | branch / next step |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for s in &self.services {
            // A branch that did not reach the remote is not done, whatever the outcome.
            let done = matches!(
                s.outcome,
                CampaignOutcome::Ready | CampaignOutcome::UpToDate
            ) && s.push_error.is_none();
            let versions = match (&s.from, &s.to) {
                (Some(f), Some(t)) => format!("{f} → {t}"),
                (Some(f), None) => f.clone(),
                _ => String::new(),
            };
            let detail = match (&s.next_step, &s.branch, s.branch_state) {
                (Some(step), _, _) => format!("`{step}`"),
                (None, Some(b), state) if state != BranchState::None || self.dry_run => {
                    format!("`{b}`")
                }
                _ => md(&s.reason),
            };
            let detail = match &s.push_error {
                Some(e) => format!("{detail}; push failed: {}", md(e)),
                None => detail,
            };
            writeln!(
                out,
                "| {} | {} (`{}`) | {} | {} | {}: {} | {} |",
                if done { "[x]" } else { "[ ]" },
                md(&s.name),
                md(&location(s)),
                md(s.team.as_deref().unwrap_or("")),
                versions,
                s.outcome.as_str(),
                md(&s.reason),
                detail
            )?;
        }
        for p in &self.skipped {
            writeln!(out)?;
            writeln!(out, "- not read: `{}`: {}", md(&p.location), md(&p.reason))?;
        }
        Ok(())
    }
}

/// `repository:dir`, or the repository for a service at its root.
pub fn location(s: &CampaignService) -> String {
    if s.dir == "." {
        s.repository.clone()
    } else {
        format!("{}:{}", s.repository, s.dir)
    }
}

fn md(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

impl super::Report for CampaignReport {
    const COMMAND: &'static str = "fleet upgrade";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let target = self.to.as_deref().unwrap_or("the newest release");
        let dry = if self.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        };
        writeln!(out, "Campaign to {target}{dry}: {}", self.summary())?;
        for s in &self.services {
            let versions = match (&s.from, &s.to) {
                (Some(f), Some(t)) if f != t => format!(" {f} -> {t}"),
                (Some(f), _) => format!(" {f}"),
                _ => String::new(),
            };
            writeln!(
                out,
                "  {:<11} {}{versions}  ({})",
                s.outcome.as_str(),
                s.name,
                location(s)
            )?;
            writeln!(out, "      {}", s.reason)?;
            if let Some(b) = &s.branch
                && s.branch_state != BranchState::None
            {
                let pushed = match s.pushed {
                    Some(true) => ", pushed",
                    Some(false) => ", NOT pushed",
                    None => "",
                };
                let state = match s.branch_state {
                    BranchState::Created => "created",
                    BranchState::Refreshed => "refreshed on the new base",
                    BranchState::Unchanged => "unchanged",
                    BranchState::None => "",
                };
                writeln!(out, "      branch {b} ({state}{pushed})")?;
            }
            if let Some(e) = &s.push_error {
                writeln!(out, "      push failed: {e}")?;
            }
            for c in &s.conflicts {
                writeln!(out, "      conflict: {c}")?;
            }
            for a in &s.actions {
                writeln!(
                    out,
                    "      action ({} in {}): {}",
                    a.component, a.version, a.action
                )?;
            }
            if let Some(v) = &s.verify
                && !v.passed
            {
                for line in &v.first_errors {
                    writeln!(out, "      {line}")?;
                }
            }
            if let Some(step) = &s.next_step {
                writeln!(out, "      next: {step}")?;
            }
            if let Some(body) = &s.pr_body {
                writeln!(out, "      pull-request body: {body}")?;
            }
        }
        if !self.teams.is_empty() {
            writeln!(out, "Per team:")?;
            for t in &self.teams {
                let c = &t.counts;
                writeln!(
                    out,
                    "  {:<16} {} ready, {} need hands, {} refused, {} up to date",
                    t.team.as_deref().unwrap_or("(no team)"),
                    c.ready,
                    c.needs_hands,
                    c.refused,
                    c.up_to_date
                )?;
            }
        }
        for p in &self.skipped {
            writeln!(out, "Not read: {}: {}", p.location, p.reason)?;
        }
        Ok(())
    }
}

/// `fleet matrix`: the services still to upgrade, as GitHub Actions' `strategy.matrix` takes
/// them (`{"include": [...]}`). Printed bare, without `schema`/`command`, because the workflow
/// passes it to `fromJSON` as is.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub include: Vec<MatrixEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixEntry {
    pub service: String,
    /// The repository, as found (a path; in CI, the checkout of the repository).
    pub repo: String,
    /// The repository's `origin` URL, what a CI job clones; `null` without one.
    pub remote: Option<String>,
    /// The service directory in the repository (`.` for the root).
    pub path: String,
    /// The default branch to start from.
    #[serde(rename = "ref")]
    pub reference: String,
    pub team: String,
    pub template: String,
    pub from: String,
    pub to: String,
    /// The campaign branch the job commits on.
    pub branch: String,
}

/// `fleet report`'s `campaigns`: a campaign's progress, per template and target, over the
/// services of that template in git repositories (read on their default branches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignProgress {
    pub template: String,
    pub to: String,
    /// Services below the target whose campaign branch is not merged into the default branch.
    pub open: usize,
    /// Services whose default branch is on the target or a later release.
    pub on_target: usize,
    /// Services below the target without an open campaign branch.
    pub to_do: usize,
}

/// `fleet report --format json` with the campaigns in progress: the report's own fields, then
/// `campaigns`.
#[derive(Debug, Serialize)]
pub struct ReportWithCampaigns<'a> {
    #[serde(flatten)]
    pub report: &'a super::fleet_report::FleetReport,
    pub campaigns: &'a [CampaignProgress],
}

impl super::Report for ReportWithCampaigns<'_> {
    const COMMAND: &'static str = "fleet report";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        self.report.markdown(out)?;
        campaigns_markdown(self.campaigns, out)
    }
}

/// The "Campaigns in progress" section of `fleet report`'s Markdown (nothing without one).
pub fn campaigns_markdown(campaigns: &[CampaignProgress], out: &mut dyn Write) -> io::Result<()> {
    if campaigns.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n## Campaigns in progress\n")?;
    writeln!(
        out,
        "| template | target | services with an open branch | on the target | still to do |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|")?;
    for c in campaigns {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            md(&c.template),
            c.to,
            c.open,
            c.on_target,
            c.to_do
        )?;
    }
    Ok(())
}
