//! The one output path: commands print through a `Printer`, never with `println!` directly.
//!
//! Stdout carries the command's report (human text or one JSON document); a failed write there
//! is an error, never dropped: a closed pipe (`… | head`) ends the run quietly with exit 141,
//! as for a tool killed by SIGPIPE, and any other write error is reported (exit 1). Stderr
//! carries warnings and notes; a failure to write those has nowhere to be reported, so it is
//! ignored.

use std::io::{self, Write};

use clap::ValueEnum;

use crate::error::{Error, Result};
use crate::report::Report;

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Text for people.
    #[default]
    Human,
    /// One JSON document, for scripts and CI (schema: golden-path.md "Machine-readable output").
    Json,
}

/// Writes results to stdout and diagnostics to stderr.
#[derive(Debug)]
pub struct Printer {
    pub format: Format,
}

impl Printer {
    pub fn new(format: Format) -> Self {
        Printer { format }
    }

    /// Writes a command's report to stdout in the chosen format: its human text, or one JSON
    /// document carrying `"schema"`.
    pub fn report<R: Report>(&self, report: &R) -> Result<()> {
        self.write_stdout(|out| match self.format {
            Format::Human => report.human(out),
            Format::Json => crate::report::write_json(report, out),
        })
    }

    /// A line of human output (suppressed in JSON mode), for commands without a report.
    pub fn line(&self, text: impl AsRef<str>) -> Result<()> {
        if self.format != Format::Human {
            return Ok(());
        }
        self.write_stdout(|out| writeln!(out, "{}", text.as_ref()))
    }

    pub fn write_stdout(&self, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
        let mut out = io::stdout().lock();
        write(&mut out)
            .and_then(|()| out.flush())
            .map_err(stdout_error)
    }

    /// A warning or note on stderr, whatever the format.
    pub fn warn(&self, text: impl AsRef<str>) {
        let _ = writeln!(io::stderr().lock(), "warning: {}", text.as_ref());
    }

    /// A progress note on stderr (human mode only, so JSON stays clean).
    pub fn note(&self, text: impl AsRef<str>) {
        if self.format == Format::Human {
            let _ = writeln!(io::stderr().lock(), "{}", text.as_ref());
        }
    }
}

/// A failed write to stdout: a closed pipe ends the run quietly, anything else is reported.
pub fn stdout_error(err: io::Error) -> Error {
    if err.kind() == io::ErrorKind::BrokenPipe {
        Error::stdout_closed()
    } else {
        Error::new(format!("cannot write the report to stdout: {err}"))
            .hint("only the report was lost: the command itself ran to the end, and what it changed is in place; check where stdout goes (a full disk, a closed file)")
    }
}

/// Prints an error the way every command reports one: message, then hints. A closed stdout is
/// not reported: whoever closed it stopped listening.
pub fn print_error(err: &Error) {
    if err.kind == crate::error::ExitKind::StdoutClosed {
        return;
    }
    let mut out = io::stderr().lock();
    let _ = writeln!(out, "error: {}", err.message);
    for hint in &err.hints {
        let _ = writeln!(out, "  hint: {hint}");
    }
}
