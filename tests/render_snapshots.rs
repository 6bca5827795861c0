//! The complete rendered tree of every template version, with default answers and with each
//! choice of every question that changes which files are rendered, as reviewable snapshots.

mod common;

use cargo_platform::template::Catalogue;
use cargo_platform::template::answers::{self, Given};
use cargo_platform::template::release::QuestionKind;
use cargo_platform::template::render::{self, FileSet};

/// Answers for questions without a default, so defaults can apply to the rest.
fn required(key: &str) -> Option<&'static str> {
    match key {
        "owner" => Some("team-a"),
        _ => None,
    }
}

fn show(files: &FileSet) -> String {
    let mut out = String::new();
    out.push_str("## files\n");
    for (path, f) in files {
        out.push_str(&format!("{path}  [{} {}]\n", f.component, f.mode.as_str()));
    }
    for (path, f) in files {
        out.push_str(&format!("\n## {path}\n"));
        match std::str::from_utf8(&f.contents) {
            Ok(text) => out.push_str(text),
            Err(_) => out.push_str(&format!("<binary, sha256 {}>\n", f.sha256())),
        }
    }
    out
}

#[test]
fn every_version_renders_and_matches_its_snapshot() {
    let catalogue = Catalogue::load().expect("embedded templates load");
    let settings = common::settings();
    for template in &catalogue.templates {
        for release in &template.releases {
            let spec = template.spec(&release.version).expect("spec");
            let base: Vec<Given> = spec
                .questions
                .iter()
                .filter(|q| q.default.is_none())
                .map(|q| Given {
                    key: q.key.clone(),
                    value: toml::Value::String(
                        required(&q.key)
                            .expect("a test answer for a required question")
                            .into(),
                    ),
                    origin: "test".into(),
                })
                .collect();
            let resolved = answers::resolve(&spec.questions, &base, None).expect("answers");
            let defaults = render::render(&spec, "orders", &resolved).expect("render");
            let name = format!("render_{}@{}", template.name, release.version);
            settings.bind(|| insta::assert_snapshot!(name.clone(), show(&defaults)));

            for q in &spec.questions {
                let values: Vec<String> = match q.kind {
                    QuestionKind::Choice => q.choices.clone().unwrap_or_default(),
                    QuestionKind::Bool => vec!["true".into(), "false".into()],
                    _ => continue,
                };
                for value in values {
                    let mut given = base.clone();
                    given.push(Given {
                        key: q.key.clone(),
                        value: toml::Value::String(value.clone()),
                        origin: "test".into(),
                    });
                    let resolved =
                        answers::resolve(&spec.questions, &given, None).expect("answers");
                    let files = render::render(&spec, "orders", &resolved).expect("render");
                    let same_paths = files.keys().eq(defaults.keys());
                    if same_paths {
                        continue;
                    }
                    let name = format!(
                        "render_{}@{}_{}={}",
                        template.name, release.version, q.key, value
                    );
                    settings.bind(|| insta::assert_snapshot!(name.clone(), show(&files)));
                }
            }
        }
    }
}

/// Every shipped release is consistent: each file has metadata and renders under the component
/// it names, every component owns a file, every `when` evaluates for every choice, and nothing
/// renders a leftover template delimiter.
#[test]
fn every_release_is_consistent() {
    let catalogue = Catalogue::load().expect("embedded templates load");
    assert!(catalogue.names().contains(&"service"));
    for template in &catalogue.templates {
        for release in &template.releases {
            let spec = template.spec(&release.version).expect("spec");
            assert!(
                !release.meta.changelog.is_empty(),
                "{} {}: changelog",
                template.name,
                release.version
            );
            for date in [
                Some(&release.meta.date),
                release.meta.support.deprecated.as_ref(),
                release.meta.support.end_of_support.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                assert!(
                    jiff::civil::Date::strptime("%Y-%m-%d", date).is_ok(),
                    "{date} is not YYYY-MM-DD"
                );
            }
            let mut rendered_components = std::collections::BTreeSet::new();
            for answers in every_single_choice(&spec) {
                let files = render::render(&spec, "orders", &answers).unwrap_or_else(|e| {
                    panic!(
                        "{} {} with {answers:?}: a `when` or a file does not render: {}",
                        template.name, release.version, e.message
                    )
                });
                for (path, f) in &files {
                    let source = spec
                        .files
                        .iter()
                        .find(|(key, _)| render_path(key) == *path)
                        .map(|(_, s)| s)
                        .unwrap_or_else(|| panic!("{path}: rendered, but no source file"));
                    assert_eq!(
                        f.component, source.meta.component,
                        "{path}: rendered under another component than its metadata says"
                    );
                    rendered_components.insert(f.component.clone());
                    if source.meta.raw {
                        continue;
                    }
                    let text = String::from_utf8_lossy(&f.contents);
                    let open = match source.meta.syntax {
                        Some(cargo_platform::template::release::Syntax::Alt) => ["[[", "[%", "[#"],
                        _ => ["{{", "{%", "{#"],
                    };
                    for delim in open {
                        if let Some(at) = text.find(delim) {
                            let line = text[..at].lines().count().max(1);
                            panic!(
                                "{} {} {path}:{line}: leftover template delimiter `{delim}` (with {answers:?})",
                                template.name, release.version
                            );
                        }
                    }
                }
            }
            for component in spec.components.keys() {
                assert!(
                    rendered_components.contains(component),
                    "{} {}: component `{component}` owns no file in any render",
                    template.name,
                    release.version
                );
            }
        }
    }
}

/// The default answers, then each value of every choice and bool question on its own.
fn every_single_choice(
    spec: &cargo_platform::template::Spec<'_>,
) -> Vec<cargo_platform::template::answers::Answers> {
    let base: Vec<Given> = spec
        .questions
        .iter()
        .filter(|q| q.default.is_none())
        .map(|q| Given {
            key: q.key.clone(),
            value: toml::Value::String(required(&q.key).expect("a test answer").into()),
            origin: "test".into(),
        })
        .collect();
    let mut out = vec![answers::resolve(&spec.questions, &base, None).expect("answers")];
    for q in &spec.questions {
        let values: Vec<String> = match q.kind {
            QuestionKind::Choice => q.choices.clone().unwrap_or_default(),
            QuestionKind::Bool => vec!["true".into(), "false".into()],
            _ => continue,
        };
        for value in values {
            let mut given = base.clone();
            given.push(Given {
                key: q.key.clone(),
                value: toml::Value::String(value),
                origin: "test".into(),
            });
            out.push(answers::resolve(&spec.questions, &given, None).expect("answers"));
        }
    }
    out
}

/// A template path as rendered: `{{ crate_name }}` in paths is the only variable the shipped
/// templates use there.
fn render_path(template_path: &str) -> String {
    template_path.replace("{{ crate_name }}", "orders")
}
