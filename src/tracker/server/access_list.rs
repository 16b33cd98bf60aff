//! Which torrents the tracker serves: all of them, only those on a whitelist, or all but those
//! on a blacklist. A list is a file of info hashes, 40 hex characters per line, with `#`
//! comments and blank lines ignored; [`AccessList::reload`] reads it again (on `SIGHUP`).

use crate::lock::{read, write};
use crate::metainfo::InfoHash;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Whether a list names the torrents served or the ones refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Whitelist,
    Blacklist,
}

/// Why a list could not be read.
#[derive(Debug)]
pub enum AccessListError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line that is neither an info hash, a comment nor blank (line numbers count from 1).
    BadLine { path: PathBuf, line: usize },
}

impl fmt::Display for AccessListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessListError::Read { path, source } => {
                write!(f, "cannot read access list {}: {source}", path.display())
            }
            AccessListError::BadLine { path, line } => write!(
                f,
                "{}:{line}: expected an info hash of 40 hex characters (or a # comment)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for AccessListError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AccessListError::Read { source, .. } => Some(source),
            AccessListError::BadLine { .. } => None,
        }
    }
}

/// Parses a list's text; `Err` holds the number of the first bad line.
pub fn parse(text: &str) -> Result<HashSet<InfoHash>, usize> {
    let mut hashes = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        hashes.insert(InfoHash::from_hex(line).ok_or(n + 1)?);
    }
    Ok(hashes)
}

/// The tracker's access list, shared by every worker; cheap to check.
pub struct AccessList {
    rule: Option<(Mode, PathBuf)>,
    hashes: RwLock<Arc<HashSet<InfoHash>>>,
}

impl AccessList {
    /// Serves every torrent.
    pub fn open() -> AccessList {
        AccessList {
            rule: None,
            hashes: RwLock::new(Arc::default()),
        }
    }

    /// Reads the list at `path`, used as `mode`.
    pub fn load(mode: Mode, path: &Path) -> Result<AccessList, AccessListError> {
        let list = AccessList {
            rule: Some((mode, path.to_path_buf())),
            hashes: RwLock::new(Arc::default()),
        };
        list.reload()?;
        Ok(list)
    }

    /// Reads the file again; on an error the list in use stays. Returns the number of hashes.
    pub fn reload(&self) -> Result<usize, AccessListError> {
        let Some((_, path)) = &self.rule else {
            return Ok(0);
        };
        let text = std::fs::read_to_string(path).map_err(|source| AccessListError::Read {
            path: path.clone(),
            source,
        })?;
        let hashes = parse(&text).map_err(|line| AccessListError::BadLine {
            path: path.clone(),
            line,
        })?;
        let count = hashes.len();
        *write(&self.hashes) = Arc::new(hashes);
        Ok(count)
    }

    /// `Err` with the reason to give the client when `info_hash` is not served.
    pub fn check(&self, info_hash: &InfoHash) -> Result<(), &'static str> {
        let Some((mode, _)) = &self.rule else {
            return Ok(());
        };
        let listed = read(&self.hashes).contains(info_hash);
        match (mode, listed) {
            (Mode::Whitelist, false) => Err("torrent not on this tracker's whitelist"),
            (Mode::Blacklist, true) => Err("torrent is blacklisted on this tracker"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hashes_comments_and_blank_lines() {
        let text = format!(
            "# torrents\n\n{}  # one\n{}\n",
            "ab".repeat(20),
            "CD".repeat(20)
        );
        let hashes = parse(&text).unwrap();
        assert_eq!(hashes.len(), 2);
        assert!(hashes.contains(&InfoHash([0xcd; 20])));
        assert_eq!(parse("# ok\nnot a hash\n"), Err(2));
        assert_eq!(parse(&"a".repeat(39)), Err(1));
    }

    #[test]
    fn modes_refuse_the_right_torrents_and_reload_keeps_old_list_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list");
        std::fs::write(&path, "11".repeat(20)).unwrap();
        let white = AccessList::load(Mode::Whitelist, &path).unwrap();
        let black = AccessList::load(Mode::Blacklist, &path).unwrap();
        let (listed, other) = (InfoHash([0x11; 20]), InfoHash([0x22; 20]));
        assert!(white.check(&listed).is_ok() && white.check(&other).is_err());
        assert!(black.check(&listed).is_err() && black.check(&other).is_ok());
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(
            white.reload(),
            Err(AccessListError::BadLine { line: 1, .. })
        ));
        assert!(white.check(&listed).is_ok(), "the old list stays in use");
        std::fs::write(&path, "22".repeat(20)).unwrap();
        assert_eq!(white.reload().unwrap(), 1);
        assert!(white.check(&other).is_ok() && white.check(&listed).is_err());
        assert!(AccessList::open().check(&other).is_ok());
    }
}
