//! Fast resume: a small record per torrent, in `<peer folder>/.piecemeal/<info hash>.resume`,
//! of which pieces are verified and each file's size and modification time, so that a restart
//! whose files are as recorded skips hashing them.
//!
//! The file is a header line, `piecemeal-resume <SHA-1 of the rest, hex>`, then a JSON body:
//! `{"version":1,"info_hash":"..","piece_count":N,"pieces":"<bitfield, hex>","files":[{"length":..,
//! "mtime_ns":..} or null (absent), ..],"stamped_at_ns":..}`. It is replaced atomically ([`save`]: a temporary file
//! in the same folder, fsynced, renamed over the old one, then the folder fsynced), so a reader
//! sees the old record or the new one. A missing, torn (checksum), foreign (another info hash),
//! other-version or ill-shaped record means a full check ([`CheckPlan::everything`]).
//!
//! **Never claim a piece that is not on disk.** The caller ([`crate::peer::resume_saving`])
//! stamps the files, then takes the verified set (a piece is marked verified only once its
//! `pwrite`s returned), then fsyncs the files written since the last record, then saves the
//! record. A piece written after the stamps changes its file's modification time, or falls in
//! the racy window ([`ResumeRecord::is_racy`]), so its file is hashed at the next start. A SIGKILL keeps written bytes (they are in the page cache) and leaves either record;
//! a power loss cannot lose bytes a record claims, since they were on disk before the record
//! was renamed in. Pieces written after the record are simply not claimed: their files' stamps
//! changed, so the pieces touching those files are hashed again at start.

use super::StorageError;
use crate::bitfield::Bitfield;
use crate::metainfo::{Info, InfoHash};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The record format written by this version.
pub const VERSION: u32 = 1;
const MAGIC: &str = "piecemeal-resume";

/// What identifies a file's content cheaply: its size and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// Bytes.
    pub length: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
}

impl FileStamp {
    /// The stamp of the file at `path` now, `None` if there is none.
    pub fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        Some(FileStamp {
            length: meta.len(),
            mtime_ns: mtime.as_nanos() as u64,
        })
    }
}

/// What the start-up check does: pieces taken as verified without hashing, and pieces to hash.
/// Pieces in neither are missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckPlan {
    /// Verified, by a record whose files have not changed since.
    pub trusted: Bitfield,
    /// To hash: every piece without a usable record, else those touching a changed file.
    pub to_hash: Bitfield,
}

impl CheckPlan {
    /// The full check: trust nothing, hash every piece.
    pub fn everything(pieces: usize) -> CheckPlan {
        CheckPlan {
            trusted: Bitfield::new(pieces),
            to_hash: Bitfield::full(pieces),
        }
    }
}

/// One torrent's resume record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeRecord {
    /// The torrent it describes.
    pub info_hash: InfoHash,
    /// Pieces verified and written.
    pub pieces: Bitfield,
    /// Each file's stamp when the record was taken, in `info` order.
    pub files: Vec<Option<FileStamp>>,
    /// When the stamps were taken, nanoseconds since the Unix epoch.
    pub stamped_at_ns: u64,
}

#[derive(Serialize, Deserialize)]
struct Body {
    version: u32,
    info_hash: String,
    piece_count: usize,
    pieces: String,
    files: Vec<Option<FileStamp>>,
    stamped_at_ns: u64,
}

/// Why a record cannot be used (each means a full check), or could not be written.
#[derive(Debug)]
pub enum ResumeError {
    /// No record, or it could not be read.
    Unreadable(io::Error),
    /// Cut short or damaged: its checksum does not match.
    Torn,
    /// Written by another version of the format.
    Version(u32),
    /// It describes another torrent.
    Foreign(String),
    /// Its pieces or files do not fit the torrent.
    Shape(String),
    /// Writing it failed.
    Write(StorageError),
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumeError::Unreadable(e) => write!(f, "no resume record ({e})"),
            ResumeError::Torn => write!(f, "the resume record is torn or damaged"),
            ResumeError::Version(v) => write!(f, "the resume record is format {v}, not {VERSION}"),
            ResumeError::Foreign(h) => write!(f, "the resume record is for torrent {h}"),
            ResumeError::Shape(what) => write!(f, "the resume record does not fit: {what}"),
            ResumeError::Write(e) => write!(f, "cannot save the resume record: {e}"),
        }
    }
}

impl std::error::Error for ResumeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ResumeError::Unreadable(e) => Some(e),
            ResumeError::Write(e) => Some(e),
            _ => None,
        }
    }
}

impl ResumeRecord {
    /// The record's bytes: the checksummed header line, then the JSON body.
    pub fn encode(&self) -> Vec<u8> {
        let body = Body {
            version: VERSION,
            info_hash: self.info_hash.hex(),
            piece_count: self.pieces.len(),
            pieces: hex(self.pieces.as_bytes()),
            files: self.files.clone(),
            stamped_at_ns: self.stamped_at_ns,
        };
        let json = serde_json::to_vec(&body).expect("a record serialises");
        let sum = sha1_smol::Sha1::from(&json).digest().to_string();
        [format!("{MAGIC} {sum}\n").into_bytes(), json].concat()
    }

    /// Reads a record for the torrent `info_hash`/`info`, checking everything it claims.
    pub fn decode(
        bytes: &[u8],
        info_hash: &InfoHash,
        info: &Info,
    ) -> Result<ResumeRecord, ResumeError> {
        let newline = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(ResumeError::Torn)?;
        let (header, json) = (&bytes[..newline], &bytes[newline + 1..]);
        let want = format!("{MAGIC} {}", sha1_smol::Sha1::from(json).digest());
        if header != want.as_bytes() {
            return Err(ResumeError::Torn);
        }
        let body: Body = serde_json::from_slice(json)
            .map_err(|e| ResumeError::Shape(format!("unreadable body: {e}")))?;
        if body.version != VERSION {
            return Err(ResumeError::Version(body.version));
        }
        if body.info_hash != info_hash.hex() {
            return Err(ResumeError::Foreign(body.info_hash));
        }
        if body.piece_count != info.piece_count() || body.files.len() != info.files.len() {
            return Err(ResumeError::Shape(format!(
                "{} pieces and {} files",
                body.piece_count,
                body.files.len()
            )));
        }
        let pieces = unhex(&body.pieces)
            .and_then(|b| Bitfield::from_bytes(&b, body.piece_count).ok())
            .ok_or_else(|| ResumeError::Shape("bad piece set".into()))?;
        Ok(ResumeRecord {
            info_hash: *info_hash,
            pieces,
            files: body.files,
            stamped_at_ns: body.stamped_at_ns,
        })
    }

    /// Whether a file's recorded stamp is `racy`: modified so shortly before the stamps were
    /// taken that a later write could have left the same modification time (timestamps tick
    /// coarsely: a kernel tick on ext4, a second or two on older filesystems). Such a file is
    /// hashed again at start, however it looks.
    pub fn is_racy(&self, stamp: &Option<FileStamp>) -> bool {
        stamp.is_some_and(|s| s.mtime_ns.saturating_add(RACY_NS) > self.stamped_at_ns)
    }

    /// Whether any file's stamp is racy (a later save, past [`RACY_NS`], would settle it).
    pub fn has_racy_files(&self) -> bool {
        self.files.iter().any(|s| self.is_racy(s))
    }
}

/// How recent a modification (before the stamps were taken) makes a file's stamp racy.
pub const RACY_NS: u64 = 2_000_000_000;

/// The current time for [`ResumeRecord::stamped_at_ns`].
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Where the record of torrent `info_hash` lives in the peer folder `dir`.
pub fn path_for(dir: &Path, info_hash: &InfoHash) -> PathBuf {
    dir.join(".piecemeal")
        .join(format!("{}.resume", info_hash.hex()))
}

/// Reads and checks the record at `path`.
pub fn load(path: &Path, info_hash: &InfoHash, info: &Info) -> Result<ResumeRecord, ResumeError> {
    let bytes = std::fs::read(path).map_err(ResumeError::Unreadable)?;
    ResumeRecord::decode(&bytes, info_hash, info)
}

/// The start-up check for files whose stamps are `now`: trust the record's pieces except those
/// touching a file whose stamp changed or was racy, which are hashed again.
pub fn plan(record: &ResumeRecord, now: &[Option<FileStamp>], info: &Info) -> CheckPlan {
    let mut to_hash = Bitfield::new(info.piece_count());
    let mut offset = 0u64;
    for ((entry, then), now) in info.files.iter().zip(&record.files).zip(now) {
        if (then != now || record.is_racy(then)) && entry.length > 0 {
            let first = offset / info.piece_length;
            let last = (offset + entry.length - 1) / info.piece_length;
            for index in first..=last {
                to_hash.set(index as usize);
            }
        }
        offset += entry.length;
    }
    let mut trusted = Bitfield::new(info.piece_count());
    for index in record.pieces.ones().filter(|&i| !to_hash.get(i)) {
        trusted.set(index);
    }
    CheckPlan { trusted, to_hash }
}

/// Replaces the record at `path` atomically and durably (see the module doc).
pub fn save(path: &Path, record: &ResumeRecord) -> Result<(), ResumeError> {
    let fail = |action, path: &Path, source| {
        ResumeError::Write(StorageError {
            path: path.to_path_buf(),
            action,
            source,
        })
    };
    let folder = path.parent().expect("a record path has a folder");
    std::fs::create_dir_all(folder).map_err(|e| fail("create folder", folder, e))?;
    // Named per process, so two peers sharing a folder never write into one temporary file.
    let temp = path.with_extension(format!("resume.{}.tmp", std::process::id()));
    let write = || -> io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&record.encode())?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&temp);
        return Err(fail("write", &temp, e));
    }
    std::fs::rename(&temp, path).map_err(|e| fail("rename", path, e))?;
    std::fs::File::open(folder)
        .and_then(|f| f.sync_all())
        .map_err(|e| fail("sync", folder, e))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
