//! Objects written as one pack file (with its `.idx`) instead of one loose file each.
//!
//! A new service's first commit holds about a hundred blobs and trees. Stored loose, each is a
//! compressed file of its own in a fan-out directory — hundreds of syscalls, most of the time
//! `new` takes. A pack holds them all in two files. No delta search is done, and the objects
//! are stored, not compressed (zlib streams of "stored" blocks, what git writes with
//! `pack.compression = 0`): a new service's objects take ~280 KB instead of ~110 KB. git reuses
//! packed objects as they are when it repacks; `git repack -adF` (or `git gc --aggressive`)
//! compresses them.
//!
//! Formats: `Documentation/gitformat-pack.txt` in git (pack version 2, index version 2).

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::Path;

use sha1::{Digest, Sha1};

use crate::error::{Error, Result};

/// A git object id (SHA-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(pub [u8; 20]);

impl ObjectId {
    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tree,
    Blob,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tree => "tree",
            Kind::Blob => "blob",
        }
    }

    /// The type number in a pack entry's header.
    fn pack_type(self) -> u8 {
        match self {
            Kind::Tree => 2,
            Kind::Blob => 3,
        }
    }
}

/// The id git gives an object: SHA-1 of `"<kind> <len>\0"` and the data.
pub fn object_id(kind: Kind, data: &[u8]) -> ObjectId {
    let mut h = Sha1::new();
    h.update(format!("{} {}\0", kind.name(), data.len()).as_bytes());
    h.update(data);
    ObjectId(h.finalize().into())
}

/// File modes as git records them.
pub const MODE_FILE: u32 = 0o100644;
pub const MODE_EXECUTABLE: u32 = 0o100755;
const MODE_TREE: u32 = 0o040000;

struct Entry {
    id: ObjectId,
    crc: u32,
    offset: u64,
}

/// A pack being built in memory.
pub struct Pack {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    seen: HashSet<ObjectId>,
}

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pack")
            .field("objects", &self.entries.len())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl Default for Pack {
    fn default() -> Self {
        Self::new()
    }
}

impl Pack {
    pub fn new() -> Self {
        let mut bytes = Vec::with_capacity(256 * 1024);
        bytes.extend_from_slice(b"PACK");
        bytes.extend_from_slice(&2u32.to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes()); // object count, set in `write`
        Pack {
            bytes,
            entries: Vec::new(),
            seen: HashSet::new(),
        }
    }

    /// Adds an object (once, however often it is added) and returns its id.
    pub fn add(&mut self, kind: Kind, data: &[u8]) -> ObjectId {
        let id = object_id(kind, data);
        if !self.seen.insert(id) {
            return id;
        }
        let offset = self.bytes.len();
        // Header: type and size, 4 bits of size in the first byte, then 7 bits per byte.
        let mut size = data.len() as u64;
        let mut byte = (kind.pack_type() << 4) | (size & 0x0f) as u8;
        size >>= 4;
        while size != 0 {
            self.bytes.push(byte | 0x80);
            byte = (size & 0x7f) as u8;
            size >>= 7;
        }
        self.bytes.push(byte);
        zlib_stored(&mut self.bytes, data);
        let crc = crc32fast::hash(&self.bytes[offset..]);
        self.entries.push(Entry {
            id,
            crc,
            offset: offset as u64,
        });
        id
    }

    /// Adds the trees for `files` (path with `/` separators, mode, blob id) and returns the id
    /// of the root tree.
    pub fn add_tree(&mut self, files: &[(&str, u32, ObjectId)]) -> Result<ObjectId> {
        let mut root = Dir::default();
        for (path, mode, id) in files {
            root.insert(path, *mode, *id)?;
        }
        Ok(root.write(self))
    }

    /// Writes `pack-<checksum>.pack` and its `.idx` into `pack_dir` (the repository's
    /// `objects/pack`). The index is written last: git only sees a pack through its index.
    pub fn write(mut self, pack_dir: &Path) -> Result<()> {
        let count = self.entries.len() as u32;
        self.bytes[8..12].copy_from_slice(&count.to_be_bytes());
        let checksum: [u8; 20] = Sha1::digest(&self.bytes).into();
        self.bytes.extend_from_slice(&checksum);

        self.entries.sort_by_key(|e| e.id);
        let mut idx = Vec::with_capacity(1072 + self.entries.len() * 28 + 40);
        idx.extend_from_slice(b"\xfftOc");
        idx.extend_from_slice(&2u32.to_be_bytes());
        let mut fanout = [0u32; 256];
        for e in &self.entries {
            fanout[e.id.0[0] as usize] += 1;
        }
        let mut total = 0;
        for n in fanout {
            total += n;
            idx.extend_from_slice(&total.to_be_bytes());
        }
        for e in &self.entries {
            idx.extend_from_slice(&e.id.0);
        }
        for e in &self.entries {
            idx.extend_from_slice(&e.crc.to_be_bytes());
        }
        let mut large = Vec::new();
        for e in &self.entries {
            let small = if e.offset < 0x8000_0000 {
                e.offset as u32
            } else {
                large.push(e.offset);
                0x8000_0000 | (large.len() as u32 - 1)
            };
            idx.extend_from_slice(&small.to_be_bytes());
        }
        for offset in large {
            idx.extend_from_slice(&offset.to_be_bytes());
        }
        idx.extend_from_slice(&checksum);
        let idx_checksum: [u8; 20] = Sha1::digest(&idx).into();
        idx.extend_from_slice(&idx_checksum);

        let name = format!("pack-{}", ObjectId(checksum).to_hex());
        write_read_only(&pack_dir.join(format!("{name}.pack")), &self.bytes)?;
        write_read_only(&pack_dir.join(format!("{name}.idx")), &idx)?;
        Ok(())
    }
}

/// Appends `data` as a zlib stream of stored (uncompressed) deflate blocks (RFC 1950, 1951).
fn zlib_stored(out: &mut Vec<u8>, data: &[u8]) {
    const MAX_BLOCK: usize = 65_535;
    out.reserve(data.len() + 6 + 5 * (data.len() / MAX_BLOCK + 1));
    // CMF 0x78: deflate, 32 KiB window; FLG 0x01: fastest level, no dictionary, check bits.
    out.extend_from_slice(&[0x78, 0x01]);
    let mut rest = data;
    loop {
        let (block, tail) = rest.split_at(rest.len().min(MAX_BLOCK));
        let last = tail.is_empty();
        out.push(u8::from(last)); // BFINAL, BTYPE = 00 (stored)
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
        if last {
            break;
        }
        rest = tail;
    }
    out.extend_from_slice(&adler2::adler32_slice(data).to_be_bytes());
}

/// Packs are read-only, as git leaves them.
fn write_read_only(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut opts = fs_err::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use fs_err::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o444);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    Ok(())
}

#[derive(Default)]
struct Dir {
    files: BTreeMap<String, (u32, ObjectId)>,
    dirs: BTreeMap<String, Dir>,
}

impl Dir {
    fn insert(&mut self, path: &str, mode: u32, id: ObjectId) -> Result<()> {
        match path.split_once('/') {
            Some((dir, rest)) if !dir.is_empty() => {
                if self.files.contains_key(dir) {
                    return Err(Error::new(format!(
                        "git: `{dir}` is both a file and a directory"
                    )));
                }
                self.dirs
                    .entry(dir.to_string())
                    .or_default()
                    .insert(rest, mode, id)
            }
            None if !path.is_empty() && !self.dirs.contains_key(path) => {
                self.files.insert(path.to_string(), (mode, id));
                Ok(())
            }
            _ => Err(Error::new(format!("git: cannot store the path `{path}`"))),
        }
    }

    /// Writes the subtrees, then this tree, in git's order: by name, a directory's name
    /// compared as if it ended in `/`.
    fn write(self, pack: &mut Pack) -> ObjectId {
        let mut entries: Vec<(String, u32, ObjectId)> = Vec::new();
        for (name, dir) in self.dirs {
            let id = dir.write(pack);
            entries.push((name, MODE_TREE, id));
        }
        entries.extend(self.files.into_iter().map(|(n, (m, id))| (n, m, id)));
        let key = |(name, mode, _): &(String, u32, ObjectId)| {
            let mut k = name.as_bytes().to_vec();
            if *mode == MODE_TREE {
                k.push(b'/');
            }
            k
        };
        entries.sort_by_key(key);
        let mut data = Vec::new();
        for (name, mode, id) in entries {
            data.extend_from_slice(format!("{mode:o} {name}\0").as_bytes());
            data.extend_from_slice(&id.0);
        }
        pack.add(Kind::Tree, &data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_git() {
        // `printf 'hello\n' | git hash-object --stdin`; the empty tree's well-known id.
        assert_eq!(
            object_id(Kind::Blob, b"hello\n").to_hex(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(
            object_id(Kind::Tree, b"").to_hex(),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    #[test]
    fn libgit2_reads_every_object_back() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let files: Vec<(&str, u32, &[u8])> = vec![
            ("a.txt", MODE_FILE, b"a\n"),
            ("a-b.txt", MODE_FILE, b"a-b\n"),
            ("a/x.rs", MODE_FILE, b"x\n"),
            ("a/y/z.rs", MODE_EXECUTABLE, b"#!/bin/sh\n"),
            ("b/empty", MODE_FILE, b""),
            ("b/same-as-a", MODE_FILE, b"a\n"),
            ("big.bin", MODE_FILE, &big),
        ];
        let mut pack = Pack::new();
        let ids: Vec<(&str, u32, ObjectId)> = files
            .iter()
            .map(|(p, m, c)| (*p, *m, pack.add(Kind::Blob, c)))
            .collect();
        let root = pack.add_tree(&ids).unwrap();
        pack.write(&dir.path().join(".git/objects/pack")).unwrap();

        let tree = repo
            .find_tree(git2::Oid::from_bytes(&root.0).unwrap())
            .unwrap();
        // The directory `a` sorts as "a/", after `a-b.txt` and `a.txt` ('-' < '.' < '/').
        let names: Vec<String> = tree.iter().map(|e| e.name().unwrap().to_string()).collect();
        assert_eq!(names, ["a-b.txt", "a.txt", "a", "b", "big.bin"]);
        for (path, mode, contents) in &files {
            let entry = tree.get_path(Path::new(path)).unwrap();
            assert_eq!(entry.filemode() as u32, *mode, "{path}");
            let blob = repo.find_blob(entry.id()).unwrap();
            assert_eq!(blob.content(), *contents, "{path}");
        }

        // libgit2 building the same tree from an index (loose objects) gets the same id.
        let other = tempfile::tempdir().unwrap();
        let repo2 = git2::Repository::init(other.path()).unwrap();
        let mut index = repo2.index().unwrap();
        for (path, mode, contents) in &files {
            let id = repo2.blob(contents).unwrap();
            let mut entry = index_entry_for_test(path, *mode, id);
            entry.file_size = contents.len() as u32;
            index.add(&entry).unwrap();
        }
        let expected = index.write_tree_to(&repo2).unwrap();
        assert_eq!(root.to_hex(), expected.to_string());
    }

    fn index_entry_for_test(path: &str, mode: u32, id: git2::Oid) -> git2::IndexEntry {
        git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode,
            uid: 0,
            gid: 0,
            file_size: 0,
            id,
            flags: path.len() as u16,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        }
    }

    #[test]
    fn stored_zlib_streams_inflate_back() {
        // Empty, one block, exactly one full block, and several blocks.
        for len in [0usize, 1, 100, 65_535, 65_536, 200_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut stream = Vec::new();
            zlib_stored(&mut stream, &data);
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&stream[..]), &mut back)
                .unwrap();
            assert_eq!(back, data, "{len} bytes");
        }
    }

    #[test]
    fn a_path_that_is_both_file_and_directory_is_refused() {
        let id = object_id(Kind::Blob, b"");
        let mut pack = Pack::new();
        assert!(
            pack.add_tree(&[("a", MODE_FILE, id), ("a/b", MODE_FILE, id)])
                .is_err()
        );
        assert!(
            pack.add_tree(&[("a/b", MODE_FILE, id), ("a", MODE_FILE, id)])
                .is_err()
        );
        assert!(pack.add_tree(&[("/a", MODE_FILE, id)]).is_err());
    }
}
