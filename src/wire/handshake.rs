//! The handshake codec: the 68 bytes each side sends first, naming the protocol, the torrent and
//! the peer.

use std::io::{self, Read, Write};

use super::{HANDSHAKE_LEN, WireError};

/// The protocol string, after its length byte, that opens every handshake.
const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// Where the extension protocol's bit sits in the reserved bytes (BEP 10: 20th bit from the right).
const EXTENSION_BYTE: usize = 5;
const EXTENSION_BIT: u8 = 0x10;

/// Whether a handshake's first 20 bytes name the BitTorrent protocol.
fn names_protocol(prefix: &[u8]) -> bool {
    prefix[0] == 19 && &prefix[1..20] == PROTOCOL
}

/// The reserved byte and bit that say a peer speaks the fast extension (BEP 6).
const FAST_BIT: (usize, u8) = (7, 0x04);

/// The first 68 bytes each side sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// Extension bits; we set the extension protocol's (BEP 10) and the fast extension's
    /// (BEP 6, see [`Handshake::fast`]).
    pub reserved: [u8; 8],
    /// The torrent the connection is about.
    pub info_hash: [u8; 20],
    /// The sender's peer id.
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// Our handshake for a torrent: it says we speak the extension protocol (BEP 10).
    pub fn new(info_hash: [u8; 20], peer_id: [u8; 20]) -> Handshake {
        let mut reserved = [0; 8];
        reserved[EXTENSION_BYTE] |= EXTENSION_BIT;
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// Sets the fast extension's bit (BEP 6).
    pub fn with_fast(mut self) -> Handshake {
        self.reserved[FAST_BIT.0] |= FAST_BIT.1;
        self
    }

    /// Whether the sender speaks the fast extension (BEP 6).
    pub fn fast(&self) -> bool {
        self.reserved[FAST_BIT.0] & FAST_BIT.1 != 0
    }

    /// Whether the sender speaks the extension protocol (BEP 10).
    pub fn supports_extensions(&self) -> bool {
        self.reserved[EXTENSION_BYTE] & EXTENSION_BIT != 0
    }

    /// The handshake as sent on the wire.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash);
        out[48..68].copy_from_slice(&self.peer_id);
        out
    }

    /// Decodes a handshake; fails unless it names the BitTorrent protocol.
    pub fn from_bytes(b: &[u8; HANDSHAKE_LEN]) -> Result<Handshake, WireError> {
        if !names_protocol(&b[..20]) {
            return Err(WireError::BadProtocol);
        }
        let mut h = Handshake::new([0; 20], [0; 20]);
        h.reserved.copy_from_slice(&b[20..28]);
        h.info_hash.copy_from_slice(&b[28..48]);
        h.peer_id.copy_from_slice(&b[48..68]);
        Ok(h)
    }
}

/// Reads the 68-byte handshake, giving up after the stream's read time-out.
pub fn read_handshake(stream: &mut impl Read) -> Result<Handshake, WireError> {
    let mut b = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut b[..20]).map_err(eof_to_closed)?;
    // Check the protocol string before waiting for the rest, so a stranger is dropped early.
    if !names_protocol(&b[..20]) {
        return Err(WireError::BadProtocol);
    }
    stream.read_exact(&mut b[20..]).map_err(eof_to_closed)?;
    Handshake::from_bytes(&b)
}

/// Sends our handshake.
pub fn write_handshake(stream: &mut impl Write, h: &Handshake) -> Result<(), WireError> {
    stream.write_all(&h.to_bytes())?;
    Ok(())
}

/// A stream that ends mid-handshake is a peer hanging up, not an I/O failure.
fn eof_to_closed(e: io::Error) -> WireError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        WireError::Closed
    } else {
        WireError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_round_trip_and_rejects_other_protocols() {
        let h = Handshake::new([1; 20], [2; 20]);
        let bytes = h.to_bytes();
        assert_eq!(read_handshake(&mut &bytes[..]).unwrap(), h);
        assert_eq!(bytes[25], 0x10, "the extension protocol's bit");
        assert!(h.supports_extensions());
        let mut plain = bytes;
        plain[25] = 0;
        assert!(
            !read_handshake(&mut &plain[..])
                .unwrap()
                .supports_extensions()
        );
        let mut bad = bytes;
        bad[5] = b'x';
        assert!(matches!(
            read_handshake(&mut &bad[..]),
            Err(WireError::BadProtocol)
        ));
        assert!(matches!(
            read_handshake(&mut &bytes[..30]),
            Err(WireError::Closed)
        ));
    }

    #[test]
    fn the_fast_bit_is_bit_0x04_of_the_last_reserved_byte() {
        let plain = Handshake::new([1; 20], [2; 20]);
        assert!(!plain.fast());
        let fast = plain.with_fast();
        assert_eq!(
            fast.reserved,
            [0, 0, 0, 0, 0, 0x10, 0, 0x04],
            "BEP 10's bit and BEP 6's"
        );
        assert!(fast.fast());
        assert_eq!(fast.to_bytes()[27], 0x04);
        let mut others = Handshake::new([1; 20], [2; 20]);
        others.reserved = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, !0x04];
        assert!(!others.fast(), "other bits do not count");
    }
}
