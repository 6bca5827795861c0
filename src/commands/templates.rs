//! `cargo platform templates`: the embedded templates, their versions, components and changelogs.

use crate::error::Result;
use crate::report::templates::{ComponentInfo, TemplateInfo, TemplatesReport, VersionInfo};
use crate::template::Catalogue;
use crate::ui::{Format, Printer};

/// List the embedded templates with every released version, its changelog and support window,
/// and the components of each version. A draft release (under construction) is listed and marked
/// as one; it is never the newest.
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
    let report = TemplatesReport {
        templates: resolved
            .into_iter()
            .map(|(template, specs)| {
                let newest = &template.newest().version;
                TemplateInfo {
                    name: template.name.clone(),
                    description: template.description.clone(),
                    newest: newest.to_string(),
                    versions: specs
                        .into_iter()
                        .map(|(release, spec)| {
                            let components = spec
                                .components
                                .iter()
                                .map(|(name, c)| ComponentInfo {
                                    name: name.clone(),
                                    description: c.description.clone(),
                                    ejectable: c.ejectable,
                                })
                                .collect();
                            VersionInfo::new(
                                release.version.to_string(),
                                &release.meta,
                                &release.version == newest,
                                components,
                                &spec.questions,
                            )
                        })
                        .collect(),
                }
            })
            .collect(),
    };
    printer.report(&report)
}
