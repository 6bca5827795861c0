//! The report of `cargo platform new`: the service just created.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::{ComponentState, FileMode};

#[derive(Debug, Clone, Serialize)]
pub struct NewReport {
    pub name: String,
    /// The directory created.
    pub path: String,
    pub template: String,
    pub version: String,
    /// Every answer used to render, by question key (string, boolean or integer).
    pub answers: BTreeMap<String, serde_json::Value>,
    /// Every component of the template, by name.
    pub components: BTreeMap<String, ComponentState>,
    /// Every file the platform wrote (platform.toml aside), by path.
    pub files: Vec<File>,
    pub git: Git,
    /// The cargo workspace the service joined, or `null` outside one.
    pub workspace: Option<crate::workspace::Report>,
}

#[derive(Debug, Clone, Serialize)]
pub struct File {
    pub path: String,
    pub component: String,
    pub mode: FileMode,
    /// SHA-256 of the bytes written, lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Git {
    /// A repository was created in the service with an initial commit.
    pub initialised: bool,
    /// That commit's id, when `initialised`.
    pub commit: Option<String>,
    /// Its author, when `initialised`.
    pub author: Option<GitAuthor>,
    /// The enclosing work tree the service was created in (nothing was added to its index).
    pub inside_work_tree: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GitAuthor {
    pub name: String,
    pub email: String,
    /// Taken from git config; `false` when the tool's fallback identity was used.
    pub from_config: bool,
}

impl super::Report for NewReport {
    const COMMAND: &'static str = "new";

    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let count = |mode: FileMode| self.files.iter().filter(|f| f.mode == mode).count();
        writeln!(
            out,
            "Created {} from template {} {} in {}",
            self.name, self.template, self.version, self.path
        )?;
        writeln!(
            out,
            "  {} files: {} managed, {} structured, {} seeded (yours), plus {}",
            self.files.len(),
            count(FileMode::Managed),
            count(FileMode::Structured),
            count(FileMode::Seeded),
            crate::manifest::FILE_NAME
        )?;
        let components: Vec<String> = self
            .components
            .iter()
            .map(|(c, state)| match state {
                ComponentState::Ejected => format!("{c} (ejected)"),
                ComponentState::Managed => c.clone(),
            })
            .collect();
        writeln!(out, "  components: {}", components.join(", "))?;
        match (&self.git.commit, &self.git.inside_work_tree) {
            (Some(id), _) => writeln!(
                out,
                "  git: new repository, initial commit {}",
                &id[..12.min(id.len())]
            )?,
            (None, Some(tree)) => writeln!(
                out,
                "  git: {} is inside the work tree at {tree}; no repository created and nothing added to its index",
                self.path
            )?,
            (None, None) => writeln!(out, "  git: skipped (--no-git)")?,
        }
        for line in self
            .workspace
            .iter()
            .flat_map(crate::workspace::Report::lines)
        {
            writeln!(out, "  {line}")?;
        }
        writeln!(out)?;
        writeln!(out, "Next steps:")?;
        writeln!(out, "  cd {}", self.path)?;
        writeln!(out, "  cargo run      # start it locally")?;
        writeln!(out, "  cargo test     # run its tests")?;
        if self.files.iter().any(|f| f.path == "docs/platform.md") {
            writeln!(
                out,
                "  docs/platform.md is the platform's reference (config keys, env vars, deploy): upgrades keep it current; README.md is yours."
            )
        } else {
            writeln!(
                out,
                "  Its README.md says which files are yours and how to run, test and deploy it."
            )
        }
    }
}
