//! BEP 3 `.torrent` files: parsing with validation, the info hash, creating new torrents and
//! describing them.
//!
//! Parsing ([`Metainfo::from_bytes`], [`Metainfo::load`]) validates everything a peer relies on
//! before any of it touches the disk or the network:
//! - `announce` is optional (trackerless torrents exist; the peer can be given `--tracker` or
//!   `--connect`), but when present it must be a non-empty UTF-8 string; `announce-list` must be
//!   a list of lists of non-empty UTF-8 strings (empty tiers are dropped).
//! - `info.name` and every `info.files[].path` component must be UTF-8 and a plain file name:
//!   not empty, not `.` or `..`, no `/`, `\` or NUL. Non-UTF-8 names are rejected rather than
//!   guessed at (the `name.utf-8` extension is not consulted).
//! - Exactly one of `length` and `files`; no two files may share a path or have one file's path
//!   be a folder of another's.
//! - `piece length` in 1..=[`MAX_PIECE_LENGTH`], total size in 1..=[`MAX_TOTAL_LENGTH`], at most
//!   [`MAX_FILES`] files, and `pieces` holding exactly `ceil(total / piece length)` hashes.
//! - `private` must be 0 or 1. `comment` and `created by` are decoded lossily: they are only shown.
//!
//! The info hash is the SHA-1 of the `info` value's bytes exactly as they stand in the file, so
//! torrents with unsorted keys keep the hash other clients compute.

// This file holds what the parts share: the types, the size limits and the error. Each part has
// a file of its own: the info hash, parsing and validation, making a torrent, and showing one.

mod create;
#[cfg(test)]
mod fixtures;
mod info_hash;
pub mod magnet;
mod parse;
pub mod selection;
pub(crate) mod show;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::bencode::BencodeError;

pub use create::{CreateOptions, MIN_CREATE_PIECE_LENGTH, create};
pub use info_hash::InfoHash;

/// One file of a torrent, in the order the `info` dictionary lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components below the torrent's root; validated (no empty, `.`, `..`, separators, NUL).
    /// For a single-file torrent this is `[name]`.
    pub path: Vec<String>,
    /// Size in bytes.
    pub length: u64,
}

/// The validated `info` dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// The file name of a single-file torrent, or the folder name of a multi-file one.
    pub name: String,
    /// Bytes per piece; only the last piece may be shorter.
    pub piece_length: u64,
    /// SHA-1 of each piece, in order.
    pub pieces: Vec<[u8; 20]>,
    /// Every file; a single-file torrent has exactly one entry whose path is `[name]`.
    pub files: Vec<FileEntry>,
    /// True when the torrent used the `files` list: files live under a folder called `name`.
    pub multi_file: bool,
    /// BEP 27 `private` flag.
    pub private: bool,
}

impl Info {
    /// Sum of all file lengths.
    pub fn total_length(&self) -> u64 {
        self.files.iter().map(|f| f.length).sum()
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Length of piece `index`: `piece_length` except for a shorter last piece. Only the last
    /// piece needs the total length, so the common case costs nothing per call.
    pub fn piece_size(&self, index: usize) -> u64 {
        if index + 1 < self.pieces.len() {
            return self.piece_length;
        }
        let start = index as u64 * self.piece_length;
        self.piece_length
            .min(self.total_length().saturating_sub(start))
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
    /// The tracker URL, when the torrent names one.
    pub announce: Option<String>,
    /// BEP 12 tiers, as in the file (empty when absent).
    pub announce_list: Vec<Vec<String>>,
    /// Free text, decoded lossily; only shown.
    pub comment: Option<String>,
    /// The program that made the torrent, decoded lossily; only shown.
    pub created_by: Option<String>,
    /// Unix timestamp; only shown.
    pub creation_date: Option<i64>,
    /// The validated `info` dictionary.
    pub info: Info,
    /// SHA-1 of the `info` value's bytes as they stand in the file.
    pub info_hash: InfoHash,
    /// The `info` value's bytes as they stand in the file: what a peer serves as the torrent's
    /// metadata (BEP 9).
    pub info_bytes: RawInfo,
}

/// The bytes of an `info` dictionary, shared (a torrent's may run to megabytes) and shown
/// by their length only.
#[derive(Clone, PartialEq, Eq)]
pub struct RawInfo(pub std::sync::Arc<[u8]>);

impl fmt::Debug for RawInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawInfo({} bytes)", self.0.len())
    }
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

/// Largest accepted piece length (64 MiB); a peer buffers whole pieces in memory.
pub const MAX_PIECE_LENGTH: u64 = 64 << 20;
/// Largest accepted total size (1 PiB); anything bigger is a corrupt or hostile torrent.
pub const MAX_TOTAL_LENGTH: u64 = 1 << 50;
/// Most files accepted in one torrent.
pub const MAX_FILES: usize = 1_000_000;
/// Largest `.torrent` file [`Metainfo::load`] reads.
pub const MAX_TORRENT_FILE_SIZE: u64 = 64 << 20;

/// Why a torrent could not be parsed, loaded or created.
#[derive(Debug)]
pub enum MetainfoError {
    /// Reading a file failed.
    Io { path: PathBuf, source: io::Error },
    /// The bytes are not valid bencode.
    Bencode(BencodeError),
    /// A field is missing, has the wrong type, or an unacceptable value. `field` is a dotted path
    /// such as `info.files[2].path[0]`.
    Invalid { field: String, problem: String },
    /// [`create()`] cannot make a torrent from this file or folder.
    Content { path: PathBuf, problem: String },
    /// An error in the torrent file at `path`.
    InFile {
        path: PathBuf,
        error: Box<MetainfoError>,
    },
}

impl fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetainfoError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            MetainfoError::Bencode(e) => e.fmt(f),
            MetainfoError::Invalid { field, problem } => write!(f, "{field} {problem}"),
            MetainfoError::Content { path, problem } => write!(f, "{}: {problem}", path.display()),
            MetainfoError::InFile { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for MetainfoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetainfoError::Io { source, .. } => Some(source),
            MetainfoError::Bencode(e) => Some(e),
            MetainfoError::InFile { error, .. } => Some(error.as_ref()),
            MetainfoError::Invalid { .. } | MetainfoError::Content { .. } => None,
        }
    }
}

impl From<BencodeError> for MetainfoError {
    fn from(e: BencodeError) -> Self {
        MetainfoError::Bencode(e)
    }
}

/// An [`MetainfoError::Invalid`] for `field` (a dotted path such as `info.piece length`).
fn invalid(field: &str, problem: impl Into<String>) -> MetainfoError {
    MetainfoError::Invalid {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// An [`MetainfoError::Io`] naming the file or folder that could not be read.
fn io_error(path: &Path, source: io::Error) -> MetainfoError {
    MetainfoError::Io {
        path: path.to_path_buf(),
        source,
    }
}
