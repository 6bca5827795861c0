//! Asking a template's questions on the terminal (inquire), for `new` when it runs interactively.

use crate::error::{Error, Result};
use crate::template::answers::{Answer, Prompter, validate};
use crate::template::release::{Question, QuestionKind};

/// Prompts on the terminal with inquire.
#[derive(Debug, Default)]
pub struct InquirePrompter;

impl Prompter for InquirePrompter {
    fn ask(&mut self, q: &Question, default: Option<&Answer>) -> Result<Answer> {
        let label = format!("{} ({})", q.help, q.key);
        let cancelled = |e: inquire::InquireError| match e {
            inquire::InquireError::OperationCanceled
            | inquire::InquireError::OperationInterrupted => {
                Error::new("cancelled at the prompt; nothing was written")
            }
            other => {
                Error::new(format!("could not prompt for `{}`: {other}", q.key)).hint(format!(
                    "answer it with --set {}=…, or pass --yes to take the defaults",
                    q.key
                ))
            }
        };
        loop {
            let raw: toml::Value = match q.kind {
                QuestionKind::Bool => {
                    let mut p = inquire::Confirm::new(&label);
                    if let Some(Answer::Bool(b)) = default {
                        p = p.with_default(*b);
                    }
                    toml::Value::Boolean(p.prompt().map_err(cancelled)?)
                }
                QuestionKind::Choice => {
                    let choices = q.choices.clone().unwrap_or_default();
                    let start = default
                        .and_then(|d| choices.iter().position(|c| *c == d.to_string()))
                        .unwrap_or(0);
                    let choice = inquire::Select::new(&label, choices)
                        .with_starting_cursor(start)
                        .prompt()
                        .map_err(cancelled)?;
                    toml::Value::String(choice)
                }
                QuestionKind::String | QuestionKind::Int => {
                    let default_text = default.map(|d| d.to_string());
                    let mut p = inquire::Text::new(&label);
                    if let Some(d) = &default_text {
                        p = p.with_default(d);
                    }
                    toml::Value::String(p.prompt().map_err(cancelled)?)
                }
            };
            match validate(q, &raw) {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    eprintln!("{e}");
                    for h in &e.hints {
                        eprintln!("  hint: {h}");
                    }
                }
            }
        }
    }
}
