//! Key-level 3-way merge of TOML the team also edits (Cargo.toml, config files), and the
//! structured edits migrations declare. Keeps the team's formatting, comments and extra keys.

use std::collections::{BTreeMap, BTreeSet};

use toml_edit::{DocumentMut, Entry, InlineTable, Item, Key, Table, TableLike};

type Path = Vec<String>;

/// One key both sides changed differently (the team's value is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConflict {
    pub key: String,
    pub ours: Option<String>,
    pub theirs: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlMerged {
    pub text: String,
    pub conflicts: Vec<KeyConflict>,
}

fn parse(text: &str, what: &str) -> Result<DocumentMut, String> {
    text.parse::<DocumentMut>()
        .map_err(|e| format!("{what} is not valid TOML: {e}"))
}

/// Merges the template's key changes (base → theirs) into ours. With `mark`, each conflicting
/// key present in ours gets a comment line saying what the template wanted.
pub fn merge(
    base: &str,
    ours: &str,
    theirs: &str,
    mark: Option<&str>,
) -> Result<TomlMerged, String> {
    let base_doc = parse(base, "the template's previous version")?;
    let theirs_doc = parse(theirs, "the template's new version")?;
    let mut ours_doc = parse(ours, "your file")?;
    add_new_containers(
        base_doc.as_table(),
        ours_doc.as_table_mut(),
        theirs_doc.as_table(),
    );
    let base_leaves = leaves(base_doc.as_table());
    let theirs_leaves = leaves(theirs_doc.as_table());
    let mut conflicts = Vec::new();
    let keys: BTreeSet<&Path> = base_leaves.keys().chain(theirs_leaves.keys()).collect();
    for key in keys {
        let b = base_leaves.get(key).map(semantic);
        let t = theirs_leaves.get(key).map(semantic);
        if b == t {
            continue;
        }
        let o_item = get(ours_doc.as_table(), key);
        let o = o_item.map(semantic);
        if o == t {
            continue;
        }
        if o == b {
            match theirs_leaves.get(key) {
                Some(item) => set(
                    ours_doc.as_table_mut(),
                    theirs_doc.as_table(),
                    key,
                    item.clone(),
                    false,
                ),
                None => remove(ours_doc.as_table_mut(), theirs_doc.as_table(), key),
            }
            continue;
        }
        let conflict = KeyConflict {
            key: key.join("."),
            ours: o_item.map(show),
            theirs: theirs_leaves.get(key).map(show),
        };
        if let (Some(label), Some(_)) = (mark, o_item) {
            let wanted = match &conflict.theirs {
                Some(v) => format!("sets it to {v}"),
                None => "removes it".to_string(),
            };
            annotate(
                ours_doc.as_table_mut(),
                key,
                &format!(
                    "# CONFLICT (cargo-platform): {label} {wanted}; yours is kept. Resolve, then delete this line.\n"
                ),
            );
        }
        conflicts.push(conflict);
    }
    place_additions(
        Some(base_doc.as_table()),
        ours_doc.as_table_mut(),
        theirs_doc.as_table(),
    );
    Ok(TomlMerged {
        text: ours_doc.to_string(),
        conflicts,
    })
}

/// Moves the value at dotted key `from` to `to`, keeping its comments. `Ok(None)` when `from`
/// is absent; an error when both exist (the team must choose).
pub fn rename_key(text: &str, from: &str, to: &str) -> Result<Option<String>, String> {
    let mut doc = parse(text, "the file")?;
    let from_path: Path = from.split('.').map(str::to_string).collect();
    let to_path: Path = to.split('.').map(str::to_string).collect();
    let Some(item) = get(doc.as_table(), &from_path).cloned() else {
        return Ok(None);
    };
    if get(doc.as_table(), &to_path).is_some() {
        return Err(format!("both `{from}` and `{to}` are set; keep one"));
    }
    let (from_last, from_parent) = from_path.split_last().expect("non-empty");
    let (to_last, to_parent) = to_path.split_last().expect("non-empty");
    if from_parent == to_parent {
        // Same table: rename in place, so the key keeps its position, comments and spacing.
        let empty = Table::new();
        let Some(t) = container_mut(doc.as_table_mut(), &empty, from_parent) else {
            return Ok(None);
        };
        let entries: Vec<(Key, Item)> = t
            .iter()
            .map(|(k, _)| k.to_string())
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|k| {
                t.get_key_value(&k)
                    .map(|(key, item)| (key.clone(), item.clone()))
            })
            .collect();
        t.clear();
        for (key, item) in entries {
            let key = if key.get() == from_last.as_str() {
                let mut renamed = Key::new(to_last.as_str());
                *renamed.leaf_decor_mut() = key.leaf_decor().clone();
                renamed
            } else {
                key
            };
            if let Entry::Vacant(slot) = t.entry_format(&key) {
                slot.insert(item);
            }
        }
        return Ok(Some(doc.to_string()));
    }
    let prefix = leaf_prefix(doc.as_table(), &from_path);
    let empty = doc.as_table().clone();
    remove(doc.as_table_mut(), &empty, &from_path);
    set(doc.as_table_mut(), &empty, &to_path, item, true);
    if let Some(prefix) = prefix {
        annotate(doc.as_table_mut(), &to_path, &prefix);
    }
    Ok(Some(doc.to_string()))
}

/// Copies into `ours` every table the template adds wholesale (absent from base and from
/// ours), as the template writes it: key order, comments and all.
fn add_new_containers(base: &dyn TableLike, ours: &mut dyn TableLike, theirs: &dyn TableLike) {
    for (key, item) in theirs.iter() {
        let Some(their_sub) = item.as_table_like() else {
            continue;
        };
        let in_base = base.get(key).and_then(Item::as_table_like);
        match ours.get_mut(key) {
            None if in_base.is_none() => {
                let mut copy = item.clone();
                if let Item::Table(t) = &mut copy {
                    t.set_position(None);
                }
                ours.insert(key, copy);
            }
            Some(existing) => {
                if let (Some(ours_sub), Some(base_sub)) = (existing.as_table_like_mut(), in_base) {
                    add_new_containers(base_sub, ours_sub, their_sub);
                } else if let Some(ours_sub) = existing.as_table_like_mut() {
                    add_new_containers(&Table::new(), ours_sub, their_sub);
                }
            }
            None => {}
        }
    }
}

/// Moves every key the template added (in theirs, not in base) to where the template has it:
/// right after the key that precedes it in theirs, so a new dependency or table lands among its
/// neighbours as in a fresh render instead of at the end. The team's own keys keep their place.
fn place_additions(base: Option<&dyn TableLike>, ours: &mut Table, theirs: &dyn TableLike) {
    if let Some(order) = added_order(base, &*ours, theirs) {
        let rank = |k: &str| order.iter().position(|have| have == k);
        ours.sort_values_by(|a, _, b, _| rank(a.get()).cmp(&rank(b.get())));
    }
    let keys: Vec<String> = ours.iter().map(|(k, _)| k.to_string()).collect();
    for key in keys {
        let Some(their_sub) = theirs.get(&key).and_then(Item::as_table_like) else {
            continue;
        };
        let base_sub = base.and_then(|b| b.get(&key)).and_then(Item::as_table_like);
        match ours.get_mut(&key) {
            Some(Item::Table(t)) => place_additions(base_sub, t, their_sub),
            Some(Item::Value(toml_edit::Value::InlineTable(t))) => {
                place_additions_inline(base_sub, t, their_sub)
            }
            _ => {}
        }
    }
}

fn place_additions_inline(
    base: Option<&dyn TableLike>,
    ours: &mut InlineTable,
    theirs: &dyn TableLike,
) {
    if let Some(order) = added_order(base, &*ours, theirs) {
        let rank = |k: &str| order.iter().position(|have| have == k);
        ours.sort_values_by(|a, _, b, _| rank(a.get()).cmp(&rank(b.get())));
    }
    let keys: Vec<String> = ours.iter().map(|(k, _)| k.to_string()).collect();
    for key in keys {
        let Some(their_sub) = theirs.get(&key).and_then(Item::as_table_like) else {
            continue;
        };
        let base_sub = base.and_then(|b| b.get(&key)).and_then(Item::as_table_like);
        if let Some(toml_edit::Value::InlineTable(t)) = ours.get_mut(&key) {
            place_additions_inline(base_sub, t, their_sub);
        }
    }
}

/// Ours' keys in order once the template's additions sit after their predecessor in theirs;
/// `None` when that is already their order.
fn added_order(
    base: Option<&dyn TableLike>,
    ours: &dyn TableLike,
    theirs: &dyn TableLike,
) -> Option<Vec<String>> {
    let ours_keys: Vec<String> = ours.iter().map(|(k, _)| k.to_string()).collect();
    let added = |k: &str| theirs.contains_key(k) && !base.is_some_and(|b| b.contains_key(k));
    let mut order: Vec<String> = ours_keys.iter().filter(|k| !added(k)).cloned().collect();
    let theirs_keys: Vec<&str> = theirs.iter().map(|(k, _)| k).collect();
    for (i, key) in theirs_keys.iter().enumerate() {
        if !added(key) || !ours_keys.iter().any(|k| k == key) {
            continue;
        }
        let at = theirs_keys[..i]
            .iter()
            .rev()
            .find_map(|prev| order.iter().position(|k| k == prev))
            .map_or(0, |p| p + 1);
        order.insert(at, key.to_string());
    }
    (order != ours_keys).then_some(order)
}

/// Every leaf (a value that is not a table; an empty table counts as a leaf) by key path.
fn leaves(root: &Table) -> BTreeMap<Path, Item> {
    fn walk(t: &dyn TableLike, prefix: &mut Path, out: &mut BTreeMap<Path, Item>) {
        for (k, item) in t.iter() {
            prefix.push(k.to_string());
            match item.as_table_like() {
                Some(sub) if !sub.is_empty() => walk(sub, prefix, out),
                _ => {
                    out.insert(prefix.clone(), item.clone());
                }
            }
            prefix.pop();
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut Vec::new(), &mut out);
    out
}

/// The value as TOML means it, ignoring formatting and comments.
fn semantic(item: &Item) -> Option<toml::Value> {
    let mut doc = DocumentMut::new();
    let mut item = item.clone();
    if let Some(t) = item.as_table_like_mut() {
        t.fmt();
    }
    doc["v"] = item;
    let table: toml::Table = toml::from_str(&doc.to_string()).ok()?;
    table.get("v").cloned()
}

fn show(item: &Item) -> String {
    match semantic(item) {
        Some(toml::Value::String(s)) => format!("{s:?}"),
        Some(v) => v.to_string(),
        None => item.to_string().trim().to_string(),
    }
}

fn get<'a>(root: &'a Table, path: &Path) -> Option<&'a Item> {
    let (last, parents) = path.split_last()?;
    let mut t: &dyn TableLike = root;
    for seg in parents {
        t = t.get(seg)?.as_table_like()?;
    }
    t.get(last).filter(|i| !i.is_none())
}

/// Walks to the container of `path` in `root`, creating missing containers shaped like those in
/// `shape` (a table, or an inline table). Inside an inline table only inline tables can nest.
fn container_mut<'a>(
    root: &'a mut Table,
    shape: &Table,
    path: &[String],
) -> Option<&'a mut dyn TableLike> {
    let mut t: &mut dyn TableLike = root;
    let mut s: Option<&dyn TableLike> = Some(shape);
    let mut inside_inline = false;
    for seg in path {
        let shape_item = s.and_then(|s| s.get(seg));
        if t.get(seg).and_then(Item::as_table_like).is_none() {
            let inline = inside_inline || shape_item.is_some_and(is_inline);
            let fresh = if inline {
                Item::Value(toml_edit::Value::InlineTable(InlineTable::new()))
            } else {
                Item::Table(Table::new())
            };
            t.insert(seg, fresh);
        }
        let next = t.get_mut(seg)?;
        inside_inline = inside_inline || is_inline(next);
        t = next.as_table_like_mut()?;
        s = shape_item.and_then(Item::as_table_like);
    }
    Some(t)
}

fn is_inline(item: &Item) -> bool {
    matches!(item, Item::Value(toml_edit::Value::InlineTable(_)))
}

/// Sets the leaf at `path`. A new key gets the document's default spacing unless `keep_decor`
/// (a key being moved, whose trailing comment must travel with it).
fn set(root: &mut Table, shape: &Table, path: &Path, mut item: Item, keep_decor: bool) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    // The key as the template writes it, with the comment above it.
    let shape_key = {
        let mut c: Option<&dyn TableLike> = Some(shape);
        for seg in parents {
            c = c.and_then(|c| c.get(seg)).and_then(Item::as_table_like);
        }
        c.and_then(|c| c.key(last)).cloned()
    };
    let Some(t) = container_mut(root, shape, parents) else {
        return;
    };
    match t.get_mut(last) {
        Some(existing) => {
            // Keep the team's spacing and trailing comment around the value.
            if let (Some(old), Some(new)) = (existing.as_value(), item.as_value_mut()) {
                *new.decor_mut() = old.decor().clone();
            }
            *existing = item;
        }
        None => match shape_key.filter(|_| !keep_decor) {
            // A key the template adds: as the template writes it (comment, spacing).
            Some(key) => {
                if let Entry::Vacant(slot) = t.entry_format(&key) {
                    slot.insert(item);
                }
            }
            None => {
                if let (false, Some(v)) = (keep_decor, item.as_value_mut()) {
                    v.decor_mut().clear();
                }
                t.insert(last, item);
            }
        },
    }
}

fn remove(root: &mut Table, theirs: &Table, path: &Path) {
    let Some((_, parents)) = path.split_last() else {
        return;
    };
    remove_one(root, path);
    // Drop containers the removal emptied, unless the template still has them.
    for depth in (1..=parents.len()).rev() {
        let prefix: Path = parents[..depth].to_vec();
        let empty = get(root, &prefix)
            .and_then(Item::as_table_like)
            .is_some_and(TableLike::is_empty);
        if empty && get(theirs, &prefix).is_none() {
            remove_one(root, &prefix);
        } else {
            break;
        }
    }
}

fn remove_one(root: &mut Table, path: &Path) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut t: &mut dyn TableLike = root;
    for seg in parents {
        let Some(next) = t.get_mut(seg).and_then(Item::as_table_like_mut) else {
            return;
        };
        t = next;
    }
    t.remove(last);
}

fn leaf_prefix(root: &Table, path: &Path) -> Option<String> {
    let (last, parents) = path.split_last()?;
    let mut t: &dyn TableLike = root;
    for seg in parents {
        t = t.get(seg)?.as_table_like()?;
    }
    let prefix = t.key(last)?.leaf_decor().prefix()?.as_str()?.to_string();
    let comments: String = prefix
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    (!comments.is_empty()).then_some(comments)
}

/// Puts `comment` on the line(s) above the key at `path`.
fn annotate(root: &mut Table, path: &Path, comment: &str) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut t: &mut dyn TableLike = root;
    for (i, seg) in parents.iter().enumerate() {
        let Some(next) = t.get_mut(seg) else { return };
        if is_inline(next) {
            // A comment cannot stand on its own line inside an inline table: mark the key that
            // holds the inline table instead.
            return annotate(root, &path[..=i].to_vec(), comment);
        }
        let Some(next) = next.as_table_like_mut() else {
            return;
        };
        t = next;
    }
    if let Some(mut key) = t.key_mut(last) {
        let existing = key
            .leaf_decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or("")
            .to_string();
        key.leaf_decor_mut()
            .set_prefix(format!("{existing}{comment}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"[package]
name = "orders"
version = "0.1.0"

[dependencies]
axum = "0.8.0"
serde = { version = "1", features = ["derive"] }
old-crate = "1"
"#;

    #[test]
    fn template_changes_land_and_team_changes_stay() {
        let ours = r#"# our manifest
[package]
name = "orders"
version = "0.3.0" # we release often

[dependencies]
axum = "0.8.0"
serde = { version = "1", features = ["derive", "rc"] }
old-crate = "1"
uuid = "1"   # ours
"#;
        let theirs = r#"[package]
name = "orders"
version = "0.1.0"

[dependencies]
axum = "0.8.4"
serde = { version = "1", features = ["derive"] }
tower = "0.5"
"#;
        let merged = merge(BASE, ours, theirs, Some("template 2.0.0")).unwrap();
        assert_eq!(merged.conflicts, vec![]);
        assert_eq!(
            merged.text,
            r#"# our manifest
[package]
name = "orders"
version = "0.3.0" # we release often

[dependencies]
axum = "0.8.4"
serde = { version = "1", features = ["derive", "rc"] }
tower = "0.5"
uuid = "1"   # ours
"#
        );
    }

    #[test]
    fn same_key_changed_both_ways_is_a_marked_conflict() {
        let ours = BASE.replace("axum = \"0.8.0\"", "axum = \"0.7.9\"");
        let theirs = BASE.replace("axum = \"0.8.0\"", "axum = \"0.8.4\"");
        let merged = merge(BASE, &ours, &theirs, Some("template service 2.0.0")).unwrap();
        assert_eq!(
            merged.conflicts,
            vec![KeyConflict {
                key: "dependencies.axum".into(),
                ours: Some("\"0.7.9\"".into()),
                theirs: Some("\"0.8.4\"".into()),
            }]
        );
        assert!(merged.text.contains(
            "# CONFLICT (cargo-platform): template service 2.0.0 sets it to \"0.8.4\"; yours is kept. Resolve, then delete this line.\naxum = \"0.7.9\""
        ), "{}", merged.text);
        assert!(
            merged.text.parse::<DocumentMut>().is_ok(),
            "still valid TOML"
        );
        let unmarked = merge(BASE, &ours, &theirs, None).unwrap();
        assert_eq!(unmarked.text, ours);
    }

    #[test]
    fn conflicts_inside_inline_tables_mark_the_enclosing_key() {
        let ours = BASE.replace("features = [\"derive\"]", "features = [\"derive\", \"rc\"]");
        let theirs = BASE.replace(
            "features = [\"derive\"]",
            "features = [\"derive\", \"std\"]",
        );
        let merged = merge(BASE, &ours, &theirs, Some("template 2.0.0")).unwrap();
        assert_eq!(merged.conflicts.len(), 1);
        assert_eq!(merged.conflicts[0].key, "dependencies.serde.features");
        assert!(
            merged
                .text
                .contains("; yours is kept. Resolve, then delete this line.\nserde = {"),
            "{}",
            merged.text
        );
    }

    #[test]
    fn wholesale_additions_arrive_as_the_template_writes_them_where_it_writes_them() {
        let base = "[dependencies]\naxum = \"0.8\"\n";
        let ours = "[dependencies]\naxum = \"0.8\"\nchrono = \"0.4\"\n";
        let theirs = "[dependencies]\naxum = \"0.8\"\nsecrecy = { version = \"0.10\", features = [\"serde\"] }\n\n# Audit events.\n[audit]\nenabled = true\n";
        let merged = merge(base, ours, theirs, None).unwrap();
        assert_eq!(merged.conflicts, vec![]);
        assert_eq!(
            merged.text,
            "[dependencies]\naxum = \"0.8\"\nsecrecy = { version = \"0.10\", features = [\"serde\"] }\nchrono = \"0.4\"\n\n# Audit events.\n[audit]\nenabled = true\n"
        );
    }

    #[test]
    fn additions_land_where_the_template_has_them_with_their_comments() {
        let base = "[server]\nport = 1\n\n[telemetry]\nx = 1\n";
        let theirs = "[server]\nport = 1\n# Cache accepted tokens this long.\ntoken_cache_secs = 60\n\n# Audit.\n[audit]\nenabled = true\n\n[telemetry]\nx = 1\n";
        let ours = "[server]\nport = 2\n\n[telemetry]\nx = 1\n\n[ours]\ny = 1\n";
        let merged = merge(base, ours, theirs, None).unwrap();
        assert_eq!(merged.conflicts, vec![]);
        assert_eq!(
            merged.text,
            "[server]\nport = 2\n# Cache accepted tokens this long.\ntoken_cache_secs = 60\n\n# Audit.\n[audit]\nenabled = true\n\n[telemetry]\nx = 1\n\n[ours]\ny = 1\n"
        );
    }

    #[test]
    fn new_tables_are_added_and_emptied_ones_dropped() {
        let base = "[server]\nport = 8080\n\n[legacy]\nx = 1\n";
        let theirs = "[server]\nport = 8080\n\n[audit]\nenabled = true\ntarget = \"audit\"\n";
        let ours = "[server]\nport = 9000 # ours\n\n[legacy]\nx = 1\n";
        let merged = merge(base, ours, theirs, None).unwrap();
        assert_eq!(merged.conflicts, vec![]);
        let v: toml::Table = toml::from_str(&merged.text).unwrap();
        assert_eq!(v["server"]["port"].as_integer(), Some(9000));
        assert_eq!(v["audit"]["enabled"].as_bool(), Some(true));
        assert!(v.get("legacy").is_none(), "{}", merged.text);
        assert!(merged.text.contains("port = 9000 # ours"));
    }

    #[test]
    fn rename_key_moves_the_value_and_its_comment() {
        let text = "[auth]\n# rotated quarterly\nsecret = \"team-secret\"\nissuer = \"x\"\n";
        let out = rename_key(text, "auth.secret", "auth.hs256_secret")
            .unwrap()
            .unwrap();
        let v: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(v["auth"]["hs256_secret"].as_str(), Some("team-secret"));
        assert!(v["auth"].get("secret").is_none());
        assert!(
            out.contains("# rotated quarterly\nhs256_secret = \"team-secret\""),
            "{out}"
        );
        assert_eq!(
            rename_key(
                "[auth]\nissuer = \"x\"\n",
                "auth.secret",
                "auth.hs256_secret"
            )
            .unwrap(),
            None
        );
        assert!(
            rename_key(
                "[auth]\nsecret = 1\nhs256_secret = 2\n",
                "auth.secret",
                "auth.hs256_secret"
            )
            .is_err()
        );
    }

    #[test]
    fn invalid_toml_is_an_error_naming_the_side() {
        let err = merge(BASE, "[dependencies\n", BASE, None).unwrap_err();
        assert!(err.starts_with("your file is not valid TOML"), "{err}");
    }
}
