//! Build info from `platform.toml`, the record `cargo platform` keeps of this service: the
//! template, its version and the ejected components, compiled in as `PLATFORM_TEMPLATE`,
//! `PLATFORM_TEMPLATE_VERSION` and `PLATFORM_EJECTED` (sorted, comma-joined, empty when none) for
//! the `platform_build_info` gauge on `/metrics` (src/platform/metrics.rs). `upgrade` and `eject`
//! rewrite platform.toml, so the next build carries what they recorded.
//!
//! Managed by the platform.

use std::path::Path;

fn main() {
    let manifest = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("platform.toml");
    println!("cargo::rerun-if-changed={}", manifest.display());
    let info = match std::fs::read_to_string(&manifest) {
        Ok(text) => read(&text).unwrap_or_else(|reason| {
            panic!(
                "{}: {reason}; restore it from git (it is written by cargo platform)",
                manifest.display()
            )
        }),
        Err(e) => panic!(
            "cannot read {}: {e}; it records the service's template version for \
             platform_build_info: restore it from git",
            manifest.display()
        ),
    };
    println!("cargo::rustc-env=PLATFORM_TEMPLATE={}", info.template);
    println!(
        "cargo::rustc-env=PLATFORM_TEMPLATE_VERSION={}",
        info.version
    );
    println!(
        "cargo::rustc-env=PLATFORM_EJECTED={}",
        info.ejected.join(",")
    );
}

struct BuildInfo {
    template: String,
    version: String,
    ejected: Vec<String>,
}

fn read(text: &str) -> Result<BuildInfo, String> {
    let doc: toml::Table = text.parse().map_err(|e| format!("not valid TOML: {e}"))?;
    let platform = doc
        .get("platform")
        .and_then(toml::Value::as_table)
        .ok_or("no [platform] table")?;
    let field = |key: &str| {
        platform
            .get(key)
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
            .ok_or(format!("no [platform] {key}"))
    };
    let mut ejected: Vec<String> = doc
        .get("components")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flatten()
        .filter(|(_, c)| c.get("state").and_then(toml::Value::as_str) == Some("ejected"))
        .map(|(name, _)| name.clone())
        .collect();
    ejected.sort();
    Ok(BuildInfo {
        template: field("template")?,
        version: field("version")?,
        ejected,
    })
}
