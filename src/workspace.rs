//! The cargo workspace around a new service: found as cargo finds it, and joined as `cargo new`
//! joins it (the service added to `[workspace] members`, the root manifest's formatting,
//! comments and profiles kept).

use std::cell::Cell;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use toml_edit::{Array, DocumentMut, Item, Value};

use crate::error::{Error, Result};
use crate::fsx;

/// The manifest file cargo reads.
pub const MANIFEST: &str = "Cargo.toml";

/// How the new service stands in the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// Not listed yet: `new` adds it to `[workspace] members`.
    Added,
    /// Already a member through this `members` entry (a path or a glob); the root is untouched.
    Listed { pattern: String },
    /// Under a path in `[workspace] exclude`: the service is a workspace of its own.
    Excluded,
}

/// The workspace that will hold a new service, and the edit its root manifest needs.
#[derive(Debug)]
pub struct Workspace {
    /// The workspace's root manifest.
    pub manifest: PathBuf,
    /// The service's directory relative to the workspace root, with `/` separators.
    pub member: String,
    pub membership: Membership,
    /// A virtual workspace without `resolver`: cargo falls back to resolver 1 and warns.
    pub resolver_missing: bool,
    original: String,
    edited: Option<String>,
    written: Cell<bool>,
}

/// The workspace that a package at `service_dir` (which need not exist yet) would belong to,
/// found as cargo finds it: the nearest ancestor whose Cargo.toml has a `[workspace]` table that
/// does not exclude the path. When every such workspace excludes it, the nearest one is returned
/// as [`Membership::Excluded`]; `None` when there is no workspace above.
pub fn find(service_dir: &Path) -> Result<Option<Workspace>> {
    let dir = normalize(
        &std::path::absolute(service_dir)
            .map_err(|e| Error::new(format!("cannot resolve {}: {e}", service_dir.display())))?,
    );
    let mut excluded_by = None;
    for root in dir.ancestors().skip(1) {
        let manifest = root.join(MANIFEST);
        if !manifest.is_file() {
            continue;
        }
        let unreadable = |what: String| {
            Error::new(format!("{}: {what}", manifest.display())).hint(format!(
                "cargo reads this file for any package below {}: fix it, or create the service elsewhere with --path",
                root.display()
            ))
        };
        let text = fs_err::read_to_string(&manifest)?;
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            unreadable(format!("not valid TOML: {}", e.message()))
        })?;
        let Some(table) = doc.get("workspace") else {
            continue;
        };
        if !table.is_table_like() {
            return Err(unreadable("`workspace` is not a table".into()));
        }
        let member = relative(root, &dir);
        let members = strings(table.get("members"), "workspace.members").map_err(unreadable)?;
        let exclude = strings(table.get("exclude"), "workspace.exclude").map_err(unreadable)?;
        // The `members` entry that covers the path: a literal path before a glob, because
        // cargo lets `exclude` win over a glob but not over a literal path.
        let mut listed: Option<&String> = None;
        let is_glob = |p: &str| p.contains(['*', '?', '[', ']']);
        for pattern in &members {
            let full = relative(root, &normalize(&root.join(pattern)));
            let glob = globset::GlobBuilder::new(&full)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    unreadable(format!("workspace.members: invalid glob `{pattern}`: {e}"))
                })?;
            if glob.compile_matcher().is_match(&member) {
                if listed.is_none() || !is_glob(pattern) {
                    listed = Some(pattern);
                }
                if !is_glob(pattern) {
                    break;
                }
            }
        }
        let listed = listed.cloned();
        let literal = listed.as_deref().is_some_and(|p| !is_glob(p));
        let excluded = !literal
            && exclude
                .iter()
                .any(|ex| dir.starts_with(normalize(&root.join(ex))));
        let resolver_missing = doc.get("package").is_none() && table.get("resolver").is_none();
        let found = |membership, edited| Workspace {
            manifest: manifest.clone(),
            member: member.clone(),
            membership,
            resolver_missing,
            original: text.clone(),
            edited,
            written: Cell::new(false),
        };
        if excluded {
            excluded_by.get_or_insert_with(|| found(Membership::Excluded, None));
            continue;
        }
        return Ok(Some(match listed {
            Some(pattern) => found(Membership::Listed { pattern }, None),
            None => {
                let edited = add_member(&text, &member).map_err(unreadable)?;
                found(Membership::Added, Some(edited))
            }
        }));
    }
    Ok(excluded_by)
}

impl Workspace {
    /// Writes the root manifest with the new member (atomically), if it needs it. Refuses when
    /// the file changed since [`find`] read it.
    pub fn apply(&self) -> Result<()> {
        let Some(edited) = &self.edited else {
            return Ok(());
        };
        let now = fs_err::read_to_string(&self.manifest)?;
        if now != self.original {
            return Err(Error::new(format!(
                "{} changed while the service was being created",
                self.manifest.display()
            ))
            .hint("run the command again"));
        }
        fsx::write_file_atomically(&self.manifest, edited.as_bytes())?;
        self.written.set(true);
        fsx::fault("new:workspace")
    }

    /// Puts the root manifest back as it was, if [`Workspace::apply`] changed it.
    pub fn undo(&self) -> Result<()> {
        if self.written.get() {
            fsx::write_file_atomically(&self.manifest, self.original.as_bytes())?;
            self.written.set(false);
        }
        Ok(())
    }

    /// What `new` reports about the workspace, given the service's rendered Cargo.toml.
    pub fn report(&self, service_cargo_toml: &str) -> Report {
        let root = self.manifest.display().to_string();
        let mut notes = Vec::new();
        if self.membership != Membership::Excluded {
            for profile in profiles(service_cargo_toml) {
                notes.push(format!(
                    "cargo ignores [profile.{profile}] in a member's Cargo.toml (and warns that profiles for the non root package will be ignored): profiles belong in {root}, which was left as it is; copy the table there if the whole workspace should build that way (deleting it from the service is a local edit that upgrades keep)"
                ));
            }
            if self.resolver_missing {
                notes.push(format!(
                    "{root} sets no `resolver` in [workspace]: cargo then uses resolver 1 and warns; the service is on edition 2024, so add `resolver = \"3\"` there"
                ));
            }
        }
        Report {
            root,
            member: self.member.clone(),
            membership: self.membership.clone(),
            notes,
        }
    }
}

/// The workspace part of `new`'s report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The workspace's root manifest.
    pub root: String,
    /// The service's directory relative to the workspace root.
    pub member: String,
    pub membership: Membership,
    pub notes: Vec<String>,
}

/// As JSON: `membership` is `added`, `listed` or `excluded`, and `pattern` is always present
/// (`null` unless `listed`), so every documented field is there in every report.
impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            root: &'a str,
            member: &'a str,
            membership: &'static str,
            pattern: Option<&'a str>,
            notes: &'a [String],
        }
        let (membership, pattern) = match &self.membership {
            Membership::Added => ("added", None),
            Membership::Listed { pattern } => ("listed", Some(pattern.as_str())),
            Membership::Excluded => ("excluded", None),
        };
        Json {
            root: &self.root,
            member: &self.member,
            membership,
            pattern,
            notes: &self.notes,
        }
        .serialize(serializer)
    }
}

impl Report {
    /// The report as lines of text.
    pub fn lines(&self) -> Vec<String> {
        let Report { root, member, .. } = self;
        let mut lines = vec![match &self.membership {
            Membership::Added => {
                format!("workspace: added {member} to [workspace] members in {root}")
            }
            Membership::Listed { pattern } => {
                format!("workspace: {member} is already a member (`{pattern}`) of {root}")
            }
            Membership::Excluded => format!(
                "workspace: {member} is excluded by [workspace] exclude in {root}; the service is a workspace of its own"
            ),
        }];
        lines.extend(self.notes.iter().map(|n| format!("note: {n}")));
        lines
    }
}

/// The names of the `[profile.*]` tables in a package's Cargo.toml.
pub fn profiles(cargo_toml: &str) -> Vec<String> {
    let Ok(doc) = cargo_toml.parse::<DocumentMut>() else {
        return Vec::new();
    };
    doc.get("profile")
        .and_then(Item::as_table_like)
        .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default()
}

/// `text` (a workspace root manifest) with `member` added to `[workspace] members`, as
/// `cargo new` adds it: in sorted position when the list is sorted, else at the end, in the
/// list's own layout (one per line or inline), comments kept where they were.
pub fn add_member(text: &str, member: &str) -> std::result::Result<String, String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| format!("not valid TOML: {}", e.message()))?;
    let workspace = doc
        .get_mut("workspace")
        .and_then(Item::as_table_like_mut)
        .ok_or("`workspace` is not a table")?;
    let Some(members) = workspace.get_mut("members") else {
        workspace.insert("members", toml_edit::value(Array::from_iter([member])));
        return Ok(doc.to_string());
    };
    let members = members
        .as_array_mut()
        .ok_or("workspace.members is not an array of paths")?;
    insert_member(members, member);
    Ok(doc.to_string())
}

fn insert_member(members: &mut Array, member: &str) {
    let n = members.len();
    if n == 0 {
        members.push(member);
        return;
    }
    let names: Vec<Option<&str>> = members.iter().map(Value::as_str).collect();
    let sorted = names.windows(2).all(|w| w[0] <= w[1]);
    let at = if sorted {
        names
            .iter()
            .take_while(|v| v.is_some_and(|v| v < member))
            .count()
    } else {
        n
    };
    let prefix = |v: &Value| {
        v.decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or("")
            .to_string()
    };
    let suffix = |v: &Value| {
        v.decor()
            .suffix()
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string()
    };
    // The whitespace that opens an element's line (from its last line break on).
    let indent = |p: &str| p.rfind('\n').map(|i| p[i..].to_string());
    let mut value = Value::from(member);
    if at == n {
        // After the last element: its layout; a comment that ended the last line stays there.
        let last = members.get(n - 1).expect("n > 0");
        let (last_prefix, last_suffix) = (prefix(last), suffix(last));
        let mut new_prefix = match indent(&last_prefix) {
            Some(line) => line,
            None if last_prefix.is_empty() => " ".to_string(),
            None => last_prefix,
        };
        if members.trailing_comma() {
            let trailing = members.trailing().as_str().unwrap_or("").to_string();
            if let Some(i) = trailing.rfind('\n') {
                new_prefix = format!("{}{new_prefix}", &trailing[..i]);
                members.set_trailing(&trailing[i..]);
            }
            value.decor_mut().set_suffix(last_suffix);
        } else {
            // The closing line break sat after the old last element; it moves after the new one.
            let (keep, moved) = match last_suffix.rfind('\n') {
                Some(i) if last_suffix[..i].trim().is_empty() => (String::new(), last_suffix),
                _ => (last_suffix.clone(), String::new()),
            };
            members
                .get_mut(n - 1)
                .expect("n > 0")
                .decor_mut()
                .set_suffix(keep);
            value.decor_mut().set_suffix(moved);
        }
        value.decor_mut().set_prefix(new_prefix);
        members.push_formatted(value);
    } else {
        // Before element `at`: the new one takes its place (and any comment ending the line
        // before); the displaced one starts its own line, or follows after a space inline.
        let next = members.get_mut(at).expect("at < n");
        let next_prefix = prefix(next);
        let displaced = match indent(&next_prefix) {
            Some(line) => line,
            None if at == 0 => " ".to_string(),
            None => next_prefix.clone(),
        };
        next.decor_mut().set_prefix(displaced);
        value.decor_mut().set_prefix(next_prefix);
        value.decor_mut().set_suffix("");
        members.insert_formatted(at, value);
    }
}

/// `path` relative to `root` (which is one of its ancestors), with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// `path` with `.` and `..` resolved lexically (as cargo joins workspace paths).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A key that must be an array of strings, or absent.
fn strings(item: Option<&Item>, key: &str) -> std::result::Result<Vec<String>, String> {
    let Some(item) = item else {
        return Ok(Vec::new());
    };
    let invalid = || format!("{key} must be an array of paths");
    item.as_array()
        .ok_or_else(invalid)?
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(invalid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(text: &str, member: &str) -> String {
        add_member(text, member).unwrap()
    }

    #[test]
    fn members_keep_their_layout_and_comments() {
        let ws = "[workspace]\n";
        assert_eq!(add(ws, "a"), "[workspace]\nmembers = [\"a\"]\n");
        let empty = "[workspace]\nmembers = []\n";
        assert_eq!(add(empty, "a"), "[workspace]\nmembers = [\"a\"]\n");
        // Inline, sorted: in place.
        let inline = "[workspace]\nmembers = [\"a\", \"c\"] # all\n";
        assert_eq!(
            add(inline, "b"),
            "[workspace]\nmembers = [\"a\", \"b\", \"c\"] # all\n"
        );
        assert_eq!(
            add(inline, "0"),
            "[workspace]\nmembers = [\"0\", \"a\", \"c\"] # all\n"
        );
        assert_eq!(
            add(inline, "d"),
            "[workspace]\nmembers = [\"a\", \"c\", \"d\"] # all\n"
        );
        // Unsorted: at the end.
        let unsorted = "[workspace]\nmembers = [\"c\", \"a\"]\n";
        assert_eq!(
            add(unsorted, "b"),
            "[workspace]\nmembers = [\"c\", \"a\", \"b\"]\n"
        );
        // One per line with a trailing comma and comments after entries.
        let lines = "[workspace]\nmembers = [\n    \"a\", # A\n    \"c\", # C\n]\n";
        assert_eq!(
            add(lines, "d"),
            "[workspace]\nmembers = [\n    \"a\", # A\n    \"c\", # C\n    \"d\",\n]\n"
        );
        assert_eq!(
            add(lines, "b"),
            "[workspace]\nmembers = [\n    \"a\", # A\n    \"b\",\n    \"c\", # C\n]\n"
        );
        assert_eq!(
            add(lines, "0"),
            "[workspace]\nmembers = [\n    \"0\",\n    \"a\", # A\n    \"c\", # C\n]\n"
        );
        // One per line without a trailing comma.
        let bare = "[workspace]\nmembers = [\n  \"a\",\n  \"c\"\n]\n";
        assert_eq!(
            add(bare, "d"),
            "[workspace]\nmembers = [\n  \"a\",\n  \"c\",\n  \"d\"\n]\n"
        );
        // Everything else in the file is left as written.
        let rich = "# root\n[package]\nname = \"x\" # me\n\n[workspace]\nmembers = [\"a\"]\n\n[profile.release]\nlto = true\n";
        assert_eq!(add(rich, "b"), rich.replace("[\"a\"]", "[\"a\", \"b\"]"));
        // Inline table form.
        let dotted = "workspace = { members = [\"a\"] }\n";
        assert_eq!(
            add(dotted, "b"),
            "workspace = { members = [\"a\", \"b\"] }\n"
        );
    }

    #[test]
    fn malformed_members_are_errors() {
        assert!(add_member("[workspace]\nmembers = \"a\"\n", "b").is_err());
        assert!(add_member("[workspace]\nmembers = [1]\n", "b").is_ok());
        assert!(add_member("workspace = 1\n", "b").is_err());
    }

    #[test]
    fn profiles_are_listed() {
        assert_eq!(
            profiles("[package]\nname = \"x\"\n[profile.release]\nlto = true\n[profile.dev]\n"),
            ["release", "dev"]
        );
        assert!(profiles("[package]\n").is_empty());
    }

    fn setup(root: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(ws.join(MANIFEST), root).unwrap();
        (dir, ws)
    }

    #[test]
    fn find_walks_up_as_cargo_does() {
        let (_d, ws) =
            setup("[workspace]\nmembers = [\"svc/*\", \"../outside\"]\nexclude = [\"old\"]\n");
        let found = find(&ws.join("svc/orders")).unwrap().unwrap();
        assert_eq!(found.member, "svc/orders");
        assert_eq!(
            found.membership,
            Membership::Listed {
                pattern: "svc/*".into()
            }
        );
        assert!(found.resolver_missing);
        // `*` does not cross a `/`.
        let found = find(&ws.join("svc/a/b")).unwrap().unwrap();
        assert_eq!(found.membership, Membership::Added);
        let found = find(&ws.join("x/../svc/./orders")).unwrap().unwrap();
        assert_eq!(found.member, "svc/orders");
        let found = find(&ws.join("old/orders")).unwrap().unwrap();
        assert_eq!(found.membership, Membership::Excluded);
        // A package manifest without [workspace] is passed over.
        std::fs::create_dir_all(ws.join("pkg")).unwrap();
        std::fs::write(ws.join("pkg").join(MANIFEST), "[package]\nname = \"p\"\n").unwrap();
        let found = find(&ws.join("pkg/sub")).unwrap().unwrap();
        assert_eq!(found.member, "pkg/sub");
        assert!(find(ws.parent().unwrap()).unwrap().is_none());
    }

    #[test]
    fn exclude_beats_a_glob_member_but_not_a_literal_one() {
        // As cargo decides: `exclude` wins over a glob in `members`, a literal member wins over
        // `exclude`.
        let (_d, ws) = setup("[workspace]\nmembers = [\"svc/*\"]\nexclude = [\"svc/legacy\"]\n");
        let found = find(&ws.join("svc/legacy")).unwrap().unwrap();
        assert_eq!(found.membership, Membership::Excluded);
        let found = find(&ws.join("svc/orders")).unwrap().unwrap();
        assert_eq!(
            found.membership,
            Membership::Listed {
                pattern: "svc/*".into()
            }
        );
        let (_d, ws) = setup("[workspace]\nmembers = [\"svc/orders\"]\nexclude = [\"svc\"]\n");
        let found = find(&ws.join("svc/orders")).unwrap().unwrap();
        assert_eq!(
            found.membership,
            Membership::Listed {
                pattern: "svc/orders".into()
            }
        );
        assert_eq!(
            find(&ws.join("svc/other")).unwrap().unwrap().membership,
            Membership::Excluded
        );
        let (_d, ws) = setup(
            "[workspace]\nmembers = [\"svc/*\", \"svc/legacy\"]\nexclude = [\"svc/legacy\"]\n",
        );
        assert_eq!(
            find(&ws.join("svc/legacy")).unwrap().unwrap().membership,
            Membership::Listed {
                pattern: "svc/legacy".into()
            }
        );
    }

    #[test]
    fn an_excluding_workspace_defers_to_one_further_up() {
        let (_d, ws) = setup("[workspace]\nresolver = \"3\"\n");
        std::fs::create_dir_all(ws.join("inner")).unwrap();
        std::fs::write(
            ws.join("inner").join(MANIFEST),
            "[workspace]\nexclude = [\"x\"]\n",
        )
        .unwrap();
        let found = find(&ws.join("inner/x/svc")).unwrap().unwrap();
        assert_eq!(found.manifest, ws.join(MANIFEST));
        assert_eq!(found.member, "inner/x/svc");
        assert_eq!(found.membership, Membership::Added);
        assert!(!found.resolver_missing);
    }

    #[test]
    fn apply_and_undo_round_trip() {
        let (_d, ws) = setup("[workspace]\nmembers = [\"a\"]\n");
        let found = find(&ws.join("b")).unwrap().unwrap();
        found.apply().unwrap();
        assert_eq!(
            std::fs::read_to_string(ws.join(MANIFEST)).unwrap(),
            "[workspace]\nmembers = [\"a\", \"b\"]\n"
        );
        found.undo().unwrap();
        assert_eq!(
            std::fs::read_to_string(ws.join(MANIFEST)).unwrap(),
            "[workspace]\nmembers = [\"a\"]\n"
        );
        // A root edited in between is not overwritten.
        std::fs::write(ws.join(MANIFEST), "[workspace]\nmembers = [\"z\"]\n").unwrap();
        assert!(found.apply().unwrap_err().message.contains("changed"));
    }
}
