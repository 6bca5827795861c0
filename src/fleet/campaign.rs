//! Upgrade campaigns (`fleet upgrade`): every service of the fleet upgraded from its
//! repository's default branch, in the object database only (no checkout, index or stash is
//! touched), committed on one branch per service and target, which is moved last.
//!
//! Why this is safe to kill and to re-run: a service's blobs, trees and commit are written first
//! (unreachable objects change nothing a team sees), then its branch ref is moved in one step.
//! A killed run leaves each repository untouched or with a complete branch. The commit is
//! deterministic: fixed author; the upgrade recorded on the day of the run, or on the day the
//! campaign branch already records for this upgrade (so a re-run on a later day, or a refresh,
//! keeps the day the campaign first made it); authored at 00:00 UTC that day and committed then
//! or at the base commit's time, whichever is later. So a re-run computes the same commit id: a
//! branch that already points at it is left alone (up to date), a branch on an older base is
//! moved to the new commit (refreshed, never a second branch).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use semver::Version;
use walkdir::WalkDir;

use super::file::{Repository, ServiceGlob};
use crate::error::{Error, Result};
use crate::fsx::Write;
use crate::git::campaign::{self as gitc, NewCommit, Pushed, TreeDisk, TreeFile};
use crate::manifest::{self, Manifest};
use crate::report::campaign::{
    BranchState, CampaignOutcome, CampaignProgress, CampaignService, MatrixEntry,
};
use crate::report::fleet::SkippedEntry;
use crate::report::upgrade::{self as upgrade_report, UpgradeReport};
use crate::template::{Catalogue, Template};
use crate::upgrade::plan::{self, Disk, OnDisk};

/// One service to upgrade: a directory of a repository, from a ref.
#[derive(Debug, Clone)]
pub struct Target {
    pub repo: PathBuf,
    /// The default branch (or the fleet file's `ref`).
    pub reference: String,
    /// The service directory in the repository, `""` for the root.
    pub dir: String,
    pub team: Option<String>,
}

/// What a campaign does beyond planning.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--to`: the target release; `None`: each template's newest.
    pub to: Option<String>,
    /// `--allow-draft`: `to` may name a draft release.
    pub allow_draft: bool,
    /// `--branch`: the branch name instead of `platform/upgrade-<template>-<version>`.
    pub branch: Option<String>,
    pub dry_run: bool,
    /// `--verify`: `cargo check --all-targets` on the result, with this shared target directory.
    pub verify: Option<PathBuf>,
    /// `--push REMOTE`.
    pub push: Option<String>,
    /// `--out`: where pull-request bodies are written.
    pub out: Option<PathBuf>,
    /// The day of the run (`CARGO_PLATFORM_TODAY` or the clock): the day a new campaign branch
    /// records its upgrade on.
    pub today: jiff::civil::Date,
}

/// The services of the fleet in their repositories' default branches, sorted; places that are
/// not git repositories (a campaign commits on branches) are skipped with their reason.
pub fn targets(roots: &[PathBuf], fleet: &[Repository]) -> (Vec<Target>, Vec<SkippedEntry>) {
    let mut found = Found::default();
    for root in roots {
        let entry = Repository {
            path: root.clone(),
            reference: None,
            services: None,
            team: None,
        };
        walk(&entry, &mut found);
    }
    for entry in fleet {
        walk(entry, &mut found);
    }
    found
        .targets
        .sort_by(|a, b| (&a.repo, &a.dir).cmp(&(&b.repo, &b.dir)));
    found
        .targets
        .dedup_by(|a, b| a.repo == b.repo && a.dir == b.dir);
    found.skipped.sort_by(|a, b| a.location.cmp(&b.location));
    (found.targets, found.skipped)
}

#[derive(Default)]
struct Found {
    targets: Vec<Target>,
    skipped: Vec<SkippedEntry>,
}

impl Found {
    fn skip(&mut self, location: String, reason: impl Into<String>) {
        self.skipped.push(SkippedEntry {
            location,
            reason: reason.into(),
        });
    }
}

/// Finds the git repositories at or below `entry.path` and their services.
fn walk(entry: &Repository, found: &mut Found) {
    let shown = entry.path.display().to_string();
    if !entry.path.is_dir() {
        return found.skip(shown, "not a directory");
    }
    let before = found.targets.len() + found.skipped.len();
    let mut outside = Vec::new();
    let mut it = WalkDir::new(&entry.path)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0 || !matches!(e.file_name().to_str(), Some("target" | "node_modules"))
        });
    while let Some(item) = it.next() {
        let Ok(item) = item else { continue };
        let path = item.path();
        if item.file_type().is_dir() && crate::git::is_repository(path) {
            it.skip_current_dir();
            in_repository(entry, path, "", found);
        } else if item.file_type().is_file() && item.file_name() == manifest::FILE_NAME {
            outside.push(path.parent().unwrap_or(path).display().to_string());
        }
    }
    if !outside.is_empty() {
        // `entry.path` itself may be inside a repository (`--root mono/services`, or `.` in a
        // monorepo's service): that repository's services below it.
        match gitc::enclosing(&entry.path) {
            Some((repo, within)) => in_repository(entry, &repo, &within, found),
            None => {
                for location in outside {
                    found.skip(
                        location,
                        "not in a git repository: a campaign commits its upgrades on branches",
                    );
                }
            }
        }
    }
    if found.targets.len() + found.skipped.len() == before {
        found.skip(
            shown,
            format!("no git repository with a {} found", manifest::FILE_NAME),
        );
    }
}

/// The services of the repository at `path` (below its directory `within`, `""`: all of them).
fn in_repository(entry: &Repository, path: &Path, within: &str, found: &mut Found) {
    let shown = path.display().to_string();
    let repo = match gitc::open(path) {
        Ok(repo) => repo,
        Err(e) => return found.skip(shown, e.message),
    };
    let reference = match &entry.reference {
        Some(r) => r.clone(),
        None => match gitc::default_branch(&repo) {
            Ok(r) => r,
            Err(e) => return found.skip(shown, e.message),
        },
    };
    let dirs = gitc::resolve(&repo, &reference)
        .and_then(|commit| gitc::dirs_with(&repo, &commit, manifest::FILE_NAME));
    let dirs = match dirs {
        Ok(dirs) => dirs,
        Err(e) => return found.skip(format!("{shown}@{reference}"), e.message),
    };
    let prefix = relative(path, &entry.path);
    for dir in dirs {
        // The service's directory as seen from `entry.path`.
        let below = match within {
            "" => dir.as_str(),
            w if dir == w => "",
            w => match dir.strip_prefix(w).and_then(|d| d.strip_prefix('/')) {
                Some(d) => d,
                None => continue,
            },
        };
        let rel = match (prefix.as_str(), below) {
            ("", "") => ".".to_string(),
            ("", d) | (d, "") => d.to_string(),
            (p, d) => format!("{p}/{d}"),
        };
        if selected(entry.services.as_deref(), &rel) {
            found.targets.push(Target {
                repo: path.to_path_buf(),
                reference: reference.clone(),
                dir,
                team: entry.team.clone(),
            });
        }
    }
}

fn selected(globs: Option<&[ServiceGlob]>, rel: &str) -> bool {
    globs.is_none_or(|globs| globs.iter().any(|g| g.matcher.is_match(rel)))
}

fn relative(dir: &Path, base: &Path) -> String {
    dir.strip_prefix(base)
        .unwrap_or(dir)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Runs `work` over `items` on `jobs` threads, keeping the items' order in the result.
/// (std's scoped threads and one shared counter: each service opens its own repository, since a
/// git2 `Repository` is not `Sync`; rayon would add a dependency for this one loop.)
pub fn parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = work(item);
                    *results[i].lock().expect("a campaign worker panicked") = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("a campaign worker panicked")
                .expect("every item was run")
        })
        .collect()
}

/// Branch updates done by this process, for the test hook `fleet-upgrade:die-after:N`.
static BRANCHES_MOVED: AtomicUsize = AtomicUsize::new(0);
/// Branch updates begun by this process, for the test hook `fleet-upgrade:die-before-branch:N`.
static BRANCHES_STARTED: AtomicUsize = AtomicUsize::new(0);

/// Test hook: `CARGO_PLATFORM_FAULT=fleet-upgrade:die-before-branch:N` kills the process, without
/// any clean-up, in the N-th service whose branch it is about to move: its objects and commit
/// are written, its branch is not (a kill in the middle of a service).
fn before_branch_move() {
    let started = BRANCHES_STARTED.fetch_add(1, Ordering::SeqCst) + 1;
    if let Ok(p) = std::env::var("CARGO_PLATFORM_FAULT")
        && let Some(n) = p.strip_prefix("fleet-upgrade:die-before-branch:")
        && n.parse::<usize>().ok() == Some(started)
    {
        eprintln!("injected kill before branch move {started} (CARGO_PLATFORM_FAULT)");
        std::process::exit(137);
    }
}

/// Test hook: `CARGO_PLATFORM_FAULT=fleet-upgrade:die-after:N` kills the process, without any
/// clean-up, right after the N-th branch it moved (as a killed CI job would stop).
fn after_branch_moved() {
    let moved = BRANCHES_MOVED.fetch_add(1, Ordering::SeqCst) + 1;
    if let Ok(p) = std::env::var("CARGO_PLATFORM_FAULT")
        && let Some(n) = p.strip_prefix("fleet-upgrade:die-after:")
        && n.parse::<usize>().ok() == Some(moved)
    {
        eprintln!("injected kill after {moved} branch(es) (CARGO_PLATFORM_FAULT)");
        std::process::exit(137);
    }
}

/// The campaign branch of a service: `--branch` or `platform/upgrade-<template>-<version>`,
/// with `-<dir>` (slashes as `-`) for a service below the repository root, so that each service
/// of a monorepo has its own branch and pull request.
pub fn branch_name(given: Option<&str>, template: &str, to: &Version, dir: &str) -> String {
    let base = match given {
        Some(b) => b.to_string(),
        None => format!("platform/upgrade-{template}-{to}"),
    };
    if dir.is_empty() {
        base
    } else {
        format!("{base}-{}", dir.replace('/', "-"))
    }
}

/// The planner's view of a service directory in a commit's tree.
struct InTree<'a, 'r>(&'a TreeDisk<'r>);

impl Disk for InTree<'_, '_> {
    fn read(&self, path: &str) -> Result<OnDisk> {
        Ok(match self.0.read(path)? {
            TreeFile::Missing => OnDisk::Missing,
            TreeFile::File(bytes) => OnDisk::File(bytes),
            TreeFile::Other => OnDisk::Other,
        })
    }

    fn list(&self, dir: &str) -> Result<Vec<String>> {
        self.0.list(dir)
    }
}

/// What reading a service's manifest from its default branch gives.
struct Read<'c> {
    manifest: Manifest,
    text: String,
    template: &'c Template,
    to: Version,
}

/// Reads the manifest at `target`'s directory of `disk` and the target release; an `Err` is the
/// reason to refuse.
fn read<'c>(
    disk: &TreeDisk<'_>,
    target: &Target,
    catalogue: &'c Catalogue,
    to: Option<&str>,
    allow_draft: bool,
    parsed: &mut dyn FnMut(&Manifest),
) -> Result<Read<'c>> {
    let shown = format!(
        "{}@{}:{}",
        target.repo.display(),
        target.reference,
        gitc::join(&target.dir, manifest::FILE_NAME)
    );
    let bytes = disk
        .read_text(manifest::FILE_NAME)?
        .ok_or_else(|| Error::new(format!("{shown} is not a file")))?;
    let text = String::from_utf8(bytes).map_err(|_| Error::new(format!("{shown} is not UTF-8")))?;
    let manifest = Manifest::parse(&text, &shown)?;
    parsed(&manifest);
    let template = catalogue
        .get(&manifest.template)
        .map_err(|e| e.context(format!("{shown}: [platform] template")))?;
    if template.release(&manifest.version.to_string()).is_err() {
        return Err(Error::new(format!(
            "{shown}: the service is on {} {}, a release this cargo-platform ({}) does not have",
            manifest.template,
            manifest.version,
            env!("CARGO_PKG_VERSION")
        ))
        .hint(format!(
            "update cargo-platform to one that embeds {} {}, then run the campaign again",
            manifest.template, manifest.version
        )));
    }
    let to = match to {
        Some(v) => template.release_to_render(v, allow_draft)?.version.clone(),
        None => template.newest().version.clone(),
    };
    Ok(Read {
        manifest,
        text,
        template,
        to,
    })
}

/// A service's row before anything is known beyond where it is.
fn row(target: &Target) -> CampaignService {
    CampaignService {
        name: if target.dir.is_empty() {
            target
                .repo
                .file_name()
                .map_or_else(|| ".".into(), |n| n.to_string_lossy().into_owned())
        } else {
            target
                .dir
                .rsplit('/')
                .next()
                .unwrap_or(&target.dir)
                .to_string()
        },
        repository: target.repo.display().to_string(),
        dir: if target.dir.is_empty() {
            ".".into()
        } else {
            target.dir.clone()
        },
        base_ref: target.reference.clone(),
        base: None,
        team: target.team.clone(),
        template: None,
        from: None,
        to: None,
        hops: Vec::new(),
        outcome: CampaignOutcome::Refused,
        reason: String::new(),
        branch: None,
        branch_state: BranchState::None,
        commit: None,
        pushed: None,
        push_error: None,
        conflicts: Vec::new(),
        actions: Vec::new(),
        next_step: None,
        migrations_applied: Vec::new(),
        migrations_skipped: Vec::new(),
        files: Default::default(),
        verify: None,
        pr_body: None,
    }
}

/// Upgrades one service; every failure becomes its `refused` outcome with the reason.
pub fn upgrade(target: &Target, catalogue: &Catalogue, opts: &Options) -> CampaignService {
    let mut out = row(target);
    if let Err(e) = upgrade_into(target, catalogue, opts, &mut out) {
        out.outcome = CampaignOutcome::Refused;
        out.reason = super::one_line(&e.message);
        out.next_step = e.hints.first().cloned();
    }
    out
}

fn upgrade_into(
    target: &Target,
    catalogue: &Catalogue,
    opts: &Options,
    out: &mut CampaignService,
) -> Result<()> {
    // A dry run writes its objects into memory only: the same computation, nothing on disk.
    let repo = match opts.dry_run {
        true => gitc::open_in_memory(&target.repo)?,
        false => gitc::open(&target.repo)?,
    };
    let base = gitc::resolve(&repo, &target.reference)?;
    out.base = Some(base.id().to_string());
    let disk = TreeDisk::new(&repo, &base, &target.dir)?;
    let read = read(
        &disk,
        target,
        catalogue,
        opts.to.as_deref(),
        opts.allow_draft,
        &mut |m| {
            out.name = m.name.clone();
            out.team = target.team.clone().or_else(|| super::owner(m));
            out.template = Some(m.template.clone());
            out.from = Some(m.version.to_string());
        },
    )?;
    let Read {
        manifest,
        text,
        template,
        to,
    } = read;
    out.name = manifest.name.clone();
    out.team = target.team.clone().or_else(|| super::owner(&manifest));
    out.template = Some(template.name.clone());
    out.from = Some(manifest.version.to_string());
    out.to = Some(to.to_string());
    if manifest.version >= to {
        out.outcome = CampaignOutcome::UpToDate;
        out.reason = format!(
            "already on {} {} on {}",
            template.name,
            manifest.version,
            short_ref(&target.reference)
        );
        return Ok(());
    }
    let branch = branch_name(opts.branch.as_deref(), &template.name, &to, &target.dir);
    out.branch = Some(branch.clone());
    let existing = gitc::branch_tip(&repo, &branch)?;
    // A branch an earlier run made, when this run commits nothing: left alone, and said so.
    let stale = match existing {
        Some(_) => format!("; branch {branch} from an earlier run is left as it was"),
        None => String::new(),
    };
    // The day the campaign made this upgrade: the one its branch already records (a re-run on a
    // later day, or a refresh onto a moved base, keeps it), else the day of this run.
    let today = match existing {
        Some(tip) => recorded_on_branch(&repo, tip, &target.dir, &to),
        None => None,
    }
    .unwrap_or(opts.today);
    let plan = plan::plan(
        template,
        &manifest,
        &InTree(&disk),
        &plan::Options {
            to: Some(to.clone()),
            skip: Vec::new(),
            exclude: Vec::new(),
            eject: Vec::new(),
            conflict: plan::ConflictStyle::Markers,
            today,
        },
    )?;
    let details = UpgradeReport::new(
        &manifest.name,
        &out.dir,
        &template.name,
        &plan,
        upgrade_report::ConflictStyle::Markers,
    );
    out.hops = details.hops.clone();
    for m in &details.migrations {
        match m.action {
            upgrade_report::MigrationAction::Apply => out.migrations_applied.push(m.id.clone()),
            upgrade_report::MigrationAction::Skip => out.migrations_skipped.push(m.id.clone()),
            _ => {}
        }
    }
    for f in &details.files {
        *out.files.entry(f.status.as_str().to_string()).or_default() += 1;
    }
    out.conflicts = details.conflicts.clone();
    out.actions = details.actions.clone();
    let in_checkout = format!(
        "cd {} && git switch {} && cargo platform upgrade --to {to}",
        shell_path(&match target.dir.as_str() {
            "" => target.repo.clone(),
            dir => target.repo.join(dir),
        }),
        short_ref(&target.reference)
    );
    if !out.conflicts.is_empty() {
        out.outcome = CampaignOutcome::NeedsHands;
        out.reason = format!(
            "{} file(s) conflict with the team's edits: nothing committed{stale}",
            out.conflicts.len()
        );
        out.next_step = Some(in_checkout);
        return Ok(());
    }
    if !out.actions.is_empty() {
        out.outcome = CampaignOutcome::NeedsHands;
        out.reason = format!(
            "a release declares a break in ejected component(s) {}: the team's copy must change, nothing committed{stale}",
            out.actions
                .iter()
                .map(|a| a.component.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        out.next_step = Some(in_checkout);
        return Ok(());
    }

    let mut writes = plan.writes.clone();
    writes.push(Write::Put {
        path: manifest::FILE_NAME.to_string(),
        contents: plan.manifest.to_toml(Some(&text))?.into_bytes(),
    });
    // The message says whether the result was checked, so a --verify run never takes an
    // unchecked branch for its own (and checks it), while a plain run keeps a checked one.
    let checked = match opts.verify {
        Some(_) => format!(
            "Checked with `{}` before committing.\n",
            crate::verify::COMMAND
        ),
        None => String::new(),
    };
    let message = format!(
        "Upgrade {}: template {} {} -> {to}\n\nApplied by cargo-platform {} {}\n{checked}",
        manifest.name,
        template.name,
        manifest.version,
        env!("CARGO_PKG_VERSION"),
        gitc::MESSAGE_MARK
    );
    let ours = gitc::write_commit(
        &repo,
        &base,
        &NewCommit {
            dir: &target.dir,
            writes: &writes,
            message: &message,
            date: today,
        },
    )?;
    let carried = match existing {
        Some(tip) if tip == ours => Some(tip),
        Some(tip) if opts.verify.is_none() && gitc::same_change(&repo, tip, ours)? => Some(tip),
        _ => None,
    };
    // A branch the campaign would move: only its own, and never under a checkout.
    if let (None, Some(tip)) = (carried, existing) {
        let repo_dir = shell_path(&target.repo);
        let default = short_ref(&target.reference);
        match gitc::standing(&repo, tip)? {
            gitc::Standing::Ours => {}
            gitc::Standing::OnTopOfOurs { base: made_on } if made_on == base.id() => {
                out.outcome = CampaignOutcome::UpToDate;
                out.branch_state = BranchState::Unchanged;
                out.commit = Some(tip.to_string());
                out.reason = format!(
                    "branch {branch} carries {} {to} on top of {default}, and carries your commits; left as it is",
                    template.name
                );
                return Ok(());
            }
            gitc::Standing::OnTopOfOurs { .. } => {
                out.outcome = CampaignOutcome::NeedsHands;
                out.reason = format!(
                    "branch {branch} carries your commits, and {default} has moved since it was made: left as it is, nothing committed"
                );
                out.next_step = Some(format!(
                    "cd {repo_dir} && git switch {branch} && git rebase {default}"
                ));
                return Ok(());
            }
            gitc::Standing::Foreign => {
                out.outcome = CampaignOutcome::NeedsHands;
                out.reason = format!(
                    "branch {branch} is not one this campaign made: left as it is, nothing committed"
                );
                out.next_step = Some(format!(
                    "rename or delete branch {branch} in {repo_dir}, or give the campaign another --branch"
                ));
                return Ok(());
            }
        }
        if let Some(checkout) = gitc::checked_out_in(&repo, &branch)? {
            let checkout = shell_path(&checkout);
            out.outcome = CampaignOutcome::NeedsHands;
            out.reason = format!(
                "branch {branch} is checked out in {checkout}: not moved under a checkout, nothing committed"
            );
            out.next_step = Some(format!(
                "cd {checkout} && git switch {default} (or `git worktree remove {checkout}`), then run the campaign again"
            ));
            return Ok(());
        }
    }
    let commit = carried.unwrap_or(ours);
    out.commit = Some(commit.to_string());
    if carried.is_some() {
        out.outcome = CampaignOutcome::UpToDate;
        out.branch_state = BranchState::Unchanged;
        out.reason = format!(
            "branch {branch} already carries {} {to} on top of {}",
            template.name,
            short_ref(&target.reference)
        );
    } else {
        if let Some(target_dir) = &opts.verify {
            let files = gitc::files_of(&repo, commit, "")?;
            let verified = verify(&files, &target.dir, target_dir)?;
            let passed = verified.passed;
            out.verify = Some(verified);
            if !passed {
                out.outcome = CampaignOutcome::NeedsHands;
                out.reason = format!(
                    "`{}` fails on the upgraded service: nothing committed{stale}",
                    crate::verify::COMMAND
                );
                out.next_step = Some(format!("{in_checkout} --verify"));
                return Ok(());
            }
        }
        out.outcome = CampaignOutcome::Ready;
        out.reason = format!(
            "{} {} -> {to} merged cleanly{}",
            template.name,
            manifest.version,
            if out.verify.is_some() {
                ", `cargo check --all-targets` passes"
            } else {
                ""
            }
        );
        if opts.dry_run {
            out.reason.push_str(" (dry run: branch not written)");
        } else {
            before_branch_move();
            gitc::set_branch(&repo, &branch, commit, existing)?;
            out.branch_state = match existing {
                Some(_) => BranchState::Refreshed,
                None => BranchState::Created,
            };
            after_branch_moved();
        }
    }
    if let Some(remote) = &opts.push
        && !opts.dry_run
    {
        match gitc::push(&repo, remote, &branch, commit) {
            Ok(Pushed::Already | Pushed::Pushed) => out.pushed = Some(true),
            // Someone else's commits on the remote branch: theirs to sort out.
            Ok(Pushed::NotOurs(e)) => {
                out.pushed = Some(false);
                out.outcome = CampaignOutcome::NeedsHands;
                out.reason = format!("the branch is ready here, but {}", e.message);
                out.next_step = e.hints.first().cloned();
            }
            // The operator's problem (remote, credentials, network): the outcome stands, the
            // run did not do all it was asked (exit 1).
            Err(e) => {
                out.pushed = Some(false);
                out.push_error = Some(super::one_line(&e.message));
            }
        }
    }
    if let Some(dir) = &opts.out
        && !opts.dry_run
        && matches!(
            out.outcome,
            CampaignOutcome::Ready | CampaignOutcome::UpToDate
        )
    {
        let ejected: Vec<(String, Option<String>)> = manifest
            .components
            .iter()
            .filter(|(_, c)| c.state == crate::manifest::ComponentState::Ejected)
            .map(|(name, c)| (name.clone(), c.reason.clone()))
            .collect();
        let body = crate::report::pr_body::render(template, &details, out, &ejected);
        // Named after the whole repository path: two repositories with the same name in
        // different places never share a file.
        let file = dir.join(format!(
            "{}--{}.md",
            slug(&target.repo.display().to_string()),
            slug(&branch)
        ));
        crate::fsx::write_file_atomically(&file, body.as_bytes())?;
        out.pr_body = Some(file.display().to_string());
    }
    Ok(())
}

/// `text` as one file name: letters, digits, `.`, `_` and `-` kept, anything else `-`, no
/// leading `-` or `.`.
fn slug(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    mapped.trim_start_matches(['-', '.']).to_string()
}

/// The branch a team switches to for `reference` in its checkout: `main` for `refs/heads/main`,
/// `refs/remotes/origin/main` or `origin/main`.
fn short_ref(reference: &str) -> &str {
    ["refs/heads/", "refs/remotes/origin/", "origin/"]
        .iter()
        .find_map(|p| reference.strip_prefix(p))
        .unwrap_or(reference)
}

fn shell_path(path: &Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The day the campaign branch at `tip` records the upgrade of the service in `dir` to `to` on
/// (its platform.toml's last `[[history.upgrades]]` entry to `to`); `None` when it records none
/// (or cannot be read: the branch is then not one this campaign can take as its own anyway).
fn recorded_on_branch(
    repo: &gitc::Repo,
    tip: gitc::CommitId,
    dir: &str,
    to: &Version,
) -> Option<jiff::civil::Date> {
    let commit = gitc::resolve(repo, &tip.to_string()).ok()?;
    let disk = TreeDisk::new(repo, &commit, dir).ok()?;
    let text = String::from_utf8(disk.read_text(manifest::FILE_NAME).ok()??).ok()?;
    let manifest = Manifest::parse(&text, manifest::FILE_NAME).ok()?;
    manifest
        .history
        .upgrades
        .iter()
        .rev()
        .find(|u| &u.to == to)
        .map(|u| u.date)
}

/// `--verify`: the commit's whole tree (`files`: path, content, executable) written to a
/// temporary directory (a monorepo's service may need its workspace) and checked in the service's
/// directory there, with the campaign's one target directory.
fn verify(
    files: &[(String, Vec<u8>, bool)],
    dir: &str,
    target_dir: &Path,
) -> Result<upgrade_report::Verify> {
    let tmp = tempfile::Builder::new()
        .prefix("cargo-platform-verify-")
        .tempdir()
        .map_err(|e| Error::new(format!("cannot create a temporary directory: {e}")))?;
    for (rel, bytes, exec) in files {
        let path = tmp.path().join(rel);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(&path, bytes)?;
        #[cfg(unix)]
        if *exec {
            use std::os::unix::fs::PermissionsExt;
            fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let checked = crate::verify::cargo_check_with_target(&tmp.path().join(dir), Some(target_dir))?;
    Ok(upgrade_report::Verify {
        command: crate::verify::COMMAND.to_string(),
        passed: checked.passed,
        first_errors: checked.first_errors,
    })
}

/// `fleet matrix`: one entry per service still to upgrade; the others (already on the target,
/// or unreadable) are returned with their reason.
pub fn matrix_entry(
    target: &Target,
    catalogue: &Catalogue,
    to: Option<&str>,
    allow_draft: bool,
    branch: Option<&str>,
) -> std::result::Result<MatrixEntry, (String, String)> {
    let at = format!(
        "{}@{}:{}",
        target.repo.display(),
        target.reference,
        gitc::join(&target.dir, "")
    );
    let at = at.trim_end_matches(':').to_string();
    let read = (|| {
        let repo = gitc::open(&target.repo)?;
        let base = gitc::resolve(&repo, &target.reference)?;
        let disk = TreeDisk::new(&repo, &base, &target.dir)?;
        let r = read(&disk, target, catalogue, to, allow_draft, &mut |_| {})?;
        let remote = gitc::origin_url(&repo);
        Ok::<_, Error>((r.manifest, r.template.name.clone(), r.to, remote))
    })();
    let (manifest, template, to, remote) =
        read.map_err(|e| (at.clone(), super::one_line(&e.message)))?;
    if manifest.version >= to {
        return Err((at, format!("already on {template} {}", manifest.version)));
    }
    Ok(MatrixEntry {
        service: manifest.name.clone(),
        repo: target.repo.display().to_string(),
        remote,
        path: if target.dir.is_empty() {
            ".".into()
        } else {
            target.dir.clone()
        },
        reference: short_ref(&target.reference).to_string(),
        team: target
            .team
            .clone()
            .or_else(|| super::owner(&manifest))
            .unwrap_or_default(),
        branch: branch_name(branch, &template, &to, &target.dir),
        template,
        from: manifest.version.to_string(),
        to: to.to_string(),
    })
}

/// `fleet report`: each campaign's progress, per template and target, from the branches
/// campaigns create (`platform/upgrade-<template>-<version>`, `-<dir>` below the repository
/// root; a `--branch` name of its own is not recognised) and each service's default branch. A
/// service is in the campaign (`open`) while its branch is not merged into the default branch
/// (its tip not in the default branch's history) and the default branch is below the target;
/// `on_target` counts the services of the template on the target or later, `to_do` the others.
/// A campaign is listed while any service of it has a branch, and until none is open or to do.
pub fn progress(targets: &[Target]) -> Vec<CampaignProgress> {
    use std::collections::{BTreeMap, BTreeSet};
    // Per readable service: its template, its version on the default branch, and the targets of
    // its campaign branches (with whether that branch is open).
    let mut versions: Vec<(String, Version)> = Vec::new();
    let mut campaigns: BTreeMap<(String, Version), BTreeSet<usize>> = BTreeMap::new();
    for t in targets {
        let Some((manifest, branches)) = service_branches(t) else {
            continue;
        };
        let index = versions.len();
        for (to, open) in branches {
            let open_ones = campaigns
                .entry((manifest.template.clone(), to))
                .or_default();
            if open {
                open_ones.insert(index);
            }
        }
        versions.push((manifest.template, manifest.version));
    }
    campaigns
        .into_iter()
        .filter_map(|((template, to), open_ones)| {
            let mut c = CampaignProgress {
                template,
                to: to.to_string(),
                open: 0,
                on_target: 0,
                to_do: 0,
            };
            for (i, (t, v)) in versions.iter().enumerate() {
                if *t != c.template {
                    continue;
                }
                match (*v >= to, open_ones.contains(&i)) {
                    (true, _) => c.on_target += 1,
                    (false, true) => c.open += 1,
                    (false, false) => c.to_do += 1,
                }
            }
            (c.open + c.to_do > 0).then_some(c)
        })
        .collect()
}

/// The manifest on a service's default branch, and its campaign branches of that template: the
/// target and whether the branch is open (not merged into the default branch, which is below
/// the target). `None` when the service cannot be read (`fleet report` lists it as skipped).
fn service_branches(t: &Target) -> Option<(Manifest, Vec<(Version, bool)>)> {
    let repo = gitc::open(&t.repo).ok()?;
    let base = gitc::resolve(&repo, &t.reference).ok()?;
    let disk = TreeDisk::new(&repo, &base, &t.dir).ok()?;
    let text = String::from_utf8(disk.read_text(manifest::FILE_NAME).ok()??).ok()?;
    let manifest = Manifest::parse(&text, manifest::FILE_NAME).ok()?;
    let mut branches = Vec::new();
    for b in gitc::campaign_branches(&repo).unwrap_or_default() {
        let Some((template, to)) = campaign_of(&b, &t.dir) else {
            continue;
        };
        if template != manifest.template {
            continue;
        }
        let merged = match gitc::branch_tip(&repo, &b) {
            Ok(Some(tip)) => gitc::merged(&repo, tip, base.id()).unwrap_or(false),
            _ => continue,
        };
        let open = !merged && manifest.version < to;
        branches.push((to, open));
    }
    Some((manifest, branches))
}

/// The template and target of campaign branch `branch` when it is the branch of the service in
/// `dir`.
fn campaign_of(branch: &str, dir: &str) -> Option<(String, Version)> {
    let rest = branch.strip_prefix("platform/upgrade-")?;
    let rest = match dir {
        "" => rest,
        d => rest.strip_suffix(&format!("-{}", d.replace('/', "-")))?,
    };
    let (template, version) = rest.rsplit_once('-')?;
    let version = Version::parse(version).ok()?;
    Some((template.to_string(), version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_of_a_monorepo_gets_its_own_branch() {
        let v = Version::new(2, 1, 0);
        assert_eq!(
            branch_name(None, "service", &v, ""),
            "platform/upgrade-service-2.1.0"
        );
        assert_eq!(
            branch_name(None, "service", &v, "services/api"),
            "platform/upgrade-service-2.1.0-services-api"
        );
        assert_eq!(branch_name(Some("up"), "service", &v, "w"), "up-w");
    }

    #[test]
    fn a_campaign_branch_names_its_template_target_and_service() {
        let v = Version::new(2, 1, 0);
        for dir in ["", "services/api"] {
            let b = branch_name(None, "web-service", &v, dir);
            assert_eq!(
                campaign_of(&b, dir),
                Some(("web-service".into(), v.clone()))
            );
        }
        let api = branch_name(None, "service", &v, "services/api");
        assert_eq!(
            campaign_of(&api, "services/worker"),
            None,
            "another service's branch"
        );
        assert_eq!(campaign_of(&api, ""), None, "not the root service's");
        assert_eq!(campaign_of("platform/upgrade-service-next", ""), None);
    }

    #[test]
    fn the_branch_to_switch_to_is_the_short_name() {
        for r in [
            "main",
            "refs/heads/main",
            "refs/remotes/origin/main",
            "origin/main",
        ] {
            assert_eq!(short_ref(r), "main", "{r}");
        }
        assert_eq!(short_ref("v1.2"), "v1.2");
    }

    #[test]
    fn a_pull_request_body_file_is_named_after_the_whole_repository_path() {
        assert_eq!(slug("./teams/a/orders"), "teams-a-orders");
        assert_eq!(slug("/srv/b/orders"), "srv-b-orders");
        assert_eq!(
            slug("platform/upgrade-service-2.1.0"),
            "platform-upgrade-service-2.1.0"
        );
    }

    #[test]
    fn parallel_keeps_the_order_of_its_items() {
        let items: Vec<usize> = (0..50).collect();
        assert_eq!(
            parallel(&items, 4, |i| i * 2),
            (0..50).map(|i| i * 2).collect::<Vec<_>>()
        );
        assert!(parallel(&[] as &[usize], 4, |i| *i).is_empty());
    }
}
