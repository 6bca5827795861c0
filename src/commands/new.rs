//! `cargo platform new`: scaffold a service from a template, atomically.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::{Error, Result};
use crate::manifest::{ComponentRecord, ComponentState, FileRecord, Manifest, SCHEMA};
use crate::template::answers::{self, Answers, Given, InquirePrompter, Prompter};
use crate::template::render::{self, FileSet};
use crate::template::{Catalogue, DEFAULT_TEMPLATE, Spec};
use crate::ui::{Format, Printer};
use crate::{fsx, git, manifest, names};

/// Create a new service from a template.
///
/// Prompts for every question when run in a terminal (unless --yes); --set and --answers answer
/// questions up front. Everything is rendered in memory, written to a temporary directory beside
/// the target and renamed into place, so a failure leaves nothing behind. Writes platform.toml
/// and makes an initial git commit (not with --no-git, nor inside an existing git work tree,
/// where nothing is added to that repository's index).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service name: lowercase letters, digits and `-`, starting with a letter, not ending
    /// with `-`, at most 63 characters (a crate name and a DNS label).
    pub name: String,
    /// Directory to create (default: ./NAME). It must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Template to render (see `cargo platform templates`).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TEMPLATE)]
    pub template: String,
    /// Render this released version instead of the newest.
    #[arg(long, value_name = "X.Y.Z")]
    pub template_version: Option<String>,
    /// Answer a question up front (repeatable), e.g. --set port=9000.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Read answers from a TOML file (`key = value`, or an `[answers]` table such as another
    /// service's platform.toml). --set wins over the file.
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    /// Never prompt: take defaults for unanswered questions (a question without a default is then
    /// an error naming its --set key).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Record a component as ejected from the start (repeatable).
    #[arg(long, value_name = "COMPONENT")]
    pub eject: Vec<String>,
    /// Do not initialise a git repository.
    #[arg(long)]
    pub no_git: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// What `new` will do, fully validated before anything is written.
struct Plan<'c> {
    name: String,
    target: PathBuf,
    spec: Spec<'c>,
    answers: Answers,
    ejected: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    let printer = Printer::new(args.format);
    names::validate(&args.name)?;
    // Held until the run ends: a second `new` of the same directory refuses at once.
    let _lock = crate::lock::new_service(args.path.as_deref().unwrap_or(Path::new(&args.name)))?;
    let catalogue = Catalogue::load()?;
    let plan = plan(&args, &catalogue)?;
    let files = render::render(&plan.spec, &plan.name, &plan.answers)?;
    if files.contains_key(manifest::FILE_NAME) {
        bail!(
            "template `{}` renders its own {}, which the tool writes",
            plan.spec.template.name,
            manifest::FILE_NAME
        );
    }
    let manifest = build_manifest(&plan, &files, &crate::policy::today()?.to_string());
    let manifest_text = manifest.to_toml(None)?;
    let mut to_write: Vec<(String, &[u8])> = files
        .iter()
        .map(|(p, f)| (p.clone(), f.contents.as_slice()))
        .collect();
    to_write.push((manifest::FILE_NAME.to_string(), manifest_text.as_bytes()));

    let git_plan = if args.no_git {
        GitPlan::Disabled
    } else if let Some(tree) = git::enclosing_work_tree(&absolute(&plan.target)) {
        GitPlan::InsideWorkTree(tree)
    } else {
        GitPlan::Init
    };
    let message = format!(
        "Scaffold {} from template {} {}\n\nCreated by cargo-platform {}.",
        plan.name,
        plan.spec.template.name,
        plan.spec.version,
        env!("CARGO_PKG_VERSION")
    );
    let commit = fsx::create_dir_atomically(&plan.target, &to_write, |dir| match git_plan {
        GitPlan::Init => git::init_and_commit(dir, &to_write, &message).map(Some),
        _ => Ok(None),
    })?;
    report(
        &printer,
        &plan,
        &files,
        &manifest,
        &git_plan,
        commit.as_ref(),
    );
    Ok(())
}

enum GitPlan {
    Disabled,
    InsideWorkTree(PathBuf),
    Init,
}

fn plan<'c>(args: &Args, catalogue: &'c Catalogue) -> Result<Plan<'c>> {
    let template = catalogue.get(&args.template)?;
    let release = match &args.template_version {
        Some(v) => template.release(v)?,
        None => template.newest(),
    };
    let spec = template.spec(&release.version)?;
    let mut ejected = Vec::new();
    for component in &args.eject {
        check_ejectable(&spec, component)?;
        if !ejected.contains(component) {
            ejected.push(component.clone());
        }
    }
    let target = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    fsx::check_target_free(&target)?;

    let mut given: Vec<Given> = Vec::new();
    if let Some(path) = &args.answers {
        let text = fs_err::read_to_string(path).map_err(|e| {
            Error::new(e.to_string()).hint("pass an existing TOML file to --answers")
        })?;
        given.extend(answers::parse_answers_file(
            &text,
            &path.display().to_string(),
        )?);
    }
    for raw in &args.set {
        given.push(answers::parse_set(raw)?);
    }
    let interactive =
        !args.yes && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut prompter = InquirePrompter;
    let prompter: Option<&mut dyn Prompter> = if interactive {
        Some(&mut prompter)
    } else {
        None
    };
    let answers = answers::resolve(&spec.questions, &given, prompter)?;
    Ok(Plan {
        name: args.name.clone(),
        target,
        spec,
        answers,
        ejected,
    })
}

/// A component name that exists in the spec and may be ejected, or an error listing those that may.
pub fn check_ejectable(spec: &Spec<'_>, component: &str) -> Result<()> {
    let valid: Vec<&str> = spec
        .components
        .iter()
        .filter(|(_, c)| c.ejectable)
        .map(|(n, _)| n.as_str())
        .collect();
    match spec.components.get(component) {
        Some(c) if c.ejectable => Ok(()),
        Some(_) => Err(Error::new(format!(
            "component `{component}` cannot be ejected: every service needs it"
        ))
        .hint(format!("ejectable components: {}", valid.join(", ")))),
        None => Err(Error::new(format!(
            "unknown component `{component}` in template `{}` {}",
            spec.template.name, spec.version
        ))
        .hint(format!("ejectable components: {}", valid.join(", ")))),
    }
}

fn build_manifest(plan: &Plan<'_>, files: &FileSet, today: &str) -> Manifest {
    let today = today.to_string();
    let components: BTreeMap<String, ComponentRecord> = plan
        .spec
        .components
        .keys()
        .map(|name| {
            let ejected = plan.ejected.contains(name);
            let record = ComponentRecord {
                state: if ejected {
                    ComponentState::Ejected
                } else {
                    ComponentState::Managed
                },
                reason: ejected
                    .then(|| "ejected at creation (cargo platform new --eject)".to_string()),
                date: ejected.then(|| today.clone()),
            };
            (name.clone(), record)
        })
        .collect();
    let files = files
        .iter()
        .map(|(path, f)| {
            let record = FileRecord {
                component: f.component.clone(),
                mode: f.mode,
                sha256: f.sha256(),
            };
            (path.clone(), record)
        })
        .collect();
    Manifest {
        schema: SCHEMA,
        template: plan.spec.template.name.clone(),
        version: plan.spec.version.clone(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        name: plan.name.clone(),
        answers: plan.answers.clone(),
        components,
        files,
        migrations: Vec::new(),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn report(
    printer: &Printer,
    plan: &Plan<'_>,
    files: &FileSet,
    manifest: &Manifest,
    git_plan: &GitPlan,
    commit: Option<&git::Commit>,
) {
    if printer.format == Format::Json {
        report_json(printer, plan, manifest, git_plan, commit);
        return;
    }
    let count =
        |mode: crate::template::release::Mode| files.values().filter(|f| f.mode == mode).count();
    use crate::template::release::Mode::{Managed, Seeded, Structured};
    let target = plan.target.display().to_string();
    printer.line(format!(
        "Created {} from template {} {} in {target}",
        plan.name, plan.spec.template.name, plan.spec.version
    ));
    printer.line(format!(
        "  {} files: {} managed, {} structured, {} seeded (yours), plus {}",
        files.len(),
        count(Managed),
        count(Structured),
        count(Seeded),
        manifest::FILE_NAME
    ));
    let components: Vec<String> = plan
        .spec
        .components
        .keys()
        .map(|c| {
            if plan.ejected.contains(c) {
                format!("{c} (ejected)")
            } else {
                c.clone()
            }
        })
        .collect();
    printer.line(format!("  components: {}", components.join(", ")));
    match (git_plan, commit) {
        (GitPlan::Init, Some(c)) => {
            printer.line(format!("  git: new repository, initial commit {}", &c.id[..12.min(c.id.len())]));
            if !c.author.from_config {
                printer.warn(format!(
                    "git has no user.name/user.email configured; committed as `{} <{}>`. Set them with `git config --global user.name …` and amend if you like.",
                    c.author.name, c.author.email
                ));
            }
        }
        (GitPlan::InsideWorkTree(tree), _) => printer.line(format!(
            "  git: {target} is inside the work tree at {}; no repository created and nothing added to its index",
            tree.display()
        )),
        _ => printer.line("  git: skipped (--no-git)"),
    }
    printer.line("");
    printer.line("Next steps:");
    printer.line(format!("  cd {target}"));
    printer.line("  cargo run      # start it locally");
    printer.line("  cargo test     # run its tests");
    printer.line("  Its README.md says which files are yours and how to run, test and deploy it.");
}

fn report_json(
    printer: &Printer,
    plan: &Plan<'_>,
    manifest: &Manifest,
    git_plan: &GitPlan,
    commit: Option<&git::Commit>,
) {
    let target = plan.target.display().to_string();
    let git_json = match (git_plan, commit) {
        (GitPlan::Init, Some(c)) => json!({
            "initialised": true, "commit": c.id,
            "author": { "name": c.author.name, "email": c.author.email, "from_config": c.author.from_config },
        }),
        (GitPlan::InsideWorkTree(tree), _) => {
            json!({ "initialised": false, "inside_work_tree": tree.display().to_string() })
        }
        _ => json!({ "initialised": false }),
    };
    printer.json(&json!({
        "name": plan.name,
        "path": target,
        "template": plan.spec.template.name,
        "version": plan.spec.version.to_string(),
        "answers": plan.answers.iter().map(|(k, v)| (k.clone(), v.to_json())).collect::<serde_json::Map<_, _>>(),
        "components": plan.spec.components.keys().map(|c| {
            let state = if plan.ejected.contains(c) { "ejected" } else { "managed" };
            (c.clone(), json!(state))
        }).collect::<serde_json::Map<_, _>>(),
        "files": manifest.files.iter().map(|(p, f)| json!({
            "path": p, "component": f.component, "mode": f.mode.as_str(), "sha256": f.sha256,
        })).collect::<Vec<_>>(),
        "git": git_json,
    }));
}
