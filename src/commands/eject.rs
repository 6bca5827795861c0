//! `cargo platform eject`: take components off the golden path, on the record.

use std::path::PathBuf;

use crate::error::Result;
use crate::manifest::{self, ComponentRecord, ComponentState};
use crate::service::Service;
use crate::template::Catalogue;
use crate::ui::{Format, Printer};
use crate::{fsx, journal, policy};

/// Take components off the golden path: their files become the team's own, upgrades skip them,
/// and `status` shows them as ejected with the reason and date.
///
/// Records each component as ejected in platform.toml (written atomically, comments kept) and
/// lists the files that are now the team's. Every name is checked before anything is written;
/// a component that is already ejected keeps its original record.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The components to eject (see `cargo platform templates`); `core` cannot be ejected.
    #[arg(required = true, value_name = "COMPONENT")]
    pub components: Vec<String>,
    /// The service directory (default: the nearest directory with platform.toml, upwards).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Why, for the record (shown by `status`).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let printer = Printer::new(Format::Human);
    let root = crate::service::find_root(args.path.as_deref())?;
    let _lock = crate::lock::service(&root)?;
    let service = Service::locate(Some(&root))?;
    journal::check_clear(&service.root)?;
    let catalogue = Catalogue::load()?;
    let template = service.template(&catalogue)?;
    let spec = template.spec(&service.manifest.version)?;
    let today = policy::today()?;

    // Validate every name before touching anything.
    let mut requested: Vec<&str> = Vec::new();
    for name in &args.components {
        spec.check_ejectable(name)?;
        if !requested.contains(&name.as_str()) {
            requested.push(name);
        }
    }
    let reason = args
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());

    let mut manifest = service.manifest.clone();
    let mut newly = Vec::new();
    // Printed after platform.toml is written: a failed write to stdout must not stop the change.
    let mut already = Vec::new();
    for name in requested {
        if let Some(existing) = manifest
            .components
            .get(name)
            .filter(|c| c.state == ComponentState::Ejected)
        {
            let since = existing
                .date
                .map(|d| format!(" on {d}"))
                .unwrap_or_default();
            let why = existing
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            already.push(format!(
                "{name} is already ejected{since}{why}; its record is kept as it was"
            ));
            continue;
        }
        manifest.components.insert(
            name.to_string(),
            ComponentRecord {
                state: ComponentState::Ejected,
                reason: reason.map(str::to_string),
                date: Some(today),
            },
        );
        newly.push(name);
    }
    if !newly.is_empty() {
        manifest.tool_version = env!("CARGO_PKG_VERSION").to_string();
        let text = manifest.to_toml(Some(&service.manifest_text))?;
        fsx::write_file_atomically(&service.root.join(manifest::FILE_NAME), text.as_bytes())?;
    }
    for line in already {
        printer.line(line)?;
    }
    if newly.is_empty() {
        return Ok(());
    }

    for name in &newly {
        let files: Vec<&str> = manifest
            .files
            .iter()
            .filter(|(_, f)| f.component == *name)
            .map(|(p, _)| p.as_str())
            .collect();
        let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
        printer.line(format!(
            "Ejected {name}{why} on {today}: off the golden path, recorded in {}",
            manifest::FILE_NAME
        ))?;
        if files.is_empty() {
            printer.line("  it has no files in this service")?;
        } else {
            let (count, them) = if files.len() == 1 {
                ("1 file is".to_string(), "it")
            } else {
                (format!("{} files are", files.len()), "them")
            };
            printer.line(format!(
                "  its {count} yours now; upgrades will skip {them}:"
            ))?;
            for path in files {
                printer.line(format!("    {path}"))?;
            }
        }
    }
    if reason.is_none() {
        printer.note(
            "note: no --reason given; `cargo platform status` will show the ejection without one",
        );
    }
    printer.line("Commit platform.toml to keep the record.")?;
    Ok(())
}
