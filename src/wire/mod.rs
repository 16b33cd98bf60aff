//! The BitTorrent peer wire protocol (BEP 3, and BEP 6's fast extension): handshake and
//! length-prefixed messages.
//!
//! Reading is done by [`MessageReader`], which keeps partial input across read time-outs, so a
//! connection loop can wake up every second without losing bytes. Every length prefix is checked
//! against a bound before any buffer grows.

// This file holds the sizes and the error the parts share; the message codec, the framing reader
// and the handshake codec each have a file of their own.

pub mod extended;
mod handshake;
mod message;
pub mod pex;
mod reader;

use std::fmt;
use std::io;

pub use handshake::{Handshake, read_handshake, write_handshake};
pub use message::{Message, max_message_len};
pub use reader::MessageReader;

/// The block size requested from peers (the de-facto standard).
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// The largest block we serve. BEP 3 peers ask for 16 KiB; some older ones for up to 128 KiB.
pub const MAX_BLOCK: u32 = 128 * 1024;

/// Size of a handshake on the wire.
pub const HANDSHAKE_LEN: usize = 68;

/// Errors on a peer connection.
#[derive(Debug)]
pub enum WireError {
    /// Reading or writing the socket failed; a read time-out is one (see [`Self::is_timeout`]).
    Io(io::Error),
    /// The peer closed the connection.
    Closed,
    /// The handshake did not name the BitTorrent protocol.
    BadProtocol,
    /// A length prefix over the bound for this torrent.
    TooLong {
        /// The length the peer announced.
        length: u32,
        /// The bound it exceeded.
        max: u32,
    },
    /// A message whose body does not fit its id.
    Malformed {
        /// The message id.
        id: u8,
        /// Length of the body, id included.
        length: u32,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Io(e) => write!(f, "{e}"),
            WireError::Closed => write!(f, "connection closed by peer"),
            WireError::BadProtocol => {
                write!(
                    f,
                    "not a BitTorrent handshake (an encrypted one? piecemeal speaks plaintext only)"
                )
            }
            WireError::TooLong { length, max } => {
                write!(
                    f,
                    "message length {length} exceeds the limit of {max} bytes"
                )
            }
            WireError::Malformed { id, length } => {
                write!(
                    f,
                    "message id {id} with a body of {length} bytes is malformed"
                )
            }
        }
    }
}

impl std::error::Error for WireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WireError::Io(e) => Some(e),
            WireError::Closed
            | WireError::BadProtocol
            | WireError::TooLong { .. }
            | WireError::Malformed { .. } => None,
        }
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        WireError::Io(e)
    }
}

impl WireError {
    /// Whether this is only a read time-out (the connection is still good).
    pub fn is_timeout(&self) -> bool {
        matches!(self, WireError::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}
