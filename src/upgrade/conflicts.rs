//! Rendering what could not be merged: git-style markers in the file, or the file kept as the
//! team has it with the template's side in a `.rej` file beside it.

use super::plan::ConflictStyle;
use super::structured::KeyConflict;
use super::text::{Labels, Merged};
use crate::fsx::Write;

/// What becomes of a file after a merge: its contents, a `.rej` file to write beside it, and
/// what to tell the team (`None`: merged cleanly).
#[derive(Debug)]
pub(super) struct Outcome {
    pub contents: Vec<u8>,
    pub rej: Option<Write>,
    pub detail: Option<String>,
}

/// How conflicts are left, and the names of the sides (`base` names the merge base in `.rej`
/// headers, e.g. `template service 1.0.0`).
#[derive(Debug)]
pub(super) struct Style {
    pub conflict: ConflictStyle,
    pub labels: Labels,
    pub base: String,
}

fn rej(q: &str, contents: Vec<u8>) -> Option<Write> {
    Some(Write::Put {
        path: format!("{q}.rej"),
        contents,
    })
}

/// A text merge of `q`, its conflicts rendered as `style` asks.
pub(super) fn text(
    style: &Style,
    q: &str,
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
    merged: Merged,
) -> Outcome {
    match merged {
        Merged::Clean(contents) => Outcome {
            contents,
            rej: None,
            detail: None,
        },
        Merged::Conflict {
            with_markers,
            ours_resolved,
        } => match style.conflict {
            ConflictStyle::Markers => Outcome {
                contents: with_markers,
                rej: None,
                detail: Some("conflict markers in the file".into()),
            },
            ConflictStyle::Reject => {
                let base = String::from_utf8_lossy(base);
                let theirs = String::from_utf8_lossy(theirs);
                let mut opts = diffy::DiffOptions::new();
                opts.set_original_filename(format!("a/{q}"))
                    .set_modified_filename(format!("b/{q}"));
                let patch = format!(
                    "# The change from {} to {} that could not be merged into {q}.\n{}",
                    style.base,
                    style.labels.theirs,
                    opts.create_patch(&base, &theirs)
                );
                Outcome {
                    contents: ours_resolved,
                    rej: rej(q, patch.into_bytes()),
                    detail: Some(format!(
                        "your side kept; the template's change is in {q}.rej"
                    )),
                }
            }
        },
        Merged::BinaryConflict => Outcome {
            contents: ours.to_vec(),
            rej: rej(q, theirs.to_vec()),
            detail: Some(format!(
                "binary file changed on both sides: yours kept, the template's version is in {q}.rej"
            )),
        },
    }
}

/// One line per key both sides changed, for the plan's detail.
pub(super) fn key_notes(conflicts: &[KeyConflict]) -> Vec<String> {
    conflicts
        .iter()
        .map(|c| {
            format!(
                "`{}`: yours {}, template {}",
                c.key,
                c.ours.as_deref().unwrap_or("(removed)"),
                c.theirs.as_deref().unwrap_or("(removed)")
            )
        })
        .collect()
}

/// With `--conflict reject`, the keys the template wanted, in `q.rej` (markers go in the file,
/// written by the key-level merge itself).
pub(super) fn key_rej(style: &Style, q: &str, conflicts: &[KeyConflict]) -> Option<Write> {
    if conflicts.is_empty() || style.conflict != ConflictStyle::Reject {
        return None;
    }
    let keys: String = conflicts
        .iter()
        .map(|c| {
            format!(
                "{} = {}\n",
                c.key,
                c.theirs.as_deref().unwrap_or("(removed by the template)")
            )
        })
        .collect();
    rej(
        q,
        format!(
            "# {} wants these keys; yours were kept\n{keys}",
            style.labels.theirs
        )
        .into_bytes(),
    )
}
