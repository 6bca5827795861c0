//! Rendering a version's spec with answers into an in-memory file set. No disk IO here.

use std::collections::BTreeMap;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use sha2::{Digest, Sha256};

use super::Spec;
use super::answers::{Answer, Answers};
use super::release::{Mode, Syntax};
use crate::error::{Error, Result};

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub contents: Vec<u8>,
    pub component: String,
    pub mode: Mode,
    /// Written by `new` only (`new_only = true`): upgrades and `add` never add it.
    pub new_only: bool,
}

impl RenderedFile {
    pub fn sha256(&self) -> String {
        sha256_hex(&self.contents)
    }
}

/// Rendered path (with `/` separators) → file. Ordered, so output is deterministic.
pub type FileSet = BTreeMap<String, RenderedFile>;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of a digest (no allocation per byte: `fleet` hashes tens of thousands of files).
pub fn hex(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(digest.len() * 2);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The variables every template sees: the answers, `name`, `crate_name`, `template_version`.
pub fn context(spec: &Spec<'_>, name: &str, answers: &Answers) -> BTreeMap<String, Value> {
    let mut ctx: BTreeMap<String, Value> = answers
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Answer::String(s) => Value::from(s.as_str()),
                Answer::Bool(b) => Value::from(*b),
                Answer::Int(i) => Value::from(*i),
            };
            (k.clone(), value)
        })
        .collect();
    ctx.insert("name".into(), Value::from(name));
    ctx.insert("crate_name".into(), Value::from(name.replace('-', "_")));
    ctx.insert(
        "template_version".into(),
        Value::from(spec.version.to_string()),
    );
    ctx
}

fn environment(syntax: Syntax) -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // Booleans print as Rust and TOML spell them (`true`), not as Python does (`True`).
    env.set_formatter(|out, state, value| {
        if value.kind() == ValueKind::Bool {
            out.write_str(if value.is_true() { "true" } else { "false" })
                .map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    let mut config = SyntaxConfig::builder();
    config
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true);
    if syntax == Syntax::Alt {
        let [block, variable, comment] = delimiters(syntax);
        config
            .block_delimiters(block.0, block.1)
            .variable_delimiters(variable.0, variable.1)
            .comment_delimiters(comment.0, comment.1);
    }
    let config = config
        .build()
        .map_err(|e| Error::new(format!("template syntax: {e}")))?;
    env.set_syntax(config);
    Ok(env)
}

/// Renders every file of `spec` whose `when` holds.
pub fn render(spec: &Spec<'_>, name: &str, answers: &Answers) -> Result<FileSet> {
    let ctx = context(spec, name, answers);
    let default_env = environment(Syntax::Default)?;
    let mut alt_env: Option<Environment<'static>> = None;
    let where_ = |path: &str| {
        format!(
            "template `{}` {} file `{path}`",
            spec.template.name, spec.version
        )
    };
    let mut out = FileSet::new();
    for (path, source) in &spec.files {
        let meta = &source.meta;
        if let Some(when) = &meta.when {
            let expr = default_env
                .compile_expression(when)
                .map_err(|e| Error::new(format!("{}: `when = {when:?}`: {e}", where_(path))))?;
            let holds = expr
                .eval(&ctx)
                .map_err(|e| Error::new(format!("{}: `when = {when:?}`: {e}", where_(path))))?;
            if !holds.is_true() {
                continue;
            }
        }
        let env = match meta.syntax.unwrap_or(Syntax::Default) {
            Syntax::Default => &default_env,
            Syntax::Alt => {
                if alt_env.is_none() {
                    alt_env = Some(environment(Syntax::Alt)?);
                }
                alt_env.as_ref().expect("just set")
            }
        };
        let rendered_path = if path.contains("{{") {
            render_text(&default_env, &format!("{path} (path)"), path, &ctx)
                .map_err(|e| e.context(where_(path)))?
        } else {
            path.clone()
        };
        check_rendered_path(&rendered_path).map_err(|e| e.context(where_(path)))?;
        let contents = if meta.raw {
            source.contents.to_vec()
        } else {
            let text = std::str::from_utf8(source.contents).map_err(|_| {
                Error::new(format!("{}: not UTF-8; mark it `raw = true`", where_(path)))
            })?;
            let syntax = meta.syntax.unwrap_or(Syntax::Default);
            if has_markup(text, syntax) {
                render_text(env, path, text, &ctx)
                    .map_err(|e| e.context(where_(path)))?
                    .into_bytes()
            } else {
                // Nothing to render: the template engine would return the text unchanged.
                source.contents.to_vec()
            }
        };
        let file = RenderedFile {
            contents,
            component: meta.component.clone(),
            mode: meta.mode,
            new_only: meta.new_only,
        };
        if out.insert(rendered_path.clone(), file).is_some() {
            bail!(
                "{}: renders to `{rendered_path}`, which another file also renders to",
                where_(path)
            );
        }
    }
    Ok(out)
}

/// The variables one file of `spec` reads: those of its `when` expression (which switch the file
/// in or out) and those of its path and content (which shape what it holds). Raw files have no
/// content variables. `add` uses this to tell which questions belong to a component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileVariables {
    pub when: std::collections::BTreeSet<String>,
    pub body: std::collections::BTreeSet<String>,
}

/// The variables `path` (an unrendered path of `spec`) reads; see [`FileVariables`].
pub fn file_variables(spec: &Spec<'_>, path: &str) -> Result<FileVariables> {
    let where_ = || {
        format!(
            "template `{}` {} file `{path}`",
            spec.template.name, spec.version
        )
    };
    let source = spec
        .files
        .get(path)
        .ok_or_else(|| Error::new(format!("{}: not in the release", where_())))?;
    let meta = &source.meta;
    let default_env = environment(Syntax::Default)?;
    let mut vars = FileVariables::default();
    if let Some(when) = &meta.when {
        let expr = default_env
            .compile_expression(when)
            .map_err(|e| Error::new(format!("{}: `when = {when:?}`: {e}", where_())))?;
        vars.when.extend(expr.undeclared_variables(false));
    }
    let mut read = |env: &Environment<'static>, text: &str| -> Result<()> {
        let tmpl = env
            .template_from_str(text)
            .map_err(|e| Error::new(format!("{}: {}", where_(), describe(&e))))?;
        vars.body.extend(tmpl.undeclared_variables(false));
        Ok(())
    };
    if path.contains("{{") {
        read(&default_env, path)?;
    }
    if !meta.raw {
        let syntax = meta.syntax.unwrap_or(Syntax::Default);
        if let Ok(text) = std::str::from_utf8(source.contents)
            && has_markup(text, syntax)
        {
            read(&environment(syntax)?, text)?;
        }
    }
    Ok(vars)
}

/// The block, variable and comment delimiters of `syntax` (minijinja's defaults for
/// `Syntax::Default`).
fn delimiters(syntax: Syntax) -> [(&'static str, &'static str); 3] {
    match syntax {
        Syntax::Default => [("{%", "%}"), ("{{", "}}"), ("{#", "#}")],
        Syntax::Alt => [("[%", "%]"), ("[[", "]]"), ("[#", "#]")],
    }
}

/// Whether `text` opens any block, variable or comment of `syntax`.
fn has_markup(text: &str, syntax: Syntax) -> bool {
    delimiters(syntax)
        .iter()
        .any(|(open, _)| text.contains(open))
}

fn render_text(
    env: &Environment<'static>,
    name: &str,
    text: &str,
    ctx: &BTreeMap<String, Value>,
) -> Result<String> {
    env.render_named_str(name, text, ctx)
        .map_err(|e| Error::new(describe(&e)))
}

fn describe(err: &minijinja::Error) -> String {
    match err.line() {
        Some(line) => format!("line {line}: {}", err.kind_and_detail()),
        None => err.kind_and_detail(),
    }
}

trait KindAndDetail {
    fn kind_and_detail(&self) -> String;
}

impl KindAndDetail for minijinja::Error {
    fn kind_and_detail(&self) -> String {
        match self.detail() {
            Some(detail) => format!("{}: {detail}", self.kind()),
            None => self.kind().to_string(),
        }
    }
}

/// A rendered path must stay inside the service: relative, no `..`, no empty segments.
fn check_rendered_path(path: &str) -> Result<()> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        bail!("renders to the unsafe path `{path}`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for p in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a\\b"] {
            assert!(check_rendered_path(p).is_err(), "{p}");
        }
        assert!(check_rendered_path("src/main.rs").is_ok());
    }

    #[test]
    fn strict_undefined_and_trailing_newline() {
        let env = environment(Syntax::Default).unwrap();
        let mut ctx = BTreeMap::new();
        ctx.insert("name".to_string(), Value::from("orders"));
        assert_eq!(
            render_text(&env, "t", "{{ name }}\n", &ctx).unwrap(),
            "orders\n"
        );
        let err = render_text(&env, "t", "{{ nme }}", &ctx).unwrap_err();
        assert!(err.message.contains("undefined"), "{}", err.message);
        let blocks = "a\n{% if name == \"orders\" %}\nb\n{% endif %}\nc\n";
        assert_eq!(render_text(&env, "t", blocks, &ctx).unwrap(), "a\nb\nc\n");
    }

    #[test]
    fn alt_syntax_leaves_braces_alone() {
        let env = environment(Syntax::Alt).unwrap();
        let mut ctx = BTreeMap::new();
        ctx.insert("name".to_string(), Value::from("orders"));
        let text = "{{ $labels.route }} [[ name ]]";
        assert_eq!(
            render_text(&env, "t", text, &ctx).unwrap(),
            "{{ $labels.route }} orders"
        );
    }

    #[test]
    fn booleans_print_lowercase() {
        let env = environment(Syntax::Default).unwrap();
        let mut ctx = BTreeMap::new();
        ctx.insert("on".to_string(), Value::from(true));
        assert_eq!(
            render_text(&env, "t", "{{ on }} {{ not on }}", &ctx).unwrap(),
            "true false"
        );
    }

    #[test]
    fn no_html_or_json_escaping() {
        let env = environment(Syntax::Default).unwrap();
        let mut ctx = BTreeMap::new();
        ctx.insert("name".to_string(), Value::from("a<b>\"c\""));
        assert_eq!(
            render_text(&env, "x.json", "{{ name }}", &ctx).unwrap(),
            "a<b>\"c\""
        );
    }

    /// Text without a delimiter of its syntax skips the engine; this checks that the engine
    /// would indeed have returned such text unchanged (line endings, blank lines, indentation,
    /// no trailing newline) and that any delimiter sends the text through the engine.
    #[test]
    fn text_without_markup_renders_to_itself() {
        let ctx = BTreeMap::new();
        for (syntax, plain, marked) in [
            (
                Syntax::Default,
                "a [[ x ]] [% y %]\r\n\n  indented\t\nno newline",
                "{# c #}",
            ),
            (
                Syntax::Alt,
                "fn main() { {}; }\r\n\n  {{ x }}\n  {% y %}",
                "[# c #]",
            ),
        ] {
            let env = environment(syntax).unwrap();
            assert!(!has_markup(plain, syntax));
            assert_eq!(render_text(&env, "t", plain, &ctx).unwrap(), plain);
            assert!(has_markup(&format!("{plain}{marked}"), syntax));
        }
    }
}
