//! `cargo platform templates`: the embedded templates, their versions, components and changelogs.

use serde_json::json;

use crate::error::Result;
use crate::template::Catalogue;
use crate::ui::{Format, Printer};

/// List the embedded templates with every released version, its changelog and support window,
/// and the components of each version.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: Args) -> Result<()> {
    let printer = Printer::new(args.format);
    let catalogue = Catalogue::load()?;
    // Resolve every version first, so a broken release fails before anything is printed.
    let mut resolved = Vec::new();
    for template in &catalogue.templates {
        let mut specs = Vec::new();
        for release in template.releases.iter().rev() {
            specs.push((release, template.spec(&release.version)?));
        }
        resolved.push((template, specs));
    }
    let mut out = Vec::new();
    for (template, specs) in resolved {
        let newest = template.newest().version.clone();
        printer.line(format!("{} — {}", template.name, template.description));
        let mut versions = Vec::new();
        for (release, spec) in specs {
            let meta = &release.meta;
            let mut flags = Vec::new();
            if release.version == newest {
                flags.push("newest".to_string());
            }
            if let Some(d) = &meta.support.deprecated {
                flags.push(format!("deprecated {d}"));
            }
            if let Some(d) = &meta.support.end_of_support {
                flags.push(format!("end of support {d}"));
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", flags.join(", "))
            };
            printer.line(format!(
                "  {} ({}){flags} — {}",
                release.version, meta.date, meta.summary
            ));
            for entry in &meta.changelog {
                printer.line(format!("    - {entry}"));
            }
            let components: Vec<String> = spec
                .components
                .iter()
                .map(|(name, c)| {
                    if c.ejectable {
                        name.clone()
                    } else {
                        format!("{name} (not ejectable)")
                    }
                })
                .collect();
            printer.line(format!("    components: {}", components.join(", ")));
            for b in &meta.breaks {
                printer.line(format!("    breaks ejected {}: {}", b.component, b.changed));
            }
            versions.push(json!({
                "version": release.version.to_string(),
                "date": meta.date,
                "summary": meta.summary,
                "changelog": meta.changelog,
                "support": meta.support,
                "newest": release.version == newest,
                "components": spec.components.iter().map(|(name, c)| json!({
                    "name": name, "description": c.description, "ejectable": c.ejectable,
                })).collect::<Vec<_>>(),
                "questions": spec.questions.iter().map(|q| json!({
                    "key": q.key, "type": q.kind.as_str(), "help": q.help,
                    "default": q.default.as_ref().map(|d| serde_json::to_value(d).unwrap_or_default()),
                    "choices": q.choices,
                })).collect::<Vec<_>>(),
                "migrations": meta.migrations,
                "breaks": meta.breaks,
            }));
        }
        out.push(json!({
            "name": template.name,
            "description": template.description,
            "newest": newest.to_string(),
            "versions": versions,
        }));
    }
    printer.json(&json!({ "templates": out }));
    Ok(())
}
