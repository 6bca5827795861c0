//! The one output path: commands print through a `Printer`, never with `println!` directly.

use std::io::{self, Write};

use clap::ValueEnum;

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Text for people.
    #[default]
    Human,
    /// One JSON document, for scripts and CI.
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

    /// A line of human output (suppressed in JSON mode).
    pub fn line(&self, text: impl AsRef<str>) {
        if self.format == Format::Human {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{}", text.as_ref());
        }
    }

    /// A JSON document (only in JSON mode).
    pub fn json(&self, value: &serde_json::Value) {
        if self.format == Format::Json {
            let mut out = io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut out, value);
            let _ = writeln!(out);
        }
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

/// Prints an error the way every command reports one: message, then hints.
pub fn print_error(err: &crate::error::Error) {
    let mut out = io::stderr().lock();
    let _ = writeln!(out, "error: {}", err.message);
    for hint in &err.hints {
        let _ = writeln!(out, "  hint: {hint}");
    }
}
