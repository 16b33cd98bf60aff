//! Message stream encryption (MSE, also called protocol encryption or PE), the handshake that
//! libtorrent, Transmission and most other clients open connections with.
//!
//! ```text
//! 1 A->B: Ya, PadA
//! 2 B->A: Yb, PadB
//! 3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!         ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! 4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
//! 5 A->B: ENCRYPT2(payload)
//! ```
//!
//! `Ya`/`Yb` are Diffie-Hellman public keys (768-bit prime, generator 2), `S` the shared secret,
//! `SKEY` the torrent's info hash, `VC` eight zero bytes, `ENCRYPT` RC4 keyed with
//! `HASH('keyA', S, SKEY)` from A and `HASH('keyB', S, SKEY)` from B, the first 1024 bytes of
//! keystream discarded ([`crypto`]). `ENCRYPT2` is that same stream when RC4 was selected, or
//! nothing (plaintext after an obfuscated handshake). The responder learns the torrent only from
//! the obfuscated hash, so it compares it with every torrent it serves.
//!
//! The exchange itself ([`handshake`]) is pure: it works on any `Read + Write` stream, checks a
//! deadline between reads, bounds each padding by [`MAX_PAD`] and each synchronisation search
//! by the padding before it, and never holds more than a fixed number of bytes.

pub mod crypto;
pub mod handshake;

use std::fmt;
use std::io;

pub use crypto::{Cipher, Ciphers, KeyPair};
pub use handshake::{
    Established, INITIATOR_KEYED_READS, REPLAY_SKEY, initiate, initiate_keyed_to_bytes, respond,
    respond_keyed_to_bytes, respond_to_bytes,
};

/// Bytes of a Diffie-Hellman public key or secret on the wire.
pub const KEY_LEN: usize = 96;
/// The longest padding either side may send (PadA to PadD).
pub const MAX_PAD: usize = 512;
/// `crypto_provide`/`crypto_select` bit: plaintext after the handshake.
pub const PLAINTEXT: u32 = 0x01;
/// `crypto_provide`/`crypto_select` bit: RC4 for the whole connection.
pub const RC4: u32 = 0x02;

/// Why an encrypted handshake failed.
#[derive(Debug)]
pub enum MseError {
    /// Reading or writing the stream failed (a read time-out included).
    Io(io::Error),
    /// The peer closed the connection mid-handshake.
    Closed,
    /// The handshake took longer than its deadline.
    Timeout,
    /// The operating system's random source failed.
    Random(String),
    /// The peer's public key is 0, 1, P-1 or past the prime.
    BadPublicKey,
    /// The marker that ends a padding was not within the bytes the padding may take.
    NoSync {
        /// Which marker.
        marker: &'static str,
        /// Bytes searched.
        searched: usize,
    },
    /// The decrypted verification constant was not zero: the peer used other keys.
    BadVerification,
    /// The obfuscated info hash names no torrent served here.
    UnknownTorrent,
    /// The peer's `crypto_provide` has no method we accept.
    NoCommonMethod(u32),
    /// The responder selected a method we did not offer, or several.
    BadSelect(u32),
    /// A padding longer than [`MAX_PAD`].
    PadTooLong(u16),
    /// A plaintext handshake where encryption is required.
    PlaintextRefused,
}

impl fmt::Display for MseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MseError::Io(e) => write!(f, "encrypted handshake: {e}"),
            MseError::Closed => write!(f, "connection closed during the encrypted handshake"),
            MseError::Timeout => write!(f, "encrypted handshake took too long"),
            MseError::Random(e) => write!(f, "no random numbers for the encrypted handshake: {e}"),
            MseError::BadPublicKey => write!(f, "encrypted handshake: degenerate public key"),
            MseError::NoSync { marker, searched } => {
                write!(f, "encrypted handshake: no {marker} in {searched} bytes")
            }
            MseError::BadVerification => {
                write!(
                    f,
                    "encrypted handshake: verification constant does not decrypt"
                )
            }
            MseError::UnknownTorrent => {
                write!(f, "encrypted handshake for a torrent not served here")
            }
            MseError::NoCommonMethod(provide) => write!(
                f,
                "encrypted handshake: peer offers crypto methods {provide:#x}, none allowed here (see --encryption)"
            ),
            MseError::BadSelect(select) => {
                write!(
                    f,
                    "encrypted handshake: peer selected crypto method {select:#x}, not one we offered"
                )
            }
            MseError::PadTooLong(len) => {
                write!(
                    f,
                    "encrypted handshake: padding of {len} bytes (at most {MAX_PAD})"
                )
            }
            MseError::PlaintextRefused => {
                write!(f, "plaintext handshake refused (--encryption require)")
            }
        }
    }
}

impl std::error::Error for MseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MseError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for MseError {
    fn from(e: io::Error) -> Self {
        MseError::Io(e)
    }
}
