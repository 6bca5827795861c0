//! Service names: a valid crate name that is also a DNS label.

use crate::error::{Error, Result};

/// Names cargo or Rust reserve, which would make the generated crate fail to build.
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "try",
    "gen",
    "std",
    "core",
    "alloc",
    "proc-macro",
    "proc_macro",
    "test",
];

/// Checks NAME before anything is written: lowercase letters, digits and `-`, starting with a
/// letter, not ending with `-`, at most 63 characters, not a reserved word.
pub fn validate(name: &str) -> Result<()> {
    let rule = "a service name is 1 to 63 lowercase letters, digits and `-`, starts with a letter and does not end with `-` (a crate name and a DNS label), e.g. `orders` or `billing-api`";
    let problem = if name.is_empty() {
        Some("is empty".to_string())
    } else if name.len() > 63 {
        Some(format!("is {} characters long (at most 63)", name.len()))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("does not start with a lowercase letter".to_string())
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        Some(format!("contains {c:?}"))
    } else if name.ends_with('-') {
        Some("ends with `-`".to_string())
    } else if RESERVED.contains(&name) {
        Some("is a reserved word in Rust or cargo".to_string())
    } else {
        None
    };
    match problem {
        Some(problem) => {
            Err(Error::new(format!("invalid service name {name:?}: it {problem}")).hint(rule))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_crate_names_that_are_dns_labels() {
        for ok in ["orders", "billing-api", "a", "svc2", &"a".repeat(63)] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "..",
            "/",
            "a/b",
            "../x",
            "my service",
            "Orders",
            "2fast",
            "-x",
            "x-",
            "a_b",
            "ä",
            "fn",
            "test",
            &"a".repeat(64),
        ] {
            let err = validate(bad).unwrap_err();
            assert!(
                err.message.contains("invalid service name"),
                "{bad}: {}",
                err.message
            );
            assert!(!err.hints.is_empty());
        }
    }
}
