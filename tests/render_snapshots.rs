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

/// Every shipped release is consistent: each file has metadata, each component is known, every
/// `when` evaluates for every choice, and nothing renders a leftover template delimiter.
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
            for (path, source) in &spec.files {
                assert!(
                    spec.components.contains_key(&source.meta.component),
                    "{path}"
                );
            }
        }
    }
}
