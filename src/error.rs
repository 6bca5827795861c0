//! The tool's error type: every failure carries what went wrong, a hint on what to do, and an exit code.

use std::fmt;

/// Exit codes of failures (see README "Exit codes"). Outcomes that are not failures — an upgrade
/// that left conflicts (3), a `check` that found the service out of policy (4) — are
/// `commands::ExitStatus`, never errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// 1: bad input, refused precondition, IO error — nothing changed; or the report could not be
    /// written to stdout after the command's work was done (the hint says so).
    Failure,
    /// 141: stdout was closed before the report was written (`… | head`), as for a tool killed
    /// by SIGPIPE; nothing is printed.
    StdoutClosed,
}

impl ExitKind {
    pub fn code(self) -> u8 {
        match self {
            ExitKind::Failure => 1,
            ExitKind::StdoutClosed => 141,
        }
    }
}

/// An error as the user sees it.
#[derive(Debug)]
pub struct Error {
    pub kind: ExitKind,
    pub message: String,
    pub hints: Vec<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure (exit 1) with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            kind: ExitKind::Failure,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    /// Stdout was closed under us: end quietly with exit 141.
    pub fn stdout_closed() -> Self {
        Error {
            kind: ExitKind::StdoutClosed,
            message: "stdout was closed".to_string(),
            hints: Vec::new(),
        }
    }

    /// Adds a line telling the user what to do next.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub fn with_kind(mut self, kind: ExitKind) -> Self {
        self.kind = kind;
        self
    }

    /// Prefixes the message with context ("while rendering X: …").
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    /// fs-err's io errors already name the path they were about.
    fn from(err: std::io::Error) -> Self {
        Error::new(err.to_string())
    }
}

/// Shorthand for `Err(Error::new(format!(..)))`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::new(format!($($arg)*)))
    };
}
