//! `cargo platform completions`: shell completion scripts.

use clap::Args as _;
use clap_complete::Shell;

use std::io::Write as _;

use crate::error::Result;

/// Print a shell completion script.
///
/// The script completes the `cargo-platform` binary, which accepts the same commands as
/// `cargo platform`. Install, e.g. for bash:
/// `cargo platform completions bash > ~/.local/share/bash-completion/completions/cargo-platform`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to generate the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: Args) -> Result<()> {
    let mut cmd = crate::PlatformCli::augment_args(clap::Command::new("cargo-platform"))
        .version(env!("CARGO_PKG_VERSION"));
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "cargo-platform", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(crate::ui::stdout_error)
}
