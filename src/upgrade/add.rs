//! `add`: turning a component, or a choice of one, on after creation. Planned as an upgrade from
//! (the recorded version, the recorded answers) to (the same version, the new answers), through
//! the same per-file merge as `upgrade`. Pure: reads come through [`Disk`].
//!
//! Which questions belong to a component: those its files read. A question in the `when` of one
//! of the component's files *switches* it (files come and go with the answer); a question read
//! by the path or content of one of its files *shapes* it. `--set` takes either; `add COMPONENT`
//! without `--set` turns a switched-off component on through its switching questions.

use std::collections::{BTreeMap, BTreeSet};

use super::conflicts::Style;
use super::files::Planner;
use super::plan::{ConflictStyle, Disk, Plan, globs, merge_renders, recorded_answers};
use super::record::{file_counts, rendered_manifest};
use super::text::Labels;
use crate::error::{Error, Result};
use crate::manifest::{AddEvent, ComponentState, Manifest};
use crate::template::answers::{self, Answer, Answers, Given};
use crate::template::release::{Question, QuestionKind};
use crate::template::render::{self, FileSet};
use crate::template::{Spec, Template};

/// One answer `add` changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub key: String,
    pub from: Answer,
    pub to: Answer,
}

/// What `add` decided from the component and the `--set` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to change: `reason` says why, in a sentence; exit 0, nothing written.
    Unchanged { reason: String },
    /// Render with these answers (every question, in question order).
    Change {
        answers: Answers,
        changed: Vec<Changed>,
    },
}

/// The questions a component's files read.
#[derive(Debug, Clone, Default)]
struct ComponentQuestions {
    /// In a `when` of one of its files: they switch files in or out.
    switches: BTreeSet<String>,
    /// Switching or read by one of its files' path or content.
    all: BTreeSet<String>,
}

/// Decides what `add component --set …` changes for the service of `manifest`, or refuses with an
/// error naming what is valid.
pub fn decide(
    template: &Template,
    manifest: &Manifest,
    component: &str,
    set: &[Given],
) -> Result<Decision> {
    let spec = template.spec(&manifest.version)?;
    check_component(template, &spec, manifest, component)?;
    let questions = component_questions(&spec, component)?;
    let current = answers::resolve(&spec.questions, &recorded_answers(manifest), None)?;
    let render_with = |a: &Answers| render::render(&spec, &manifest.name, a);
    let is_on = |files: &FileSet| files.values().any(|f| f.component == component);

    if set.is_empty() {
        return turn_on(&spec, component, &questions, &current, |a| {
            Ok(is_on(&render_with(a)?))
        });
    }

    let mut next = current.clone();
    for g in set {
        let Some(q) = spec
            .questions
            .iter()
            .find(|q| q.key == g.key && questions.all.contains(&q.key))
        else {
            return Err(not_a_question_of(&spec, component, &questions, g));
        };
        let answer = answers::validate(q, &g.value).map_err(|e| e.context(&g.origin))?;
        put(&mut next, &q.key, answer);
    }
    let changed = changes(&current, &next);
    if changed.is_empty() {
        let shown: Vec<String> = set
            .iter()
            .filter_map(|g| next.iter().find(|(k, _)| *k == g.key))
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        return Ok(Decision::Unchanged {
            reason: format!(
                "nothing to add: the service already has {} (platform.toml [answers])",
                shown.join(", ")
            ),
        });
    }
    if !is_on(&render_with(&next)?) {
        let shown: Vec<String> = changed
            .iter()
            .map(|c| format!("{}={}", c.key, c.to))
            .collect();
        return Err(Error::new(format!(
            "--set {} turns component `{component}` off: `add` only turns components and choices on",
            shown.join(" --set ")
        ))
        .hint(format!(
            "to stop using `{component}`, eject it (`cargo platform eject {component}`) and remove what you do not need"
        )));
    }
    Ok(Decision::Change {
        answers: next,
        changed,
    })
}

/// `add COMPONENT` without `--set`: the one answer of a switching question that turns it on.
fn turn_on(
    spec: &Spec<'_>,
    component: &str,
    questions: &ComponentQuestions,
    current: &Answers,
    on: impl Fn(&Answers) -> Result<bool>,
) -> Result<Decision> {
    let where_ = format!("{} {}", spec.template.name, spec.version);
    if questions.switches.is_empty() {
        return Ok(Decision::Unchanged {
            reason: format!(
                "nothing to add: component `{component}` is always on in {where_} (no question switches its files)"
            ),
        });
    }
    if on(current)? {
        let now: Vec<String> = questions
            .switches
            .iter()
            .filter_map(|k| current.iter().find(|(key, _)| key == k))
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        return Ok(Decision::Unchanged {
            reason: format!(
                "nothing to add: component `{component}` is already on ({}); to change a choice, pass --set KEY=VALUE",
                now.join(", ")
            ),
        });
    }
    // Every answer of a switching question that turns the component on, keeping the others.
    let mut candidates: Vec<(String, Answer)> = Vec::new();
    let mut open: Vec<String> = Vec::new();
    for q in spec
        .questions
        .iter()
        .filter(|q| questions.switches.contains(&q.key))
    {
        let values: Vec<Answer> = match q.kind {
            QuestionKind::Bool => vec![Answer::Bool(true), Answer::Bool(false)],
            QuestionKind::Choice => q
                .choices
                .iter()
                .flatten()
                .map(|c| Answer::String(c.clone()))
                .collect(),
            QuestionKind::String | QuestionKind::Int => {
                open.push(q.key.clone());
                continue;
            }
        };
        for v in values {
            let mut trial = current.clone();
            put(&mut trial, &q.key, v.clone());
            if trial != *current && on(&trial)? {
                candidates.push((q.key.clone(), v));
            }
        }
    }
    match (candidates.as_slice(), open.is_empty()) {
        ([(key, value)], true) => {
            let mut next = current.clone();
            put(&mut next, key, value.clone());
            let changed = changes(current, &next);
            Ok(Decision::Change {
                answers: next,
                changed,
            })
        }
        ([], true) => Err(Error::new(format!(
            "no single answer turns component `{component}` on in {where_}"
        ))
        .hint(format!(
            "set the questions that switch it: {}",
            questions
                .switches
                .iter()
                .map(|k| format!("--set {k}=…"))
                .collect::<Vec<_>>()
                .join(" ")
        ))),
        _ => {
            let mut options: Vec<String> = candidates
                .iter()
                .map(|(k, v)| format!("--set {k}={v}"))
                .collect();
            options.extend(open.iter().map(|k| format!("--set {k}=<value>")));
            Err(Error::new(format!(
                "component `{component}` can be turned on more than one way: say which with --set"
            ))
            .hint(format!("valid: {}", options.join(", "))))
        }
    }
}

/// The component exists at the service's version and is on the golden path.
fn check_component(
    template: &Template,
    spec: &Spec<'_>,
    manifest: &Manifest,
    component: &str,
) -> Result<()> {
    let where_ = format!("{} {}", template.name, manifest.version);
    if !spec.components.contains_key(component) {
        let later = template
            .releases
            .iter()
            .filter(|r| r.version > manifest.version)
            .find(|r| r.meta.components.contains_key(component));
        if let Some(r) = later {
            let draft = if r.is_draft() {
                " --allow-draft (it is a draft)"
            } else {
                ""
            };
            return Err(Error::new(format!(
                "component `{component}` is not in {where_}, the service's release: {} {} brings it",
                template.name, r.version
            ))
            .hint(format!(
                "upgrade first: cargo platform upgrade --to {}{draft}; then run `cargo platform add {component}` again",
                r.version
            )));
        }
        let valid: Vec<&str> = spec.components.keys().map(String::as_str).collect();
        return Err(
            Error::new(format!("unknown component `{component}` in {where_}"))
                .hint(format!("components of {where_}: {}", valid.join(", "))),
        );
    }
    if manifest
        .components
        .get(component)
        .is_some_and(|c| c.state == ComponentState::Ejected)
    {
        return Err(Error::new(format!(
            "component `{component}` is ejected: its files are the team's now, and the platform no longer writes them"
        ))
        .hint(format!(
            "make the change in your copy of `{component}` by hand (`cargo platform status` lists the ejection)"
        )));
    }
    Ok(())
}

/// The questions `component`'s files read, in its `when`s and in their paths and contents.
fn component_questions(spec: &Spec<'_>, component: &str) -> Result<ComponentQuestions> {
    let known: BTreeSet<&str> = spec.questions.iter().map(|q| q.key.as_str()).collect();
    let mut out = ComponentQuestions::default();
    for (path, source) in &spec.files {
        if source.meta.component != component {
            continue;
        }
        let vars = render::file_variables(spec, path)?;
        for v in vars.when.iter().filter(|v| known.contains(v.as_str())) {
            out.switches.insert(v.clone());
            out.all.insert(v.clone());
        }
        out.all
            .extend(vars.body.into_iter().filter(|v| known.contains(v.as_str())));
    }
    Ok(out)
}

fn not_a_question_of(
    spec: &Spec<'_>,
    component: &str,
    questions: &ComponentQuestions,
    g: &Given,
) -> Error {
    let known = spec.questions.iter().any(|q: &Question| q.key == g.key);
    let what = if known {
        format!(
            "`{}` (from {}) is not a question of component `{component}`: none of its files reads it",
            g.key, g.origin
        )
    } else {
        format!(
            "unknown question `{}` (from {}) in {} {}",
            g.key, g.origin, spec.template.name, spec.version
        )
    };
    let hint = if questions.all.is_empty() {
        format!("component `{component}` has no questions to set")
    } else {
        format!(
            "questions of `{component}`: {}",
            questions
                .all
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Error::new(what).hint(hint)
}

fn put(answers: &mut Answers, key: &str, value: Answer) {
    match answers.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => answers.push((key.to_string(), value)),
    }
}

fn changes(before: &Answers, after: &Answers) -> Vec<Changed> {
    after
        .iter()
        .filter_map(|(k, to)| {
            let from = before.iter().find(|(b, _)| b == k).map(|(_, v)| v)?;
            (from != to).then(|| Changed {
                key: k.clone(),
                from: from.clone(),
                to: to.clone(),
            })
        })
        .collect()
}

/// Plans `add`: base = the service's version rendered with its recorded answers (proven by the
/// manifest's hashes), theirs = the same version with `answers`, ours = the disk. The manifest
/// afterwards records the answers, the files and a `[[history.adds]]` entry.
/// What `add` renders: the component asked for, every answer, and those that change.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub component: &'a str,
    pub answers: &'a Answers,
    pub changed: &'a [Changed],
}

/// How `add` writes: as for an upgrade.
#[derive(Debug, Clone)]
pub struct Options {
    pub conflict: ConflictStyle,
    /// Paths never touched (`--exclude`): as for an upgrade, platform.toml keeps what the
    /// platform last wrote there.
    pub exclude: Vec<String>,
    pub today: jiff::civil::Date,
}

pub fn plan(
    template: &Template,
    manifest: &Manifest,
    disk: &dyn Disk,
    request: &Request<'_>,
    opts: &Options,
) -> Result<Plan> {
    let Options {
        conflict,
        ref exclude,
        today,
    } = *opts;
    let Request {
        component,
        answers,
        changed,
    } = *request;
    let version = manifest.version.clone();
    let spec = template.spec(&version)?;
    let old_answers = answers::resolve(&spec.questions, &recorded_answers(manifest), None)?;
    let old = render::render(&spec, &manifest.name, &old_answers)?;
    let new = render::render(&spec, &manifest.name, answers)?;
    let ejected: BTreeSet<String> = manifest
        .components
        .iter()
        .filter(|(_, c)| c.state == ComponentState::Ejected)
        .map(|(n, _)| n.clone())
        .collect();
    let excludes = globs(exclude)?;
    let set: Vec<String> = changed
        .iter()
        .map(|c| format!("{}={}", c.key, c.to))
        .collect();
    let mut planner = Planner {
        disk,
        ejected: &ejected,
        excludes: &excludes,
        edits: &[],
        style: Style {
            conflict,
            labels: Labels {
                ours: "yours".into(),
                theirs: format!(
                    "template {} {version} with {}",
                    template.name,
                    set.join(" ")
                ),
            },
            base: format!("template {} {version}", template.name),
        },
        entries: Vec::new(),
        writes: Vec::new(),
        not_ours: BTreeSet::new(),
    };
    merge_renders(&mut planner, manifest, &old, &new, &BTreeMap::new())?;
    // Same release: the manifest already records every component of it.
    let mut after = rendered_manifest(manifest, &new, &[], answers, &ejected, &[], today, &planner);
    after.history.adds.push(AddEvent {
        date: today,
        version: version.clone(),
        component: component.to_string(),
        set: changed
            .iter()
            .map(|c| (c.key.clone(), c.to.clone()))
            .collect(),
        tool_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        files: file_counts(&planner),
    });
    let Planner {
        entries, writes, ..
    } = planner;
    Ok(Plan {
        from: version.clone(),
        to: version,
        hops: Vec::new(),
        migrations: Vec::new(),
        entries,
        actions: Vec::new(),
        writes,
        manifest: after,
    })
}

#[cfg(test)]
mod tests {
    use include_dir::{Dir, include_dir};
    use semver::Version;

    use super::*;
    use crate::template::Catalogue;

    static FIXTURES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/tests/fixtures/templates");

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_components_questions_are_those_its_files_read() {
        let catalogue = Catalogue::from_dir(&FIXTURES).unwrap();
        let demo = catalogue.get("demo").unwrap();
        let spec = demo.spec(&Version::new(2, 0, 0)).unwrap();
        // src/pg.rs: `when = "store == 'postgres'"`.
        let extra = component_questions(&spec, "extra").unwrap();
        assert_eq!(extra.switches, set(&["store"]));
        assert_eq!(extra.all, set(&["store"]));
        // src/main.rs prints `audit`: read, but no file of core comes and goes with it; `name`
        // and `template_version` are not questions.
        let core = component_questions(&spec, "core").unwrap();
        assert_eq!(core.switches, set(&[]));
        assert_eq!(core.all, set(&["audit"]));
        // src/audit.rs is always there and reads nothing.
        let audit = component_questions(&spec, "audit").unwrap();
        assert!(audit.all.is_empty());
    }

    #[test]
    fn file_variables_reads_when_path_and_alt_syntax_content() {
        let catalogue = Catalogue::from_dir(&FIXTURES).unwrap();
        let demo = catalogue.get("demo").unwrap();
        let spec = demo.spec(&Version::new(1, 0, 0)).unwrap();
        let pg = render::file_variables(&spec, "src/pg.rs").unwrap();
        assert_eq!(pg.when, set(&["store"]));
        let lib = render::file_variables(&spec, "src/{{ crate_name }}.rs").unwrap();
        assert_eq!(lib.body, set(&["crate_name", "name"]));
        // rules.yml uses `[[ ]]`: `{{ $labels.x }}` is not a variable.
        let rules = render::file_variables(&spec, "rules.yml").unwrap();
        assert_eq!(rules.body, set(&["name"]));
        assert!(render::file_variables(&spec, "nope.rs").is_err());
    }
}
