//! A session that remembers: the torrents added while a peer runs are listed in
//! `DIR/.piecemeal/session.json` (info hash, magnet link, paused, chosen files, limits), with
//! the process-wide rate limits last set while it ran, and with a
//! copy of each `.torrent` in `DIR/.piecemeal/torrents/HASH.torrent`, so the next start runs
//! them again. Their pieces come back from their resume records ([`crate::disk::resume`]), so
//! a finished torrent does not download again. Torrents given with `--torrent` or `--magnet`
//! are not stored: the command line gives them each time.
//!
//! The list is replaced atomically (a temporary file, then a rename). A list that cannot be
//! read (torn, or another program's) is a one-line warning and an empty session, never a
//! failed start.

use crate::disk::resume;
use crate::metainfo::magnet::Magnet;
use crate::metainfo::{InfoHash, Metainfo};
use crate::peer::session::entry::{Entry, magnet_link};
use crate::rpc::control::Limits;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The list's format version; another one is refused like a torn file.
const VERSION: u32 = 1;

/// One stored torrent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredTorrent {
    /// The info hash in hex.
    pub info_hash: String,
    /// The magnet link it was added by, if any (fetched again when its `.torrent` copy is
    /// missing).
    #[serde(default)]
    pub magnet: Option<String>,
    #[serde(default)]
    pub paused: bool,
    /// The indexes of the files to fetch; none for every file.
    #[serde(default)]
    pub wanted: Option<Vec<usize>>,
    #[serde(default)]
    pub limits: Limits,
}

/// What the list holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Saved {
    pub torrents: Vec<StoredTorrent>,
    /// The process-wide limits last set at run time (`set_limits`), if ever.
    pub limits: Option<Limits>,
}

#[derive(Serialize, Deserialize)]
struct SessionFile {
    version: u32,
    torrents: Vec<StoredTorrent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limits: Option<Limits>,
}

/// Why the list could not be read or written.
#[derive(Debug)]
pub enum StoreError {
    /// The file is there but is no session list of this version.
    Unreadable { path: PathBuf, why: String },
    /// Writing it failed.
    Write { path: PathBuf, source: io::Error },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unreadable { path, why } => write!(
                f,
                "{}: {why}; starting without the torrents stored there",
                path.display()
            ),
            StoreError::Write { path, source } => {
                write!(f, "cannot save the session in {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Write { source, .. } => Some(source),
            StoreError::Unreadable { .. } => None,
        }
    }
}

/// Where the list lives in the peer folder `dir`.
pub fn session_path(dir: &Path) -> PathBuf {
    dir.join(".piecemeal").join("session.json")
}

/// Where the copy of torrent `hash` lives in the peer folder `dir`.
pub fn torrent_path(dir: &Path, hash: &InfoHash) -> PathBuf {
    dir.join(".piecemeal")
        .join("torrents")
        .join(format!("{}.torrent", hash.hex()))
}

/// The list's bytes.
pub fn encode(saved: &Saved) -> Vec<u8> {
    let file = SessionFile {
        version: VERSION,
        torrents: saved.torrents.clone(),
        limits: saved.limits,
    };
    serde_json::to_vec_pretty(&file).unwrap_or_default()
}

/// The list from its bytes; `Err` says what is wrong.
pub fn decode(bytes: &[u8]) -> Result<Saved, String> {
    let file: SessionFile =
        serde_json::from_slice(bytes).map_err(|e| format!("not a session list ({e})"))?;
    if file.version != VERSION {
        return Err(format!(
            "session list version {} is not {VERSION}",
            file.version
        ));
    }
    Ok(Saved {
        torrents: file.torrents,
        limits: file.limits,
    })
}

/// The stored list of `dir` (empty when there is none, or with a warning when it is torn).
pub fn load(dir: &Path) -> Saved {
    let path = session_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        // None stored (or no folder yet, or a folder that is a file: its own error follows).
        Err(_) if !path.exists() => return Saved::default(),
        Err(e) => {
            log::warn!(
                "{}",
                StoreError::Unreadable {
                    path,
                    why: e.to_string()
                }
            );
            return Saved::default();
        }
    };
    decode(&bytes).unwrap_or_else(|why| {
        log::warn!("{}", StoreError::Unreadable { path, why });
        Saved::default()
    })
}

/// Whether `dir` holds a readable list with torrents in it (without a word when not).
pub fn has_torrents(dir: &Path) -> bool {
    let bytes = std::fs::read(session_path(dir)).unwrap_or_default();
    decode(&bytes).is_ok_and(|list| !list.torrents.is_empty())
}

/// Replaces the list of `dir` with `torrents`, atomically.
pub fn save(dir: &Path, saved: &Saved) -> Result<(), StoreError> {
    let path = session_path(dir);
    let fail = |path: &Path, source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let temp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let write = || -> io::Result<()> {
        std::fs::create_dir_all(dir.join(".piecemeal"))?;
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&encode(saved))?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&temp);
        return Err(fail(&temp, e));
    }
    std::fs::rename(&temp, &path).map_err(|e| fail(&path, e))
}

/// Keeps `bytes` (a `.torrent`) at `path`, the folders above made as needed.
pub fn keep(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    std::fs::write(path, bytes)
}

/// Keeps a copy of the `.torrent` at `from` at `to`.
pub fn keep_copy(from: &Path, to: &Path) -> io::Result<()> {
    keep(to, &std::fs::read(from)?)
}

/// What to store of the session's torrents (those not from the command line).
pub(crate) fn stored(entries: &[Entry]) -> Vec<StoredTorrent> {
    (entries.iter().filter(|e| !e.from_cli))
        .map(|e| StoredTorrent {
            info_hash: e.info_hash.hex(),
            magnet: e.magnet.as_ref().map(magnet_link),
            paused: e.paused,
            wanted: e.wanted.as_ref().map(|w| {
                (w.iter().enumerate())
                    .filter(|(_, w)| **w)
                    .map(|(i, _)| i)
                    .collect()
            }),
            limits: e.limits,
        })
        .collect()
}

/// The entries of the stored torrents of `dir`, but those in `skip` (given on the command
/// line) and those whose `.torrent` and magnet link are both gone (a warning each).
pub(crate) fn restore(
    dir: &Path,
    stored: Vec<StoredTorrent>,
    skip: &HashSet<InfoHash>,
    added: Instant,
) -> Vec<Entry> {
    let mut seen = skip.clone();
    let mut entries = Vec::new();
    for s in stored {
        let Some(hash) = InfoHash::from_hex(&s.info_hash.to_ascii_lowercase()) else {
            log::warn!(
                "stored torrent {:?}: not an info hash, skipped",
                s.info_hash
            );
            continue;
        };
        if !seen.insert(hash) {
            continue;
        }
        let copy = torrent_path(dir, &hash);
        let meta = match Metainfo::load(&copy) {
            Ok(meta) if meta.info_hash == hash => Some(meta),
            Ok(_) => None,
            Err(e) => {
                log::info!("stored torrent {hash}: {e}");
                None
            }
        };
        let magnet = s.magnet.as_deref().and_then(|m| Magnet::parse(m).ok());
        if meta.is_none() && magnet.is_none() {
            log::warn!(
                "stored torrent {hash}: {} is missing, skipped",
                copy.display()
            );
            continue;
        }
        let mut entry = Entry::new(hash, meta, added);
        entry.magnet = magnet;
        entry.paused = s.paused;
        entry.limits = s.limits;
        if let Some(meta) = &entry.meta {
            let files = meta.info.files.len();
            entry.wanted = s
                .wanted
                .map(|w| (0..files).map(|i| w.contains(&i)).collect());
            // What a paused torrent shows until it runs again.
            let record = resume::load(&resume::path_for(dir, &hash), &hash, &meta.info);
            entry.have = record.ok().map(|r| r.pieces);
        }
        entries.push(entry);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<StoredTorrent> {
        vec![
            StoredTorrent {
                info_hash: "ab".repeat(20),
                magnet: None,
                paused: true,
                wanted: Some(vec![0, 2]),
                limits: Limits {
                    upload: 1000,
                    download: 0,
                },
            },
            StoredTorrent {
                info_hash: "cd".repeat(20),
                magnet: Some(format!("magnet:?xt=urn:btih:{}", "cd".repeat(20))),
                paused: false,
                wanted: None,
                limits: Limits::default(),
            },
        ]
    }

    fn saved() -> Saved {
        Saved {
            torrents: sample(),
            limits: Some(Limits {
                upload: 5000,
                download: 7000,
            }),
        }
    }

    #[test]
    fn a_list_reads_back_as_written() {
        assert_eq!(decode(&encode(&saved())), Ok(saved()));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), Saved::default());
        save(dir.path(), &saved()).unwrap();
        assert_eq!(load(dir.path()), saved());
        save(dir.path(), &Saved::default()).unwrap();
        assert_eq!(load(dir.path()), Saved::default());
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path().join(".piecemeal"))
            .unwrap()
            .collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn a_list_from_before_the_limits_were_kept_reads_without_them() {
        let old = format!(
            "{{\"version\": 1, \"torrents\": [{{\"info_hash\": \"{}\"}}]}}",
            "ab".repeat(20)
        );
        let saved = decode(old.as_bytes()).unwrap();
        assert_eq!((saved.torrents.len(), saved.limits), (1, None));
    }

    #[test]
    fn a_torn_or_foreign_list_is_refused_with_a_reason_and_loads_empty() {
        let whole = encode(&saved());
        let torn = &whole[..whole.len() / 2];
        assert!(decode(torn).unwrap_err().contains("not a session list"));
        assert!(
            decode(b"{\"version\": 7, \"torrents\": []}")
                .unwrap_err()
                .contains("version 7")
        );
        assert!(decode(b"[1, 2]").is_err());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".piecemeal")).unwrap();
        std::fs::write(session_path(dir.path()), torn).unwrap();
        assert_eq!(load(dir.path()), Saved::default());
    }

    #[test]
    fn restore_skips_command_line_torrents_and_ones_without_a_source() {
        let dir = tempfile::tempdir().unwrap();
        let given = InfoHash::from_hex(&"ab".repeat(20)).unwrap();
        let entries = restore(
            dir.path(),
            sample(),
            &HashSet::from([given]),
            Instant::now(),
        );
        // The first is given on the command line; the second has its magnet link.
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].info_hash.hex(), "cd".repeat(20));
        assert!(entries[0].meta.is_none() && entries[0].magnet.is_some());
        let entries = restore(dir.path(), sample(), &HashSet::new(), Instant::now());
        // The first has neither its .torrent copy nor a magnet link.
        assert_eq!(entries.len(), 1);
    }
}
