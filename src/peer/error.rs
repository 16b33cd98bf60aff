//! Why a peer connection ended: the one error type of the handshake and the message loop, so
//! both directions of a connection end up in the same log line.

use crate::bitfield::BitfieldError;
use crate::metainfo::InfoHash;
use crate::wire::WireError;
use crate::wire::extended::ExtError;
use std::fmt;
use std::time::Duration;

/// Why a connection ended abnormally.
#[derive(Debug)]
pub enum ConnError {
    /// The stream failed, closed, or carried something that is not the peer protocol.
    Wire(WireError),
    /// A bitfield that does not fit the torrent.
    BadBitfield(BitfieldError),
    /// A request outside the torrent or over the block size limit.
    BadRequest { index: u32, begin: u32, length: u32 },
    /// A `have` for a piece the torrent does not have.
    BadHave(u32),
    /// This many pieces from the peer failed their hash; it is banned.
    BadPieces(u32),
    /// The peer sent nothing at all for this long.
    Idle(Duration),
    /// The peer left our requests unanswered too long.
    Snubbed,
    /// The losing half of a simultaneous open: the other connection to this peer stays.
    Duplicate,
    /// The handshake named a torrent this peer does not serve (or, dialling out, another one).
    WrongTorrent(InfoHash),
    /// We dialled ourselves (our own address came back from a tracker).
    OurOwnPeer,
    /// The connection limit (this many) is reached and every open connection is busy.
    TooManyConnections(usize),
    /// The peer was banned earlier for sending bad data.
    Banned,
    /// An extended handshake (BEP 10) that cannot be parsed.
    Extension(ExtError),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Wire(e) => write!(f, "{e}"),
            ConnError::BadBitfield(e) => write!(f, "{e}"),
            ConnError::BadRequest {
                index,
                begin,
                length,
            } => {
                write!(
                    f,
                    "invalid request: piece {index}, offset {begin}, length {length}"
                )
            }
            ConnError::BadHave(i) => write!(f, "have for piece {i}, past the end of the torrent"),
            ConnError::BadPieces(n) => write!(f, "sent {n} pieces that failed their hash"),
            ConnError::Idle(d) => write!(f, "silent for {}s", d.as_secs()),
            ConnError::Snubbed => write!(f, "left our requests unanswered"),
            ConnError::Duplicate => write!(f, "already connected to this peer"),
            ConnError::TooManyConnections(n) => {
                write!(f, "{n} connections open, none idle to make room")
            }
            ConnError::WrongTorrent(h) => {
                write!(f, "handshake for a torrent not served here ({h})")
            }
            ConnError::OurOwnPeer => write!(f, "that is this peer itself"),
            ConnError::Banned => write!(f, "banned for sending bad data"),
            ConnError::Extension(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnError::Wire(e) => Some(e),
            ConnError::BadBitfield(e) => Some(e),
            ConnError::Extension(e) => Some(e),
            _ => None,
        }
    }
}

impl From<WireError> for ConnError {
    fn from(e: WireError) -> Self {
        ConnError::Wire(e)
    }
}

impl From<std::io::Error> for ConnError {
    fn from(e: std::io::Error) -> Self {
        ConnError::Wire(WireError::Io(e))
    }
}

/// How a connection ended, for logs.
pub fn outcome<E: fmt::Display>(result: &Result<(), E>) -> String {
    match result {
        Ok(()) => "done".into(),
        Err(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn wrapped_errors_are_the_source_and_keep_their_message() {
        let wire = ConnError::Wire(WireError::Closed);
        assert_eq!(wire.to_string(), "connection closed by peer");
        assert_eq!(
            wire.source().map(|s| s.to_string()).as_deref(),
            Some("connection closed by peer")
        );
        let bitfield = crate::bitfield::Bitfield::from_bytes(&[0xff], 3).unwrap_err();
        let message = bitfield.to_string();
        let conn = ConnError::BadBitfield(bitfield);
        assert_eq!(conn.to_string(), message);
        assert_eq!(conn.source().map(|s| s.to_string()), Some(message));
        assert!(ConnError::Snubbed.source().is_none());
        assert!(ConnError::BadHave(9).source().is_none());
    }
}
