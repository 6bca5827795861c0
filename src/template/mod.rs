//! The embedded template catalogue: every template and every release it ever shipped.

pub mod answers;
pub mod frozen;
pub mod release;
pub mod render;

use std::collections::BTreeMap;

use include_dir::{Dir, include_dir};
use semver::Version;
use serde::Deserialize;

use crate::error::{Error, Result};
use release::{ComponentMeta, FileMeta, MigrationMeta, Question, ReleaseMeta};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// For template authors: load templates from this directory instead of the embedded ones, to
/// try a release before it ships in the tool.
pub const TEMPLATE_DIR_ENV: &str = "CARGO_PLATFORM_TEMPLATE_DIR";

/// The template used when `--template` is not given.
pub const DEFAULT_TEMPLATE: &str = "service";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateMeta {
    name: String,
    description: String,
}

/// One template with all of its releases, oldest first.
#[derive(Debug)]
pub struct Template {
    pub name: String,
    pub description: String,
    pub releases: Vec<Release>,
}

/// One release: its metadata and the overlay directory it adds.
#[derive(Debug)]
pub struct Release {
    pub version: Version,
    pub meta: ReleaseMeta,
    pub files: Option<&'static Dir<'static>>,
}

/// Where the content of a file in a version's tree comes from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path under the release's `files/` directory.
    pub template_path: String,
    pub contents: &'static [u8],
    pub meta: FileMeta,
}

/// The effective definition of one version: questions, components and files after overlaying
/// every release up to it.
#[derive(Debug)]
pub struct Spec<'t> {
    pub template: &'t Template,
    pub version: &'t Version,
    pub questions: Vec<Question>,
    pub components: BTreeMap<String, ComponentMeta>,
    /// Unrendered path → where its content comes from.
    pub files: BTreeMap<String, Source>,
}

/// Every embedded template.
#[derive(Debug)]
pub struct Catalogue {
    pub templates: Vec<Template>,
}

impl Catalogue {
    /// Loads the embedded templates. Fails only if an embedded file is malformed, which the test
    /// suite rules out for every shipped release.
    pub fn load() -> Result<Catalogue> {
        match std::env::var_os(TEMPLATE_DIR_ENV) {
            Some(dir) if !dir.is_empty() => {
                let dir = std::path::PathBuf::from(dir);
                let loaded = load_from_disk(&dir)
                    .map_err(|e| e.context(format!("{TEMPLATE_DIR_ENV}={}", dir.display())))?;
                Catalogue::from_dir(loaded)
            }
            _ => Catalogue::from_dir(&TEMPLATES),
        }
    }

    /// Loads the templates in a directory on disk (same layout as `templates/`).
    pub fn from_disk(root: &std::path::Path) -> Result<Catalogue> {
        let loaded = load_from_disk(root)
            .map_err(|e| e.context(format!("templates in {}", root.display())))?;
        Catalogue::from_dir(loaded)
    }

    /// Loads every template below `root` (one directory per template).
    pub fn from_dir(root: &'static Dir<'static>) -> Result<Catalogue> {
        let mut templates = Vec::new();
        for dir in root.dirs() {
            templates.push(load_template(dir)?);
        }
        templates.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Catalogue { templates })
    }

    pub fn names(&self) -> Vec<&str> {
        self.templates.iter().map(|t| t.name.as_str()).collect()
    }

    pub fn get(&self, name: &str) -> Result<&Template> {
        self.templates
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| {
                Error::new(format!("unknown template `{name}`"))
                    .hint(format!("available templates: {}", self.names().join(", ")))
            })
    }
}

/// For template authors: set to `1` to render a draft release (same as `--allow-draft`).
pub const ALLOW_DRAFT_ENV: &str = "CARGO_PLATFORM_ALLOW_DRAFT";

impl Release {
    /// A release under construction (`draft = true`): never a default, rendered only on request.
    pub fn is_draft(&self) -> bool {
        self.meta.draft
    }
}

impl Template {
    /// The newest release that is not a draft: the default of `new` and `upgrade`, and what
    /// `status`, `check`, `fleet` and `templates` call newest.
    pub fn newest(&self) -> &Release {
        self.releases
            .iter()
            .rev()
            .find(|r| !r.is_draft())
            .expect("a template has at least one release that is not a draft (checked at load)")
    }

    /// Every release that is not a draft, oldest first.
    pub fn released(&self) -> impl Iterator<Item = &Release> {
        self.releases.iter().filter(|r| !r.is_draft())
    }

    /// The release with exactly this version, to render for `new --template-version` or
    /// `upgrade --to`: a draft only with `allow_draft` (`--allow-draft`), else an error saying
    /// how to opt in.
    pub fn release_to_render(&self, version: &str, allow_draft: bool) -> Result<&Release> {
        let release = self.release(version)?;
        if release.is_draft() && !allow_draft {
            return Err(Error::new(format!(
                "template `{}` {} is a draft: a release still under construction, which may \
                 change before it is released (a service rendered from it may not upgrade cleanly)",
                self.name, release.version
            ))
            .hint(format!(
                "to try it anyway pass --allow-draft (or set {ALLOW_DRAFT_ENV}=1); the newest \
                 release is {}",
                self.newest().version
            )));
        }
        Ok(release)
    }

    pub fn versions(&self) -> Vec<String> {
        self.releases
            .iter()
            .map(|r| r.version.to_string())
            .collect()
    }

    /// The release with exactly this version, or an error listing the released ones.
    pub fn release(&self, version: &str) -> Result<&Release> {
        let parsed = Version::parse(version).map_err(|e| {
            Error::new(format!("`{version}` is not a version (X.Y.Z): {e}")).hint(format!(
                "released versions of `{}`: {}",
                self.name,
                self.versions_hint()
            ))
        })?;
        self.releases
            .iter()
            .find(|r| r.version == parsed)
            .ok_or_else(|| {
                Error::new(format!("template `{}` has no release {version}", self.name))
                    .hint(format!("released versions: {}", self.versions_hint()))
            })
    }

    /// `1.0.0, 2.0.0`, and the draft if there is one: `1.0.0, 2.0.0; draft: 3.0.0 (needs
    /// --allow-draft)`.
    fn versions_hint(&self) -> String {
        let released: Vec<String> = self.released().map(|r| r.version.to_string()).collect();
        let mut hint = released.join(", ");
        if let Some(draft) = self.releases.iter().find(|r| r.is_draft()) {
            hint.push_str(&format!("; draft: {} (needs --allow-draft)", draft.version));
        }
        hint
    }

    /// The releases after `from` up to and including `to`, oldest first: an upgrade's hops.
    pub fn releases_between<'t>(
        &'t self,
        from: &'t Version,
        to: &'t Version,
    ) -> impl Iterator<Item = &'t Release> + 't {
        self.releases
            .iter()
            .filter(move |r| r.version > *from && r.version <= *to)
    }

    /// Every migration the releases after `from` up to `to` ship, oldest release first, with the
    /// release that ships it. The one walk `upgrade` (what it runs) and `status`/`check` (what is
    /// pending) share.
    pub fn migrations_between<'t>(
        &'t self,
        from: &'t Version,
        to: &'t Version,
    ) -> impl Iterator<Item = (&'t Release, &'t MigrationMeta)> + 't {
        self.releases_between(from, to)
            .flat_map(|r| r.meta.migrations.iter().map(move |m| (r, m)))
    }

    /// The migration with this id, and the release that ships it.
    pub fn migration(&self, id: &str) -> Option<(&Release, &MigrationMeta)> {
        self.releases.iter().find_map(|r| {
            r.meta
                .migrations
                .iter()
                .find(|m| m.id == id)
                .map(|m| (r, m))
        })
    }

    /// Overlays releases oldest-first up to and including `version`.
    pub fn spec(&self, version: &Version) -> Result<Spec<'_>> {
        let upto = self
            .releases
            .iter()
            .position(|r| &r.version == version)
            .ok_or_else(|| {
                Error::new(format!("template `{}` has no release {version}", self.name))
            })?;
        let mut questions: Vec<Question> = Vec::new();
        let mut components = BTreeMap::new();
        let mut files: BTreeMap<String, Source> = BTreeMap::new();
        for release in &self.releases[..=upto] {
            let meta = &release.meta;
            let at = |msg: String| {
                Error::new(format!(
                    "template `{}` release {}: {msg}",
                    self.name, release.version
                ))
            };
            for q in &meta.questions {
                match questions.iter_mut().find(|have| have.key == q.key) {
                    Some(have) => *have = q.clone(),
                    None => questions.push(q.clone()),
                }
            }
            components.extend(meta.components.iter().map(|(k, v)| (k.clone(), v.clone())));
            for path in &meta.deleted {
                if files.remove(path).is_none() {
                    return Err(at(format!(
                        "deletes `{path}`, which the previous release does not have"
                    )));
                }
            }
            for (from, to) in &meta.renamed {
                let source = files.remove(from).ok_or_else(|| {
                    at(format!(
                        "renames `{from}`, which the previous release does not have"
                    ))
                })?;
                files.insert(to.clone(), source);
            }
            if let Some(dir) = release.files {
                for file in all_files(dir) {
                    let rel = relative(dir, file.path());
                    let meta_for = meta
                        .files
                        .get(&rel)
                        .cloned()
                        .or_else(|| files.get(&rel).map(|s| s.meta.clone()))
                        .ok_or_else(|| {
                            at(format!("file `{rel}` has no [files.\"{rel}\"] entry"))
                        })?;
                    files.insert(
                        rel.clone(),
                        Source {
                            template_path: rel,
                            contents: file.contents(),
                            meta: meta_for,
                        },
                    );
                }
            }
            for (path, file_meta) in &meta.files {
                match files.get_mut(path) {
                    Some(source) => source.meta = file_meta.clone(),
                    None => {
                        return Err(at(format!(
                            "[files.\"{path}\"] names a file that is not in the release"
                        )));
                    }
                }
            }
        }
        for (path, source) in &files {
            if source.meta.new_only && source.meta.mode != release::Mode::Seeded {
                return Err(Error::new(format!(
                    "template `{}` {version}: [files.\"{path}\"] new_only = true, but its mode is not `seeded`",
                    self.name
                ))
                .hint("only a seeded file can be left out of upgrades: set mode = \"seeded\" or drop new_only"));
            }
            if !components.contains_key(&source.meta.component) {
                return Err(Error::new(format!(
                    "template `{}` {version}: file `{path}` belongs to unknown component `{}`",
                    self.name, source.meta.component
                )));
            }
        }
        Ok(Spec {
            template: self,
            version: &self.releases[upto].version,
            questions,
            components,
            files,
        })
    }
}

impl Spec<'_> {
    /// A component name that exists in this version and may be ejected, or an error listing
    /// those that may.
    pub fn check_ejectable(&self, component: &str) -> Result<()> {
        let valid: Vec<&str> = self
            .components
            .iter()
            .filter(|(_, c)| c.ejectable)
            .map(|(n, _)| n.as_str())
            .collect();
        match self.components.get(component) {
            Some(c) if c.ejectable => Ok(()),
            Some(_) => Err(Error::new(format!(
                "component `{component}` cannot be ejected: every service needs it"
            ))
            .hint(format!("ejectable components: {}", valid.join(", ")))),
            None => Err(Error::new(format!(
                "unknown component `{component}` in template `{}` {}",
                self.template.name, self.version
            ))
            .hint(format!("ejectable components: {}", valid.join(", ")))),
        }
    }
}

fn load_template(dir: &'static Dir<'static>) -> Result<Template> {
    let dir_name = dir.path().to_string_lossy().into_owned();
    let meta_file = dir
        .get_file(dir.path().join("template.toml"))
        .ok_or_else(|| {
            Error::new(format!(
                "embedded template `{dir_name}` has no template.toml"
            ))
        })?;
    let meta: TemplateMeta =
        parse_toml(meta_file.contents(), &format!("{dir_name}/template.toml"))?;
    if meta.name != dir_name {
        bail!(
            "embedded template `{dir_name}`: template.toml names it `{}`",
            meta.name
        );
    }
    let mut releases = Vec::new();
    for release_dir in dir.dirs() {
        let version_str = relative(dir, release_dir.path());
        let where_ = format!("{dir_name}/{version_str}/release.toml");
        let file = release_dir
            .get_file(release_dir.path().join("release.toml"))
            .ok_or_else(|| Error::new(format!("embedded release `{where_}` is missing")))?;
        let meta: ReleaseMeta = parse_toml(file.contents(), &where_)?;
        let version = Version::parse(&version_str)
            .map_err(|e| Error::new(format!("`{dir_name}/{version_str}` is not a version: {e}")))?;
        if meta.version != version_str {
            bail!(
                "{where_}: version `{}` does not match its directory",
                meta.version
            );
        }
        for m in &meta.migrations {
            for release::Edit::RenameKey { files, .. } in &m.edits {
                if let Err(e) = release::path_glob(files) {
                    bail!(
                        "{where_}: migration `{}`: files `{files}` is not a valid glob: {e}",
                        m.id
                    );
                }
            }
        }
        releases.push(Release {
            version,
            meta,
            files: release_dir.get_dir(release_dir.path().join("files")),
        });
    }
    if releases.is_empty() {
        bail!("embedded template `{dir_name}` has no release");
    }
    releases.sort_by(|a, b| a.version.cmp(&b.version));
    check_drafts(&dir_name, &releases)?;
    check_breaks(&dir_name, &releases)?;
    Ok(Template {
        name: meta.name,
        description: meta.description,
        releases,
    })
}

/// Only the newest release may be a draft (a draft between two releases would be a hop of
/// every upgrade through it), and one release must not be: the default of `new` and `upgrade`.
fn check_drafts(dir_name: &str, releases: &[Release]) -> Result<()> {
    let Some((newest, older)) = releases.split_last() else {
        return Ok(());
    };
    if let Some(draft) = older.iter().find(|r| r.is_draft()) {
        bail!(
            "{dir_name}/{}/release.toml: `draft = true`, but only the newest release ({}) may be \
             a draft; release {} (remove `draft = true` and record it in releases.lock) or make \
             it the newest",
            draft.version,
            newest.version,
            draft.version
        );
    }
    if older.is_empty() && newest.is_draft() {
        bail!(
            "{dir_name}/{}/release.toml: `draft = true` on the template's only release; a \
             template needs one released version (remove `draft = true`)",
            newest.version
        );
    }
    Ok(())
}

/// Every `[[breaks]]` entry names a component that exists at its release and can be ejected:
/// a misspelt one would never be reported to the teams it is for.
fn check_breaks(dir_name: &str, releases: &[Release]) -> Result<()> {
    let mut components: BTreeMap<&str, &ComponentMeta> = BTreeMap::new();
    for release in releases {
        components.extend(release.meta.components.iter().map(|(k, v)| (k.as_str(), v)));
        for (i, b) in release.meta.breaks.iter().enumerate() {
            let where_ = format!(
                "{dir_name}/{}/release.toml: breaks[{i}].component",
                release.version
            );
            match components.get(b.component.as_str()) {
                None => bail!(
                    "{where_}: unknown component `{}` (components at this release: {})",
                    b.component,
                    components.keys().copied().collect::<Vec<_>>().join(", ")
                ),
                Some(meta) if !meta.ejectable => bail!(
                    "{where_}: component `{}` cannot be ejected, so no team has a copy to break",
                    b.component
                ),
                Some(_) => {}
            }
            if b.changed.trim().is_empty() || b.action.trim().is_empty() {
                bail!(
                    "{where_} `{}`: `changed` and `action` must say something",
                    b.component
                );
            }
        }
    }
    Ok(())
}

/// Reads a template tree from disk into the same shape `include_dir!` embeds. The tree lives for
/// the rest of the process (it is leaked on purpose: the CLI runs one command and exits).
fn load_from_disk(root: &std::path::Path) -> Result<&'static Dir<'static>> {
    fn walk(abs: &std::path::Path, rel: &std::path::Path) -> Result<Dir<'static>> {
        let mut entries = Vec::new();
        let mut children: Vec<_> = fs_err::read_dir(abs)?.collect::<std::result::Result<_, _>>()?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let child_rel = rel.join(child.file_name());
            let leaked_path: &'static str =
                Box::leak(child_rel.to_string_lossy().into_owned().into_boxed_str());
            let kind = child.file_type()?;
            if kind.is_dir() {
                let sub = walk(&child.path(), &child_rel)?;
                entries.push(include_dir::DirEntry::Dir(sub));
            } else if kind.is_file() {
                let bytes: &'static [u8] =
                    Box::leak(fs_err::read(child.path())?.into_boxed_slice());
                entries.push(include_dir::DirEntry::File(include_dir::File::new(
                    leaked_path,
                    bytes,
                )));
            }
        }
        let path: &'static str = Box::leak(rel.to_string_lossy().into_owned().into_boxed_str());
        Ok(Dir::new(path, Box::leak(entries.into_boxed_slice())))
    }
    if !root.is_dir() {
        bail!("not a directory");
    }
    Ok(Box::leak(Box::new(walk(root, std::path::Path::new(""))?)))
}

fn parse_toml<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| Error::new(format!("{what} is not UTF-8")))?;
    toml::from_str(text).map_err(|e| Error::new(format!("{what}: {e}")))
}

/// Every file below `dir`, depth first.
fn all_files(dir: &'static Dir<'static>) -> Vec<&'static include_dir::File<'static>> {
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        out.extend(d.files());
        stack.extend(d.dirs());
    }
    out
}

/// `path` relative to `dir`, with `/` separators.
fn relative(dir: &Dir<'_>, path: &std::path::Path) -> String {
    let rel = path.strip_prefix(dir.path()).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::answers::{Answer, Answers};
    use super::*;

    static FIXTURES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/tests/fixtures/templates");

    fn demo() -> Template {
        Catalogue::from_dir(&FIXTURES).unwrap().templates.remove(0)
    }

    fn render(t: &Template, version: &str, answers: Answers) -> render::FileSet {
        let spec = t.spec(&Version::parse(version).unwrap()).unwrap();
        render::render(&spec, "my-svc", &answers).unwrap()
    }

    fn store(s: &str) -> (String, Answer) {
        ("store".into(), Answer::String(s.into()))
    }

    #[test]
    fn renders_paths_conditions_and_alt_syntax() {
        let t = demo();
        assert_eq!(t.versions(), vec!["1.0.0", "2.0.0"]);
        let files = render(&t, "1.0.0", vec![store("memory")]);
        let paths: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            vec![
                "Cargo.toml",
                "README.md",
                "config/default.toml",
                "gone.txt",
                "old.txt",
                "rules.yml",
                "src/main.rs",
                "src/my_svc.rs"
            ]
        );
        assert_eq!(
            files["src/main.rs"].contents,
            b"fn main() {\n    println!(\"my-svc v1.0.0\");\n}\n"
        );
        assert_eq!(
            files["rules.yml"].contents,
            b"expr: {{ $labels.x }} for my-svc\n"
        );
        assert_eq!(files["README.md"].mode, release::Mode::Seeded);
        let pg = render(&t, "1.0.0", vec![store("postgres")]);
        assert_eq!(pg["src/pg.rs"].contents, b"// postgres store\n");
    }

    #[test]
    fn overlays_deletes_renames_and_metadata() {
        let t = demo();
        let spec = t.spec(&Version::new(2, 0, 0)).unwrap();
        assert_eq!(
            spec.questions
                .iter()
                .map(|q| q.key.as_str())
                .collect::<Vec<_>>(),
            vec!["store", "audit"]
        );
        assert!(spec.components.contains_key("audit"));
        let files = render(
            &t,
            "2.0.0",
            vec![store("memory"), ("audit".into(), Answer::Bool(true))],
        );
        assert!(!files.contains_key("gone.txt"));
        assert!(!files.contains_key("old.txt"));
        assert_eq!(
            files["new.txt"].contents, b"old\n",
            "a renamed file keeps its content"
        );
        assert_eq!(files["src/audit.rs"].component, "audit");
        assert_eq!(
            files["README.md"].component, "extra",
            "metadata-only change applies"
        );
        assert_eq!(
            files["src/main.rs"].contents,
            b"fn main() {\n    println!(\"my-svc v2.0.0 audit=true\");\n}\n"
        );
        assert_eq!(t.releases[1].meta.migrations[0].id, "demo-2.0.0-rename-key");
    }

    #[test]
    fn old_versions_render_exactly_as_released() {
        let t = demo();
        let a = render(&t, "1.0.0", vec![store("memory")]);
        let b = render(&t, "1.0.0", vec![store("memory")]);
        assert_eq!(a, b);
        assert!(t.release("3.0.0").unwrap_err().hints[0].contains("1.0.0, 2.0.0"));
        assert!(
            t.release("one")
                .unwrap_err()
                .message
                .contains("not a version")
        );
    }

    fn release(version: &str, toml_text: &str) -> Release {
        Release {
            version: Version::parse(version).unwrap(),
            meta: toml::from_str(toml_text).unwrap(),
            files: None,
        }
    }

    const V1: &str = "version = \"1.0.0\"\ndate = \"2026-01-01\"\nsummary = \"s\"\n\
        [components.core]\ndescription = \"c\"\nejectable = false\n\
        [components.auth]\ndescription = \"a\"\n";

    #[test]
    fn breaks_must_name_an_ejectable_component_known_at_their_release() {
        let with_break = |component: &str| {
            format!(
                "version = \"2.0.0\"\ndate = \"2026-02-01\"\nsummary = \"s\"\n\
                 [[breaks]]\ncomponent = \"{component}\"\nchanged = \"x\"\naction = \"y\"\n"
            )
        };
        let ok = [release("1.0.0", V1), release("2.0.0", &with_break("auth"))];
        check_breaks("t", &ok).unwrap();
        assert_eq!(ok[1].meta.breaks[0].component, "auth");

        let typo = [release("1.0.0", V1), release("2.0.0", &with_break("auht"))];
        let err = check_breaks("t", &typo).unwrap_err().message;
        assert_eq!(
            err,
            "t/2.0.0/release.toml: breaks[0].component: unknown component `auht` (components at this release: auth, core)"
        );
        let core = [release("1.0.0", V1), release("2.0.0", &with_break("core"))];
        assert!(
            check_breaks("t", &core)
                .unwrap_err()
                .message
                .contains("component `core` cannot be ejected")
        );
        // An unknown key in a break is refused by the schema, naming it.
        let bad: Result<ReleaseMeta, _> = toml::from_str(
            "version = \"2.0.0\"\ndate = \"d\"\nsummary = \"s\"\n\
             [[breaks]]\ncomponent = \"auth\"\nchanged = \"x\"\naction = \"y\"\nwhy = \"z\"\n",
        );
        assert!(bad.unwrap_err().to_string().contains("unknown field `why`"));
    }

    fn draft(version: &str) -> Release {
        release(
            version,
            &format!("version = \"{version}\"\ndate = \"d\"\nsummary = \"s\"\ndraft = true\n"),
        )
    }

    #[test]
    fn a_draft_is_never_the_newest_and_renders_only_on_request() {
        let t = Template {
            name: "t".into(),
            description: "d".into(),
            releases: vec![release("1.0.0", V1), draft("2.0.0")],
        };
        check_drafts("t", &t.releases).unwrap();
        assert_eq!(t.newest().version, Version::new(1, 0, 0));
        assert_eq!(
            t.released()
                .map(|r| r.version.to_string())
                .collect::<Vec<_>>(),
            vec!["1.0.0"]
        );
        let err = t.release_to_render("2.0.0", false).unwrap_err();
        assert_eq!(
            err.message,
            "template `t` 2.0.0 is a draft: a release still under construction, which may change \
             before it is released (a service rendered from it may not upgrade cleanly)"
        );
        assert_eq!(
            err.hints,
            vec![
                "to try it anyway pass --allow-draft (or set CARGO_PLATFORM_ALLOW_DRAFT=1); the \
                 newest release is 1.0.0"
            ]
        );
        assert_eq!(
            t.release_to_render("2.0.0", true).unwrap().version,
            Version::new(2, 0, 0)
        );
        assert_eq!(
            t.release_to_render("1.0.0", false).unwrap().version,
            Version::new(1, 0, 0)
        );
        assert_eq!(
            t.release("9.9.9").unwrap_err().hints,
            vec!["released versions: 1.0.0; draft: 2.0.0 (needs --allow-draft)"]
        );
    }

    #[test]
    fn only_the_newest_release_may_be_a_draft() {
        let err = check_drafts("t", &[release("1.0.0", V1), draft("2.0.0"), draft("3.0.0")])
            .unwrap_err()
            .message;
        assert_eq!(
            err,
            "t/2.0.0/release.toml: `draft = true`, but only the newest release (3.0.0) may be a \
             draft; release 2.0.0 (remove `draft = true` and record it in releases.lock) or make \
             it the newest"
        );
        let only = check_drafts("t", &[draft("1.0.0")]).unwrap_err().message;
        assert!(only.contains("on the template's only release"), "{only}");
    }

    #[test]
    fn shipped_breaks_name_real_components() {
        let catalogue = Catalogue::from_dir(&TEMPLATES).unwrap();
        let service = catalogue.get("service").unwrap();
        let v2 = service.release("2.0.0").unwrap();
        assert!(v2.meta.breaks.iter().any(|b| b.component == "auth"));
    }
}
