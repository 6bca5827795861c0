//! `cargo platform new`: scaffold a service from a template, atomically.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::prompt::InquirePrompter;
use crate::error::{Error, Result};
use crate::manifest::{
    ComponentRecord, ComponentState, Created, FileRecord, History, Manifest, SCHEMA, Source,
};
use crate::report::new::{self as report, NewReport};
use crate::template::answers::{self, Answers, Given, Prompter};
use crate::template::render::{self, FileSet};
use crate::template::{Catalogue, DEFAULT_TEMPLATE, Spec};
use crate::ui::{Format, Printer};
use crate::workspace::{self, Workspace};
use crate::{fsx, git, manifest, names};

/// Create a new service from a template.
///
/// Prompts for every question when run in a terminal (unless --yes); --set and --answers answer
/// questions up front. Everything is rendered in memory, written to a temporary directory beside
/// the target and renamed into place, so a failure leaves nothing behind. Writes platform.toml
/// and makes an initial git commit (not with --no-git, nor inside an existing git work tree,
/// where nothing is added to that repository's index). Inside a cargo workspace the service is
/// added to the root Cargo.toml's [workspace] members, as `cargo new` does (unless a members glob
/// already covers it or `exclude` lists it); that edit is undone if anything fails.
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
    /// Render this released version instead of the newest. A draft release (one still under
    /// construction, marked in `cargo platform templates`) needs --allow-draft as well.
    #[arg(long, value_name = "X.Y.Z")]
    pub template_version: Option<String>,
    /// Allow --template-version to name a draft release (for template authors trying it).
    #[arg(long, env = crate::template::ALLOW_DRAFT_ENV, value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_draft: bool,
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
    /// The cargo workspace the service joins (its root manifest read and its edit checked).
    workspace: Option<Workspace>,
}

pub fn run(args: Args) -> Result<()> {
    let printer = Printer::new(args.format);
    names::validate(&args.name)?;
    // Held until the run ends: a second `new` of the same directory refuses at once.
    let _lock = crate::lock::new_service(args.path.as_deref().unwrap_or(Path::new(&args.name)))?;
    let catalogue = Catalogue::load()?;
    let plan = plan(&args, &catalogue)?;
    let workspace = &plan.workspace;
    let files = render::render(&plan.spec, &plan.name, &plan.answers)?;
    if files.contains_key(manifest::FILE_NAME) {
        bail!(
            "template `{}` renders its own {}, which the tool writes",
            plan.spec.template.name,
            manifest::FILE_NAME
        );
    }
    let manifest = build_manifest(&plan, &files, crate::policy::today()?);
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
    let created = fsx::create_dir_atomically(&plan.target, &to_write, |dir| {
        let commit = match git_plan {
            GitPlan::Init => Some(git::init_and_commit(dir, &to_write, &message)?),
            _ => None,
        };
        // The root manifest's edit is the last step before the rename: undone below on failure.
        workspace.as_ref().map(Workspace::apply).transpose()?;
        Ok(commit)
    });
    let commit = match (created, workspace) {
        (Err(err), Some(ws)) => return Err(undo_workspace(ws, err)),
        (created, _) => created?,
    };
    if let Some(c) = commit.as_ref().filter(|c| !c.author.from_config) {
        printer.warn(format!(
            "git has no user.name/user.email configured; committed as `{} <{}>`. Set them with `git config --global user.name …` and amend if you like.",
            c.author.name, c.author.email
        ));
    }
    let workspace = workspace.as_ref().map(|ws| {
        let cargo_toml = files
            .get(workspace::MANIFEST)
            .map(|f| f.contents.as_slice());
        ws.report(&String::from_utf8_lossy(cargo_toml.unwrap_or_default()))
    });
    printer.report(&report(
        &plan,
        &manifest,
        &git_plan,
        commit.as_ref(),
        workspace,
    ))
}

/// Puts the workspace's root manifest back after `new` failed, and says so if it cannot.
fn undo_workspace(ws: &Workspace, err: Error) -> Error {
    match ws.undo() {
        Ok(()) => err,
        Err(undo) => err.hint(format!(
            "restoring {} failed too ({}): remove `{}` from its [workspace] members",
            ws.manifest.display(),
            undo.message,
            ws.member
        )),
    }
}

enum GitPlan {
    Disabled,
    InsideWorkTree(PathBuf),
    Init,
}

fn plan<'c>(args: &Args, catalogue: &'c Catalogue) -> Result<Plan<'c>> {
    let template = catalogue.get(&args.template)?;
    let release = match &args.template_version {
        Some(v) => template.release_to_render(v, args.allow_draft)?,
        None => template.newest(),
    };
    let spec = template.spec(&release.version)?;
    let mut ejected = Vec::new();
    for component in &args.eject {
        spec.check_ejectable(component)?;
        if !ejected.contains(component) {
            ejected.push(component.clone());
        }
    }
    let target = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    fsx::check_target_free(&target)?;
    // The cargo workspace the service joins, read (and its edit checked) before any question.
    let workspace = workspace::find(&target)?;

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
        workspace,
    })
}

fn build_manifest(plan: &Plan<'_>, files: &FileSet, today: jiff::civil::Date) -> Manifest {
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
                date: ejected.then_some(today),
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
        history: History {
            created: Some(Created {
                date: today,
                template: plan.spec.template.name.clone(),
                version: plan.spec.version.clone(),
                tool_version: Some(env!("CARGO_PKG_VERSION").to_string()),
                source: Source::Recorded,
            }),
            upgrades: Vec::new(),
            adds: Vec::new(),
        },
        read_schema: SCHEMA,
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn report(
    plan: &Plan<'_>,
    manifest: &Manifest,
    git_plan: &GitPlan,
    commit: Option<&git::Commit>,
    workspace: Option<workspace::Report>,
) -> NewReport {
    NewReport {
        name: plan.name.clone(),
        path: plan.target.display().to_string(),
        template: plan.spec.template.name.clone(),
        version: plan.spec.version.to_string(),
        answers: plan
            .answers
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
        components: manifest
            .components
            .iter()
            .map(|(c, record)| (c.clone(), record.state.into()))
            .collect(),
        files: manifest
            .files
            .iter()
            .map(|(p, f)| report::File {
                path: p.clone(),
                component: f.component.clone(),
                mode: f.mode.into(),
                sha256: f.sha256.clone(),
            })
            .collect(),
        git: report::Git {
            initialised: matches!(git_plan, GitPlan::Init) && commit.is_some(),
            commit: commit.map(|c| c.id.clone()),
            author: commit.map(|c| report::GitAuthor {
                name: c.author.name.clone(),
                email: c.author.email.clone(),
                from_config: c.author.from_config,
            }),
            inside_work_tree: match git_plan {
                GitPlan::InsideWorkTree(tree) => Some(tree.display().to_string()),
                _ => None,
            },
        },
        workspace,
    }
}
