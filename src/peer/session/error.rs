//! Why a peer could not start or had to stop.

use crate::disk::storage::StorageError;
use crate::metainfo::selection::SelectionError;
use crate::metainfo::{InfoHash, MetainfoError};
use crate::peer::magnet_fetch::MagnetFetchError;
use crate::rpc::RpcError;
use crate::tracker::client::AnnounceError;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a peer could not start or had to stop.
#[derive(Debug)]
pub enum PeerError {
    /// A `.torrent` file could not be read.
    Torrent(MetainfoError),
    /// A torrent's files could not be opened in the folder.
    Storage(StorageError),
    /// `--only` does not fit a torrent.
    Selection {
        torrent: String,
        source: SelectionError,
    },
    /// The listening socket could not be bound.
    Bind { addr: SocketAddr, source: io::Error },
    /// The first announce failed and no `--connect` peer was given.
    Tracker {
        torrent: String,
        source: AnnounceError,
    },
    /// Two `--torrent` files are the same torrent.
    DuplicateTorrent(PathBuf),
    /// No `--torrent` was given.
    NoTorrents,
    /// Another I/O failure while starting (the listening socket, a thread that cannot start).
    Io(io::Error),
    /// A torrent stopped downloading because of a disk error; the pieces already written stay.
    DownloadFailed { torrent: String, reason: String },
    /// A magnet link's metadata could not be saved or is no valid torrent.
    Magnet {
        info_hash: InfoHash,
        source: MagnetFetchError,
    },
    /// The JSON API (`--rpc`) could not start.
    Rpc(RpcError),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::Torrent(e) => write!(f, "{e}"),
            PeerError::Storage(e) => write!(f, "{e}"),
            PeerError::Selection { torrent, source } => write!(f, "{torrent}: {source}"),
            PeerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            PeerError::Tracker { torrent, source } => write!(f, "{torrent}: {source}"),
            PeerError::DuplicateTorrent(p) => write!(f, "{}: torrent given twice", p.display()),
            PeerError::NoTorrents => {
                write!(f, "no torrent given (use --torrent FILE or --magnet URI)")
            }
            PeerError::Magnet { info_hash, source } => write!(f, "magnet {info_hash}: {source}"),
            PeerError::Io(e) => write!(f, "{e}"),
            PeerError::Rpc(e) => write!(f, "{e}"),
            PeerError::DownloadFailed { torrent, reason } => {
                write!(
                    f,
                    "{torrent}: download stopped: {reason} (verified pieces are kept)"
                )
            }
        }
    }
}

impl std::error::Error for PeerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PeerError::Torrent(e) => Some(e),
            PeerError::Storage(e) => Some(e),
            PeerError::Selection { source, .. } => Some(source),
            PeerError::Bind { source, .. } => Some(source),
            PeerError::Tracker { source, .. } => Some(source),
            PeerError::Io(e) => Some(e),
            PeerError::Magnet { source, .. } => Some(source),
            PeerError::Rpc(e) => Some(e),
            PeerError::DuplicateTorrent(_)
            | PeerError::NoTorrents
            | PeerError::DownloadFailed { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Metainfo;
    use std::error::Error;

    #[test]
    fn wrapped_errors_are_the_source_and_keep_their_message() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let bind = PeerError::Bind {
            addr,
            source: io::Error::new(io::ErrorKind::AddrInUse, "in use"),
        };
        assert_eq!(bind.to_string(), "cannot listen on 127.0.0.1:1: in use");
        assert_eq!(bind.source().unwrap().to_string(), "in use");
        let io = PeerError::Io(io::Error::other("broken"));
        assert_eq!(io.to_string(), "broken");
        assert_eq!(io.source().unwrap().to_string(), "broken");
        let torrent = Metainfo::from_bytes(b"not bencode").unwrap_err();
        let message = torrent.to_string();
        let wrapped = PeerError::Torrent(torrent);
        assert_eq!(wrapped.to_string(), message);
        assert_eq!(wrapped.source().unwrap().to_string(), message);
        assert!(PeerError::NoTorrents.source().is_none());
        let failed = PeerError::DownloadFailed {
            torrent: "t".into(),
            reason: "disk full".into(),
        };
        assert!(failed.source().is_none());
    }
}
