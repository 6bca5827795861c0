//! 3-way merge of one file's content (diffy), keeping the team's line endings; binary files are
//! never text-merged.

use diffy::{ConflictStyle, MergeOptions};

/// The outcome of merging base → theirs (the template's change) into ours (the file on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merged {
    /// Merged cleanly.
    Clean(Vec<u8>),
    /// Conflicts remain. `with_markers` holds git-style markers; `ours_resolved` keeps the team's
    /// side in every conflicting hunk (used with `--conflict reject`, which writes the
    /// template's change to a `.rej` file instead).
    Conflict {
        with_markers: Vec<u8>,
        ours_resolved: Vec<u8>,
    },
    /// A binary file changed on both sides: nothing to merge line by line.
    BinaryConflict,
}

/// Labels written on conflict markers.
#[derive(Debug, Clone)]
pub struct Labels {
    pub ours: String,
    pub theirs: String,
}

pub fn is_binary(bytes: &[u8]) -> bool {
    bytes.contains(&0) || std::str::from_utf8(bytes).is_err()
}

/// True when the text's line endings are mostly CRLF.
fn uses_crlf(text: &str) -> bool {
    let crlf = text.matches("\r\n").count();
    crlf > 0 && crlf * 2 >= text.matches('\n').count()
}

pub fn merge3(base: &[u8], ours: &[u8], theirs: &[u8], labels: &Labels) -> Merged {
    if ours == base {
        return Merged::Clean(theirs.to_vec());
    }
    if theirs == base || ours == theirs {
        return Merged::Clean(ours.to_vec());
    }
    if is_binary(base) || is_binary(ours) || is_binary(theirs) {
        return Merged::BinaryConflict;
    }
    let (base, ours, theirs) = (as_str(base), as_str(ours), as_str(theirs));
    let crlf = uses_crlf(ours);
    let lf = |s: &str| {
        if s.contains("\r\n") {
            s.replace("\r\n", "\n")
        } else {
            s.to_string()
        }
    };
    let (base, ours_lf, theirs) = (lf(base), lf(ours), lf(theirs));
    if ours_lf == theirs {
        return Merged::Clean(ours.as_bytes().to_vec());
    }
    let marker_len = marker_length(&[&base, &ours_lf, &theirs]);
    let mut opts = MergeOptions::new();
    opts.set_conflict_style(ConflictStyle::Merge)
        .set_conflict_marker_length(marker_len);
    let restore = |s: String| {
        if crlf {
            s.replace('\n', "\r\n").into_bytes()
        } else {
            s.into_bytes()
        }
    };
    match opts.merge(&base, &ours_lf, &theirs) {
        Ok(clean) => Merged::Clean(restore(clean)),
        Err(conflicted) => {
            let (with_markers, ours_resolved) = relabel(&conflicted, marker_len, labels);
            Merged::Conflict {
                with_markers: restore(with_markers),
                ours_resolved: restore(ours_resolved),
            }
        }
    }
}

fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).expect("checked: not binary")
}

/// Git's rule: markers must be longer than any marker-like run already in the inputs.
fn marker_length(texts: &[&str]) -> usize {
    let mut len = 7;
    for text in texts {
        for line in text.lines() {
            for ch in ['<', '>', '=', '|'] {
                let run = line.chars().take_while(|c| *c == ch).count();
                if run >= len {
                    len = run + 1;
                }
            }
        }
    }
    len
}

/// Replaces diffy's fixed `ours`/`theirs` labels, and builds the ours-only resolution.
fn relabel(conflicted: &str, len: usize, labels: &Labels) -> (String, String) {
    let open = format!("{} ours", "<".repeat(len));
    let mid = "=".repeat(len);
    let close = format!("{} theirs", ">".repeat(len));
    let mut with_markers = String::with_capacity(conflicted.len());
    let mut ours_only = String::with_capacity(conflicted.len());
    #[derive(PartialEq)]
    enum In {
        Text,
        Ours,
        Theirs,
    }
    let mut state = In::Text;
    for line in conflicted.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if state == In::Text && bare == open {
            with_markers.push_str(&format!("{} {}\n", "<".repeat(len), labels.ours));
            state = In::Ours;
        } else if state == In::Ours && bare == mid {
            with_markers.push_str(line);
            state = In::Theirs;
        } else if state == In::Theirs && bare == close {
            with_markers.push_str(&format!("{} {}\n", ">".repeat(len), labels.theirs));
            state = In::Text;
        } else {
            with_markers.push_str(line);
            if state != In::Theirs {
                ours_only.push_str(line);
            }
        }
    }
    (with_markers, ours_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels {
            ours: "yours".into(),
            theirs: "template service 2.0.0".into(),
        }
    }

    #[test]
    fn unchanged_sides_short_circuit() {
        assert_eq!(
            merge3(b"a\n", b"a\n", b"b\n", &labels()),
            Merged::Clean(b"b\n".to_vec())
        );
        assert_eq!(
            merge3(b"a\n", b"c\n", b"a\n", &labels()),
            Merged::Clean(b"c\n".to_vec())
        );
        assert_eq!(
            merge3(b"a\n", b"c\n", b"c\n", &labels()),
            Merged::Clean(b"c\n".to_vec())
        );
    }

    #[test]
    fn edits_far_apart_merge_cleanly() {
        let base = "1\n2\n3\n4\n5\n6\n7\n8\n";
        let ours = "1 ours\n2\n3\n4\n5\n6\n7\n8\n";
        let theirs = "1\n2\n3\n4\n5\n6\n7\n8 theirs\n";
        assert_eq!(
            merge3(
                base.as_bytes(),
                ours.as_bytes(),
                theirs.as_bytes(),
                &labels()
            ),
            Merged::Clean(b"1 ours\n2\n3\n4\n5\n6\n7\n8 theirs\n".to_vec())
        );
    }

    #[test]
    fn same_lines_conflict_with_labelled_markers() {
        let Merged::Conflict {
            with_markers,
            ours_resolved,
        } = merge3(
            b"a\nb\nc\n",
            b"a\nB ours\nc\n",
            b"a\nB theirs\nc\n",
            &labels(),
        )
        else {
            panic!("expected a conflict")
        };
        assert_eq!(
            String::from_utf8(with_markers).unwrap(),
            "a\n<<<<<<< yours\nB ours\n=======\nB theirs\n>>>>>>> template service 2.0.0\nc\n"
        );
        assert_eq!(String::from_utf8(ours_resolved).unwrap(), "a\nB ours\nc\n");
    }

    #[test]
    fn crlf_files_keep_crlf() {
        let base = b"1\n2\n3\n4\n5\n";
        let ours = b"1 ours\r\n2\r\n3\r\n4\r\n5\r\n";
        let theirs = b"1\n2\n3\n4\n5 theirs\n";
        assert_eq!(
            merge3(base, ours, theirs, &labels()),
            Merged::Clean(b"1 ours\r\n2\r\n3\r\n4\r\n5 theirs\r\n".to_vec())
        );
        // The team only switched line endings: the template's change lands, in CRLF.
        assert_eq!(
            merge3(b"a\n", b"a\r\n", b"b\n", &labels()),
            Merged::Clean(b"b\r\n".to_vec())
        );
    }

    #[test]
    fn binary_edits_on_both_sides_conflict() {
        assert_eq!(
            merge3(b"\0a", b"\0b", b"\0c", &labels()),
            Merged::BinaryConflict
        );
        assert_eq!(
            merge3(b"\0a", b"\0a", b"\0c", &labels()),
            Merged::Clean(b"\0c".to_vec())
        );
    }

    #[test]
    fn markers_grow_past_marker_like_lines_in_the_input() {
        assert_eq!(marker_length(&["a\n<<<<<<< x\n"]), 8);
        assert_eq!(marker_length(&["a\n"]), 7);
    }
}
