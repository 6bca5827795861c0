//! A generated fleet for the fleet tests and benchmarks: N services built by the real
//! `cargo-platform` binary with dated histories, deterministic from a seed.
//!
//! Each service is created with `new` on a date (`CARGO_PLATFORM_TODAY`) on one of the releases
//! out by then, then upgraded, ejected from and edited on later dates, in date order, so its
//! manifest's history spans months. Services live in single-service repositories and in
//! monorepos (cargo workspaces, `services/<name>`), owned by several teams; some repositories
//! are git repositories with one commit per step, dated on the step's day, each with a bare
//! mirror for `--ref`. With `broken`, the fleet also holds the entries a report must list and
//! survive: a corrupt manifest, a future manifest schema, an unknown template, a manifest
//! behind a symbolic link, a service with an unreadable managed file, and (in the fleet file)
//! a missing ref.
//!
//! Layout under `out`:
//! - `trees/`: the work trees (`--root out/trees`);
//! - `mirrors/<repo>.git`: bare mirrors of the git repositories (`--root out/mirrors --ref main`);
//! - `fleet.toml`: a fleet file naming every mirror with `ref = "main"` (monorepos with
//!   `services = ["services/*"]`), and with `broken`, one more with a ref that does not exist.
//!
//! Benchmarks run it as `cargo run --release --example fleetgen -- --bin … --out … -n 1000`;
//! tests include it (`#[path = "../benches/fleetgen.rs"] mod fleetgen;`) and call [`generate`].
// Compiled twice — as the example's crate root and as a module of a test — each using part
// of what is here (the example does not read the generated facts, a test has no `main`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::civil::Date;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `cargo-platform` binary that builds the services.
    pub bin: PathBuf,
    /// An empty (or missing) directory to build the fleet in.
    pub out: PathBuf,
    /// How many services.
    pub services: usize,
    pub seed: u64,
    /// The fleet's today: no step is dated on or after it.
    pub today: Date,
    /// Which repositories are git repositories (with a bare mirror each).
    pub git: GitShare,
    /// Add the broken entries.
    pub broken: bool,
    /// Repositories built at once.
    pub jobs: usize,
}

/// Which repositories are git repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitShare {
    None,
    /// About one in three, and every monorepo.
    Some,
    All,
}

/// One generated service, as the generator made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// Relative to `out/trees`, `/`-separated.
    pub path: String,
    pub team: String,
    pub created: Date,
    /// The release it was created on.
    pub created_on: String,
    /// `(date, to)`, oldest first: the upgrades applied.
    pub upgrades: Vec<(Date, String)>,
    /// An upgrade that left conflicts (exit 3): the service stopped upgrading there.
    pub conflicted: bool,
    /// `(component, reason, date)`.
    pub ejected: Vec<(String, String, Date)>,
    /// Managed files edited by the team (some before an upgrade, which merged them).
    pub edited: Vec<String>,
    /// The release it is on at the end.
    pub version: String,
    /// Whether its repository is a git repository (with a mirror).
    pub in_git: bool,
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub services: Vec<Service>,
    /// The broken entries' directories, relative to `out/trees`.
    pub broken: Vec<String>,
    /// The git repositories, relative to `out/trees`.
    pub git_repositories: Vec<String>,
}

const TEAMS: [&str; 5] = ["payments", "ledger", "search", "identity", "growth"];
const WORDS: [&str; 16] = [
    "orders", "billing", "ledger", "search", "users", "auth", "cart", "pricing", "catalog",
    "payouts", "invoices", "notify", "reports", "quotes", "stock", "refunds",
];
/// Components ejectable in every release, with a team's reason.
const EJECTIONS: [(&str, &str); 4] = [
    ("auth", "we terminate mTLS at the mesh"),
    ("flags", "we use the company flag service"),
    ("idempotency", "our store is DynamoDB"),
    ("metrics", "we export to our own collector"),
];
/// Managed files in every release, and the line a team appends.
const EDITS: [(&str, &str); 4] = [
    ("Dockerfile", "# team: extra CA bundle\n"),
    ("deploy/k8s/deployment.yaml", "# team: pinned node pool\n"),
    ("ops/alerts/service.rules.yml", "# team: paging tuned\n"),
    ("src/platform/config.rs", "// team: read one more key\n"),
];

/// A step of a repository's history.
#[derive(Debug, Clone)]
enum Step {
    New { version: String },
    Upgrade { to: String },
    Eject { component: String, reason: String },
    Edit { file: String, line: String },
}

#[derive(Debug, Clone)]
struct Plan {
    service: Service,
    steps: Vec<(Date, Step)>,
}

#[derive(Debug, Clone)]
struct Repo {
    /// Relative to `out/trees`.
    dir: String,
    mono: bool,
    git: bool,
    plans: Vec<Plan>,
}

/// A repository's index and what building it gave.
type Built = (usize, Result<Vec<Service>, String>);

/// Builds the fleet; the error names what failed.
pub fn generate(opts: &Options) -> Result<Fleet, String> {
    // The tool runs in each repository: every path it is given is absolute.
    mkdir(&opts.out)?;
    let absolute = |p: &Path| {
        p.canonicalize()
            .map_err(|e| format!("cannot find {}: {e}", p.display()))
    };
    let opts = &Options {
        bin: absolute(&opts.bin)?,
        out: absolute(&opts.out)?,
        ..opts.clone()
    };
    let trees = opts.out.join("trees");
    let mirrors = opts.out.join("mirrors");
    mkdir(&trees)?;
    let releases = releases(&opts.bin)?;
    let repos = plan(opts, &releases);
    let next = AtomicUsize::new(0);
    let built: Mutex<Vec<Built>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(repo) = repos.get(i) else { break };
                    let result = build(opts, &trees, &mirrors, repo);
                    built.lock().unwrap().push((i, result));
                }
            });
        }
    });
    let mut built = built.into_inner().unwrap();
    built.sort_by_key(|(i, _)| *i);
    let mut services = Vec::new();
    for (_, result) in built {
        services.extend(result?);
    }
    let mut fleet = Fleet {
        services,
        broken: Vec::new(),
        git_repositories: repos
            .iter()
            .filter(|r| r.git)
            .map(|r| r.dir.clone())
            .collect(),
    };
    if opts.broken {
        fleet.broken = broken(&trees, &fleet.services)?;
    }
    fleet_file(opts, &repos)?;
    Ok(fleet)
}

/// Every release of the `service` template with its date, oldest first (drafts left out).
fn releases(bin: &Path) -> Result<Vec<(String, Date)>, String> {
    let out = Command::new(bin)
        .args(["platform", "templates", "--format", "json"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`templates` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("`templates` JSON: {e}"))?;
    let template = doc["templates"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == "service"))
        .ok_or("no `service` template")?;
    let mut releases: Vec<(String, Date)> = template["versions"]
        .as_array()
        .ok_or("no versions")?
        .iter()
        // A draft is under construction: no service in a fleet is made from one.
        .filter(|v| v["draft"] != true)
        .map(|v| {
            let version = v["version"].as_str().unwrap_or_default().to_string();
            let date = v["date"].as_str().unwrap_or_default().parse::<Date>();
            date.map(|d| (version.clone(), d))
                .map_err(|e| format!("release {version}: date: {e}"))
        })
        .collect::<Result<_, _>>()?;
    releases.sort_by(|a, b| {
        let key = |v: &str| -> Vec<u64> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
        key(&a.0).cmp(&key(&b.0))
    });
    Ok(releases)
}

fn days(from: Date, n: i64) -> Date {
    from.checked_add(jiff::Span::new().days(n))
        .expect("a date in range")
}

fn between(from: Date, until: Date) -> i64 {
    (until - from).get_days() as i64
}

/// Every repository and every service's steps, from the seed alone.
fn plan(opts: &Options, releases: &[(String, Date)]) -> Vec<Repo> {
    let mut rng = fastrand::Rng::with_seed(opts.seed);
    let first = releases[0].1;
    let last_day = days(opts.today, -1);
    let span = between(first, last_day).max(1);
    let mut repos = Vec::new();
    let mut made = 0;
    while made < opts.services {
        let left = opts.services - made;
        let mono = left >= 2 && rng.u32(0..100) < 20;
        let size = if mono { rng.usize(2..=left.min(5)) } else { 1 };
        let index = repos.len();
        let git = match opts.git {
            GitShare::None => false,
            GitShare::All => true,
            GitShare::Some => mono || rng.u32(0..3) == 0,
        };
        let dir = if mono {
            format!("mono-{index:04}")
        } else {
            format!("{}-{made:04}", WORDS[rng.usize(..WORDS.len())])
        };
        let team = TEAMS[rng.usize(..TEAMS.len())];
        let mut plans = Vec::new();
        for k in 0..size {
            let name = if mono {
                format!("{}-{:04}", WORDS[rng.usize(..WORDS.len())], made + k)
            } else {
                dir.clone()
            };
            let path = if mono {
                format!("{dir}/services/{name}")
            } else {
                dir.clone()
            };
            // Most services of a monorepo share its team; a few belong to another.
            let team = if rng.u32(0..10) == 0 {
                TEAMS[rng.usize(..TEAMS.len())]
            } else {
                team
            };
            plans.push(service_plan(
                &mut rng, releases, name, path, team, git, first, span, last_day,
            ));
        }
        made += size;
        repos.push(Repo {
            dir,
            mono,
            git,
            plans,
        });
    }
    repos
}

#[allow(clippy::too_many_arguments)]
fn service_plan(
    rng: &mut fastrand::Rng,
    releases: &[(String, Date)],
    name: String,
    path: String,
    team: &str,
    in_git: bool,
    first: Date,
    span: i64,
    last_day: Date,
) -> Plan {
    // Created over the whole window, more of them early (an established fleet).
    let created = days(first, (span as f64 * rng.f64().powf(1.5) * 0.9) as i64);
    let out: Vec<usize> = (0..releases.len())
        .filter(|&i| releases[i].1 <= created)
        .collect();
    // Teams pin older releases as often as they take the newest.
    let mut at = out[rng.usize(..out.len())];
    let first_at = at;
    let mut steps = vec![(
        created,
        Step::New {
            version: releases[at].0.clone(),
        },
    )];
    let mut day = created;
    let mut upgrades = Vec::new();
    while at + 1 < releases.len() && rng.u32(0..100) < 55 {
        // Sometimes straight to the newest, else the next release.
        let to = if rng.bool() {
            releases.len() - 1
        } else {
            at + 1
        };
        let earliest = day.max(releases[to].1);
        let when = days(earliest, rng.i64(1..=75));
        if when > last_day {
            break;
        }
        steps.push((
            when,
            Step::Upgrade {
                to: releases[to].0.clone(),
            },
        ));
        upgrades.push((when, releases[to].0.clone()));
        day = when;
        at = to;
    }
    let mut ejected = Vec::new();
    if rng.u32(0..100) < 15 {
        let (component, reason) = EJECTIONS[rng.usize(..EJECTIONS.len())];
        let when = days(created, rng.i64(0..=between(created, last_day).max(0)));
        steps.push((
            when,
            Step::Eject {
                component: component.to_string(),
                reason: reason.to_string(),
            },
        ));
        ejected.push((component.to_string(), reason.to_string(), when));
    }
    let mut edited = Vec::new();
    if rng.u32(0..100) < 30 {
        let (file, line) = EDITS[rng.usize(..EDITS.len())];
        let when = days(created, rng.i64(0..=between(created, last_day).max(0)));
        steps.push((
            when,
            Step::Edit {
                file: file.to_string(),
                line: line.to_string(),
            },
        ));
        edited.push(file.to_string());
    }
    // Stable: on one day, in the order planned (new, upgrades, eject, edit).
    steps.sort_by_key(|(d, _)| *d);
    Plan {
        service: Service {
            name,
            path,
            team: team.to_string(),
            created,
            created_on: releases[first_at].0.clone(),
            upgrades,
            conflicted: false,
            ejected,
            edited,
            version: String::new(),
            in_git,
        },
        steps,
    }
}

/// Runs the tool in `dir` on `day`; the exit code, or an error with its stderr.
fn platform(bin: &Path, dir: &Path, day: Date, args: &[&str]) -> Result<i32, String> {
    let out = Command::new(bin)
        .arg("platform")
        .args(args)
        .current_dir(dir)
        .env("CARGO_PLATFORM_TODAY", day.to_string())
        .env_remove("CARGO_PLATFORM_FAULT")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    match out.status.code() {
        Some(code @ (0 | 3)) => Ok(code),
        _ => Err(format!(
            "`cargo platform {}` in {} on {day}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

fn mkdir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        mkdir(parent)?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Builds one repository, its steps in date order, committing after each (an upgrade in a git
/// repository wants a clean tree).
fn build(
    opts: &Options,
    trees: &Path,
    mirrors: &Path,
    repo: &Repo,
) -> Result<Vec<Service>, String> {
    let root = trees.join(&repo.dir);
    if repo.mono {
        write(
            &root.join("Cargo.toml"),
            "[workspace]\nresolver = \"3\"\nmembers = [\"services/*\"]\n",
        )?;
    }
    // Made after the first step (`new` wants a directory that is missing or empty).
    let mut git: Option<git2::Repository> = None;
    let mut services: Vec<Service> = repo.plans.iter().map(|p| p.service.clone()).collect();
    let mut steps: Vec<(Date, usize, &Step)> = repo
        .plans
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.steps.iter().map(move |(d, s)| (*d, i, s)))
        .collect();
    steps.sort_by_key(|(d, i, _)| (*d, *i));
    let mut versions: Vec<String> = vec![String::new(); services.len()];
    let mut applied_upgrades: Vec<Vec<(Date, String)>> = vec![Vec::new(); services.len()];
    for (day, i, step) in &steps {
        let service = &mut services[*i];
        let dir = trees.join(&service.path);
        match step {
            Step::New { version } => {
                let owner = format!("owner={}", service.team);
                let path = dir.display().to_string();
                platform(
                    &opts.bin,
                    trees,
                    *day,
                    &[
                        "new",
                        &service.name,
                        "--yes",
                        "--no-git",
                        "--path",
                        &path,
                        "--set",
                        &owner,
                        "--template-version",
                        version,
                    ],
                )?;
                versions[*i] = version.clone();
            }
            Step::Upgrade { to } if !service.conflicted => {
                let path = dir.display().to_string();
                let mut args = vec!["upgrade", "--path", &path, "--to", to.as_str()];
                if git.is_none() {
                    args.push("--allow-dirty");
                }
                if platform(&opts.bin, trees, *day, &args)? == 3 {
                    service.conflicted = true;
                }
                versions[*i] = to.clone();
                applied_upgrades[*i].push((*day, to.clone()));
            }
            Step::Upgrade { .. } => {}
            Step::Eject { component, reason } => {
                let path = dir.display().to_string();
                platform(
                    &opts.bin,
                    trees,
                    *day,
                    &["eject", component, "--path", &path, "--reason", reason],
                )?;
            }
            Step::Edit { file, line } => {
                let path = dir.join(file);
                let old = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                write(&path, &format!("{old}{line}"))?;
            }
        }
        if repo.git && git.is_none() {
            let mut init = git2::RepositoryInitOptions::new();
            init.initial_head("main");
            git = Some(
                git2::Repository::init_opts(&root, &init)
                    .map_err(|e| format!("git init {}: {e}", root.display()))?,
            );
        }
        if let Some(git) = &git {
            commit(git, *day, &format!("{} on {day}", service.name))?;
        }
    }
    for (i, s) in services.iter_mut().enumerate() {
        s.version = versions[i].clone();
        s.upgrades = std::mem::take(&mut applied_upgrades[i]);
    }
    if git.is_some() {
        mkdir(mirrors)?;
        let mirror = mirrors.join(format!("{}.git", repo.dir));
        // As a mirror is fetched: its objects in one pack (a local clone would hard-link the
        // loose ones, which no fetched mirror has).
        let out = Command::new("git")
            .args(["clone", "--quiet", "--bare", "--no-local"])
            .arg(&root)
            .arg(&mirror)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git clone --bare {}: {}",
                root.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(services)
}

/// Commits the whole work tree, dated at noon UTC on `day`.
fn commit(repo: &git2::Repository, day: Date, message: &str) -> Result<(), String> {
    let fail = |e: git2::Error| format!("commit in {}: {e}", repo.path().display());
    let mut index = repo.index().map_err(fail)?;
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .map_err(fail)?;
    index.update_all(["*"], None).map_err(fail)?;
    index.write().map_err(fail)?;
    let tree = repo
        .find_tree(index.write_tree().map_err(fail)?)
        .map_err(fail)?;
    let seconds = day
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| e.to_string())?
        .timestamp()
        .as_second()
        + 12 * 3600;
    let sig = git2::Signature::new(
        "Fleet Generator",
        "fleet@example.com",
        &git2::Time::new(seconds, 0),
    )
    .map_err(fail)?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .map_err(fail)?;
    Ok(())
}

/// The broken entries, made from copies of the first generated service's manifest.
fn broken(trees: &Path, services: &[Service]) -> Result<Vec<String>, String> {
    let sample = services
        .first()
        .ok_or("no service to copy a manifest from")?;
    let manifest_path = trees.join(&sample.path).join("platform.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
    let mut made = Vec::new();
    let mut entry = |dir: &str, text: &str| -> Result<PathBuf, String> {
        let at = trees.join(dir);
        write(&at.join("platform.toml"), text)?;
        made.push(dir.to_string());
        Ok(at)
    };
    // Cut mid-table: not TOML any more.
    entry(
        "broken-corrupt",
        &manifest[..manifest.len() / 2].replace("[files.", "[files"),
    )?;
    entry(
        "broken-future-schema",
        &manifest.replacen("schema = 2", "schema = 99", 1),
    )?;
    entry(
        "broken-unknown-template",
        &manifest.replacen("template = \"service\"", "template = \"retired\"", 1),
    )?;
    // A service whose recorded Dockerfile cannot be read (a directory stands in its place).
    let unreadable = entry("broken-unreadable", &manifest)?;
    mkdir(&unreadable.join("Dockerfile"))?;
    // A manifest behind a symbolic link, which the fleet never follows.
    let linked = trees.join("broken-symlink");
    mkdir(&linked)?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(&manifest_path, linked.join("platform.toml"))
        .map_err(|e| format!("symlink in {}: {e}", linked.display()))?;
    made.push("broken-symlink".to_string());
    Ok(made)
}

/// `out/fleet.toml`: every mirror at `main`, and with `broken`, a ref that does not exist.
fn fleet_file(opts: &Options, repos: &[Repo]) -> Result<(), String> {
    let mut text =
        String::from("# Generated by benches/fleetgen.rs: every mirror, read at `main`.\n");
    for repo in repos.iter().filter(|r| r.git) {
        text.push_str(&format!(
            "\n[[repository]]\npath = \"mirrors/{}.git\"\nref = \"main\"\n",
            repo.dir
        ));
        if repo.mono {
            text.push_str("services = [\"services/*\"]\n");
        }
    }
    if opts.broken
        && let Some(repo) = repos.iter().find(|r| r.git)
    {
        text.push_str(&format!(
            "\n[[repository]]\npath = \"mirrors/{}.git\"\nref = \"no-such-branch\"\n",
            repo.dir
        ));
    }
    write(&opts.out.join("fleet.toml"), &text)
}

#[cfg(not(test))]
#[derive(clap::Parser)]
/// Builds a generated fleet (see benches/fleetgen.rs).
struct Args {
    /// The cargo-platform binary to build the services with.
    #[arg(long)]
    bin: PathBuf,
    /// The directory to build the fleet in (created; must be empty).
    #[arg(long)]
    out: PathBuf,
    /// How many services.
    #[arg(short = 'n', long, default_value_t = 100)]
    services: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The fleet's today (no step on or after it).
    #[arg(long, default_value = "2027-04-01")]
    today: Date,
    /// Which repositories are git repositories: none, some, all.
    #[arg(long, default_value = "some")]
    git: String,
    /// Add the broken entries.
    #[arg(long)]
    broken: bool,
    /// Repositories built at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
}

#[cfg(not(test))]
fn main() -> std::process::ExitCode {
    use clap::Parser;
    let args = Args::parse();
    let git = match args.git.as_str() {
        "none" => GitShare::None,
        "some" => GitShare::Some,
        "all" => GitShare::All,
        other => {
            eprintln!("error: --git {other}: expected none, some or all");
            return std::process::ExitCode::from(2);
        }
    };
    if std::fs::read_dir(&args.out).is_ok_and(|mut d| d.next().is_some()) {
        eprintln!(
            "error: {} is not empty: pass a new directory",
            args.out.display()
        );
        return std::process::ExitCode::FAILURE;
    }
    let opts = Options {
        bin: args.bin,
        out: args.out,
        services: args.services,
        seed: args.seed,
        today: args.today,
        git,
        broken: args.broken,
        jobs: args.jobs,
    };
    let started = std::time::Instant::now();
    match generate(&opts) {
        Ok(fleet) => {
            eprintln!(
                "generated {} services ({} git repositories, {} broken entries) in {} in {:.1} s",
                fleet.services.len(),
                fleet.git_repositories.len(),
                fleet.broken.len(),
                opts.out.display(),
                started.elapsed().as_secs_f64()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
