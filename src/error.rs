//! The tool's error type: every failure carries what went wrong, a hint on what to do, and an exit code.

use std::fmt;

/// Exit codes of the public surface (see README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// 1: bad input, refused precondition, IO error — nothing changed.
    Failure,
    /// 3: an upgrade was applied but needs attention: conflicts remain, ejected components need
    /// the team's changes, or `--verify` failed.
    Conflicts,
    /// 4: `check` found the service out of policy.
    OutOfPolicy,
}

impl ExitKind {
    pub fn code(self) -> u8 {
        match self {
            ExitKind::Failure => 1,
            ExitKind::Conflicts => 3,
            ExitKind::OutOfPolicy => 4,
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
