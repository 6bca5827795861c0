//! Answers to a template's questions: parsing `--set` and `--answers`, validating. Pure: asking
//! on a terminal goes through the [`Prompter`] the caller passes (`commands::prompt`).

use std::fmt;

use regex::Regex;

use super::release::{Question, QuestionKind};
use crate::error::{Error, Result};

/// A validated answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    String(String),
    Bool(bool),
    Int(i64),
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::String(s) => f.write_str(s),
            Answer::Bool(b) => write!(f, "{b}"),
            Answer::Int(i) => write!(f, "{i}"),
        }
    }
}

impl Answer {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Answer::String(s) => serde_json::Value::from(s.as_str()),
            Answer::Bool(b) => serde_json::Value::from(*b),
            Answer::Int(i) => serde_json::Value::from(*i),
        }
    }

    pub fn to_toml(&self) -> toml_edit::Value {
        match self {
            Answer::String(s) => toml_edit::Value::from(s.as_str()),
            Answer::Bool(b) => toml_edit::Value::from(*b),
            Answer::Int(i) => toml_edit::Value::from(*i),
        }
    }
}

/// Answers in question order.
pub type Answers = Vec<(String, Answer)>;

/// An answer given before rendering, with where it came from (for error messages).
#[derive(Debug, Clone)]
pub struct Given {
    pub key: String,
    pub value: toml::Value,
    pub origin: String,
}

/// Parses `KEY=VALUE` from `--set`. Values stay strings; they are typed against the question.
pub fn parse_set(raw: &str) -> Result<Given> {
    let (key, value) = raw.split_once('=').ok_or_else(|| {
        Error::new(format!("`--set {raw}` is not KEY=VALUE")).hint("write it as --set port=9000")
    })?;
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::new(format!("`--set {raw}` has an empty key"))
            .hint("write it as --set port=9000"));
    }
    Ok(Given {
        key: key.to_string(),
        value: toml::Value::String(value.to_string()),
        origin: format!("--set {raw}"),
    })
}

/// Parses an answers file: a TOML table of `key = value`, or one with an `[answers]` table (so
/// a service's `platform.toml` can seed another service).
pub fn parse_answers_file(text: &str, path: &str) -> Result<Vec<Given>> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| Error::new(format!("answers file {path} is not valid TOML: {e}")))?;
    let table = match table.get("answers") {
        Some(toml::Value::Table(inner)) => inner.clone(),
        _ => table,
    };
    Ok(table
        .into_iter()
        .map(|(key, value)| Given {
            origin: format!("{path}: {key}"),
            key,
            value,
        })
        .collect())
}

/// Asks the user for an answer. Implemented with inquire for terminals, and by tests.
pub trait Prompter {
    fn ask(&mut self, question: &Question, default: Option<&Answer>) -> Result<Answer>;
}

/// Resolves every question: given answers first (later ones win), then the prompter if any,
/// then defaults. Rejects unknown keys and invalid values, naming the key and the valid options.
pub fn resolve(
    questions: &[Question],
    given: &[Given],
    mut prompter: Option<&mut dyn Prompter>,
) -> Result<Answers> {
    for g in given {
        if !questions.iter().any(|q| q.key == g.key) {
            let valid: Vec<&str> = questions.iter().map(|q| q.key.as_str()).collect();
            return Err(
                Error::new(format!("unknown question `{}` (from {})", g.key, g.origin))
                    .hint(format!("valid keys: {}", valid.join(", "))),
            );
        }
    }
    let mut answers = Answers::new();
    for q in questions {
        let given = given.iter().rev().find(|g| g.key == q.key);
        let answer = match given {
            Some(g) => validate(q, &g.value).map_err(|e| e.context(&g.origin))?,
            None => {
                let default = q
                    .default
                    .as_ref()
                    .map(|d| {
                        validate(q, d).map_err(|e| e.context(format!("default of `{}`", q.key)))
                    })
                    .transpose()?;
                match (prompter.as_deref_mut(), default) {
                    (Some(p), default) => p.ask(q, default.as_ref())?,
                    (None, Some(default)) => default,
                    (None, None) => {
                        return Err(Error::new(format!(
                            "question `{}` has no default and was not answered",
                            q.key
                        ))
                        .hint(format!(
                            "answer it with --set {}=<{}> ({})",
                            q.key,
                            q.kind.as_str(),
                            q.help
                        )));
                    }
                }
            }
        };
        answers.push((q.key.clone(), answer));
    }
    Ok(answers)
}

/// Types and checks one value against its question. Strings are accepted for every kind (that
/// is how `--set` passes them).
pub fn validate(q: &Question, value: &toml::Value) -> Result<Answer> {
    let shown = match value {
        toml::Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    };
    let answer = match (q.kind, value) {
        (QuestionKind::Bool, toml::Value::Boolean(b)) => Answer::Bool(*b),
        (QuestionKind::Bool, toml::Value::String(s)) => match s.as_str() {
            "true" | "yes" | "y" | "on" => Answer::Bool(true),
            "false" | "no" | "n" | "off" => Answer::Bool(false),
            _ => {
                return Err(
                    Error::new(format!("`{}` must be true or false, got {shown}", q.key))
                        .hint("valid values: true, false"),
                );
            }
        },
        (QuestionKind::Int, toml::Value::Integer(i)) => Answer::Int(*i),
        (QuestionKind::Int, toml::Value::String(s)) => {
            Answer::Int(s.trim().parse().map_err(|_| {
                Error::new(format!("`{}` must be a whole number, got {shown}", q.key))
                    .hint(range_hint(q))
            })?)
        }
        (QuestionKind::String | QuestionKind::Choice, toml::Value::String(s)) => {
            Answer::String(s.clone())
        }
        _ => {
            let wanted = match q.kind {
                QuestionKind::String => "a string".to_string(),
                QuestionKind::Bool => "true or false".to_string(),
                QuestionKind::Int => "a whole number".to_string(),
                QuestionKind::Choice => format!(
                    "one of {}",
                    q.choices.as_deref().unwrap_or_default().join(", ")
                ),
            };
            return Err(Error::new(format!(
                "`{}` must be {wanted}, got {shown}",
                q.key
            )));
        }
    };
    match (&answer, q.kind) {
        (Answer::Int(i), _)
            if q.min.is_some_and(|min| *i < min) || q.max.is_some_and(|max| *i > max) =>
        {
            return Err(
                Error::new(format!("`{}` = {i} is out of range", q.key)).hint(range_hint(q))
            );
        }
        (Answer::String(s), QuestionKind::Choice) => {
            let choices = q.choices.as_deref().unwrap_or_default();
            if !choices.iter().any(|c| c == s) {
                return Err(
                    Error::new(format!("`{}` = `{s}` is not one of its choices", q.key))
                        .hint(format!("valid values: {}", choices.join(", "))),
                );
            }
        }
        (Answer::String(s), QuestionKind::String) => {
            if let Some(pattern) = &q.pattern {
                let re = Regex::new(pattern).map_err(|e| {
                    Error::new(format!("question `{}` has an invalid pattern: {e}", q.key))
                })?;
                if !re.is_match(s) {
                    return Err(Error::new(format!(
                        "`{}` = `{s}` does not match the pattern {pattern}",
                        q.key
                    ))
                    .hint(q.help.clone()));
                }
            }
        }
        _ => {}
    }
    Ok(answer)
}

fn range_hint(q: &Question) -> String {
    match (q.min, q.max) {
        (Some(min), Some(max)) => format!("valid values: {min}..={max}"),
        (Some(min), None) => format!("valid values: {min} or more"),
        (None, Some(max)) => format!("valid values: {max} or less"),
        (None, None) => "valid values: a whole number".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(key: &str, kind: QuestionKind, default: Option<toml::Value>) -> Question {
        Question {
            key: key.into(),
            kind,
            help: format!("the {key}"),
            default,
            choices: (kind == QuestionKind::Choice).then(|| vec!["memory".into(), "redis".into()]),
            pattern: None,
            min: Some(1),
            max: Some(65535),
        }
    }

    fn questions() -> Vec<Question> {
        vec![
            q("owner", QuestionKind::String, None),
            q("port", QuestionKind::Int, Some(toml::Value::Integer(8080))),
            q(
                "store",
                QuestionKind::Choice,
                Some(toml::Value::String("memory".into())),
            ),
            q(
                "audit",
                QuestionKind::Bool,
                Some(toml::Value::Boolean(false)),
            ),
        ]
    }

    #[test]
    fn defaults_and_set_values_are_typed() {
        let given = vec![
            parse_set("owner=payments").unwrap(),
            parse_set("port=9000").unwrap(),
            parse_set("audit=yes").unwrap(),
        ];
        let answers = resolve(&questions(), &given, None).unwrap();
        assert_eq!(
            answers,
            vec![
                ("owner".into(), Answer::String("payments".into())),
                ("port".into(), Answer::Int(9000)),
                ("store".into(), Answer::String("memory".into())),
                ("audit".into(), Answer::Bool(true)),
            ]
        );
    }

    #[test]
    fn later_given_answers_win() {
        let given = vec![parse_set("owner=a").unwrap(), parse_set("owner=b").unwrap()];
        let answers = resolve(&questions(), &given, None).unwrap();
        assert_eq!(answers[0].1, Answer::String("b".into()));
    }

    #[test]
    fn missing_required_answer_names_the_set_key() {
        let err = resolve(&questions(), &[], None).unwrap_err();
        assert!(
            err.message.contains("`owner` has no default"),
            "{}",
            err.message
        );
        assert!(err.hints[0].contains("--set owner="), "{:?}", err.hints);
    }

    #[test]
    fn unknown_key_lists_valid_keys() {
        let err = resolve(&questions(), &[parse_set("colour=red").unwrap()], None).unwrap_err();
        assert!(err.message.contains("unknown question `colour`"));
        assert_eq!(
            err.hints,
            vec!["valid keys: owner, port, store, audit".to_string()]
        );
    }

    #[test]
    fn invalid_values_name_the_valid_options() {
        let qs = questions();
        let err = validate(&qs[1], &toml::Value::String("eighty".into())).unwrap_err();
        assert!(err.message.contains("whole number"));
        let err = validate(&qs[1], &toml::Value::Integer(70000)).unwrap_err();
        assert_eq!(err.hints, vec!["valid values: 1..=65535".to_string()]);
        let err = validate(&qs[2], &toml::Value::String("mongo".into())).unwrap_err();
        assert_eq!(err.hints, vec!["valid values: memory, redis".to_string()]);
        let err = validate(&qs[3], &toml::Value::String("maybe".into())).unwrap_err();
        assert!(err.message.contains("true or false"));
        let err = validate(&qs[0], &toml::Value::Integer(3)).unwrap_err();
        assert!(err.message.contains("must be a string"));
        let err = validate(
            &q("audit", QuestionKind::Bool, None),
            &toml::Value::Integer(1),
        )
        .unwrap_err();
        assert_eq!(err.message, "`audit` must be true or false, got `1`");
        let err = validate(
            &q("store", QuestionKind::Choice, None),
            &toml::Value::Boolean(true),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "`store` must be one of memory, redis, got `true`"
        );
    }

    #[test]
    fn pattern_is_enforced() {
        let mut owner = q("owner", QuestionKind::String, None);
        owner.pattern = Some("^[a-z][a-z0-9-]*$".into());
        assert!(validate(&owner, &toml::Value::String("team-a".into())).is_ok());
        let err = validate(&owner, &toml::Value::String("Team A".into())).unwrap_err();
        assert!(err.message.contains("does not match"));
    }

    #[test]
    fn answers_file_accepts_flat_or_answers_table() {
        let flat = parse_answers_file("owner = \"x\"\nport = 1", "a.toml").unwrap();
        assert_eq!(flat.len(), 2);
        let nested =
            parse_answers_file("[platform]\nname='x'\n[answers]\nowner = \"x\"", "p.toml").unwrap();
        assert_eq!(nested.len(), 1);
        assert_eq!(nested[0].key, "owner");
        assert!(
            parse_answers_file("owner = ", "bad.toml")
                .unwrap_err()
                .message
                .contains("bad.toml")
        );
    }

    #[test]
    fn set_without_equals_is_rejected() {
        assert!(parse_set("owner").is_err());
        assert!(parse_set("=x").is_err());
        assert_eq!(
            parse_set("k=a=b").unwrap().value,
            toml::Value::String("a=b".into())
        );
    }

    struct Scripted(Vec<&'static str>);
    impl Prompter for Scripted {
        fn ask(&mut self, q: &Question, default: Option<&Answer>) -> Result<Answer> {
            let next = self.0.remove(0);
            if next.is_empty() {
                return Ok(default.cloned().expect("default"));
            }
            validate(q, &toml::Value::String(next.into()))
        }
    }

    #[test]
    fn prompter_is_asked_only_for_unanswered_questions() {
        let mut p = Scripted(vec!["platform", "", "redis"]);
        let answers = resolve(
            &questions(),
            &[parse_set("audit=true").unwrap()],
            Some(&mut p),
        )
        .unwrap();
        assert_eq!(answers[0].1, Answer::String("platform".into()));
        assert_eq!(answers[1].1, Answer::Int(8080));
        assert_eq!(answers[2].1, Answer::String("redis".into()));
        assert_eq!(answers[3].1, Answer::Bool(true));
        assert!(p.0.is_empty());
    }
}
