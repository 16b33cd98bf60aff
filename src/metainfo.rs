//! BEP 3 `.torrent` files: parsing with validation, the info hash, and creating new torrents.
//!
//! CONTRACT (types are fixed; helper A implements the functions).

use std::fmt;

/// SHA-1 of the bencoded `info` dictionary exactly as it stands in the file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// 40 lowercase hex characters.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 40 hex characters (either case).
    pub fn from_hex(s: &str) -> Option<InfoHash> {
        if s.len() != 40 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(InfoHash(out))
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.hex())
    }
}

/// One file of a torrent, in the order the `info` dictionary lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components below the torrent's root; validated (no empty, `.`, `..`, separators, NUL).
    /// For a single-file torrent this is `[name]`.
    pub path: Vec<String>,
    pub length: u64,
}

/// The validated `info` dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub piece_length: u64,
    pub pieces: Vec<[u8; 20]>,
    /// Every file; a single-file torrent has exactly one entry whose path is `[name]`.
    pub files: Vec<FileEntry>,
    /// True when the torrent used the `files` list: files live under a folder called `name`.
    pub multi_file: bool,
    pub private: bool,
}

impl Info {
    /// Sum of all file lengths.
    pub fn total_length(&self) -> u64 {
        self.files.iter().map(|f| f.length).sum()
    }

    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Length of piece `index`: `piece_length` except for a shorter last piece.
    pub fn piece_size(&self, index: usize) -> u64 {
        let start = index as u64 * self.piece_length;
        self.piece_length.min(self.total_length().saturating_sub(start))
    }

    /// Path of a file relative to the download folder (`name/...` for multi-file torrents).
    pub fn relative_path(&self, file: &FileEntry) -> std::path::PathBuf {
        let mut p = std::path::PathBuf::new();
        if self.multi_file {
            p.push(&self.name);
        }
        for c in &file.path {
            p.push(c);
        }
        p
    }
}

/// A parsed `.torrent` file.
#[derive(Clone, Debug)]
pub struct Metainfo {
    pub announce: Option<String>,
    /// BEP 12 tiers, as in the file (empty when absent).
    pub announce_list: Vec<Vec<String>>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    pub creation_date: Option<i64>,
    pub info: Info,
    pub info_hash: InfoHash,
}

impl Metainfo {
    /// Tracker tiers to use: `announce-list` when present (BEP 12), else `[[announce]]`.
    pub fn tracker_tiers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            return self.announce_list.clone();
        }
        self.announce.iter().map(|a| vec![a.clone()]).collect()
    }
}
