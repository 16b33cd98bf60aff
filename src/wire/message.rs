//! Peer messages after the handshake: their decoding from a body and encoding with the length
//! prefix, and the bound on a message's length.

use super::{MAX_BLOCK, WireError};

/// A peer message after the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A zero-length message: keeps an idle connection open.
    KeepAlive,
    /// The sender will not serve requests.
    Choke,
    /// The sender will serve requests.
    Unchoke,
    /// The sender wants pieces the receiver has.
    Interested,
    /// The sender wants nothing from the receiver.
    NotInterested,
    /// The sender now has this piece.
    Have(u32),
    /// The pieces the sender has, one bit each, high bit first.
    Bitfield(Vec<u8>),
    /// Asks for `length` bytes at `begin` within piece `index`.
    Request {
        /// Piece index.
        index: u32,
        /// Offset within the piece.
        begin: u32,
        /// Bytes wanted.
        length: u32,
    },
    /// A block of piece `index` starting at `begin`.
    Piece {
        /// Piece index.
        index: u32,
        /// Offset within the piece.
        begin: u32,
        /// The block's bytes.
        data: Vec<u8>,
    },
    /// Withdraws an earlier [`Message::Request`].
    Cancel {
        /// Piece index.
        index: u32,
        /// Offset within the piece.
        begin: u32,
        /// Bytes that were asked for.
        length: u32,
    },
    /// The DHT port (BEP 5); read and ignored.
    Port(u16),
    /// BEP 6: the sender suggests fetching this piece (it may be ignored).
    Suggest(u32),
    /// BEP 6: the sender has every piece (instead of a full bitfield).
    HaveAll,
    /// BEP 6: the sender has no piece (instead of an empty bitfield).
    HaveNone,
    /// BEP 6: the sender will not serve this earlier [`Message::Request`].
    Reject {
        /// Piece index.
        index: u32,
        /// Offset within the piece.
        begin: u32,
        /// Bytes that were asked for.
        length: u32,
    },
    /// BEP 6: the sender serves requests for this piece even while it chokes the receiver.
    AllowedFast(u32),
    /// An extension protocol message (BEP 10): the extended id the receiver chose (0: the
    /// extended handshake) and the body, decoded in [`extended`](super::extended).
    Extended {
        /// The extended message id.
        id: u8,
        /// The body after the id.
        payload: Vec<u8>,
    },
    /// Any other id: its body is skipped.
    Unknown(u8),
}

/// A big-endian `u32` from the first four bytes of `b`.
pub(super) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Message {
    /// Parses one message body (the bytes after the length prefix).
    pub fn parse(body: &[u8]) -> Result<Message, WireError> {
        let Some((&id, rest)) = body.split_first() else {
            return Ok(Message::KeepAlive);
        };
        let malformed = || WireError::Malformed {
            id,
            length: body.len() as u32,
        };
        let fixed = |n: usize| {
            if rest.len() == n {
                Ok(())
            } else {
                Err(malformed())
            }
        };
        Ok(match id {
            0 => fixed(0).map(|_| Message::Choke)?,
            1 => fixed(0).map(|_| Message::Unchoke)?,
            2 => fixed(0).map(|_| Message::Interested)?,
            3 => fixed(0).map(|_| Message::NotInterested)?,
            4 => fixed(4).map(|_| Message::Have(be32(rest)))?,
            5 => Message::Bitfield(rest.to_vec()),
            6 | 8 | 0x10 => {
                fixed(12)?;
                let (index, begin, length) = (be32(rest), be32(&rest[4..]), be32(&rest[8..]));
                match id {
                    6 => Message::Request {
                        index,
                        begin,
                        length,
                    },
                    8 => Message::Cancel {
                        index,
                        begin,
                        length,
                    },
                    _ => Message::Reject {
                        index,
                        begin,
                        length,
                    },
                }
            }
            7 => {
                if rest.len() < 8 {
                    return Err(malformed());
                }
                Message::Piece {
                    index: be32(rest),
                    begin: be32(&rest[4..]),
                    data: rest[8..].to_vec(),
                }
            }
            9 => fixed(2).map(|_| Message::Port(u16::from_be_bytes([rest[0], rest[1]])))?,
            0x0D => fixed(4).map(|_| Message::Suggest(be32(rest)))?,
            0x0E => fixed(0).map(|_| Message::HaveAll)?,
            0x0F => fixed(0).map(|_| Message::HaveNone)?,
            0x11 => fixed(4).map(|_| Message::AllowedFast(be32(rest)))?,
            super::extended::EXTENDED => {
                let (&id, payload) = rest.split_first().ok_or_else(malformed)?;
                Message::Extended {
                    id,
                    payload: payload.to_vec(),
                }
            }
            other => Message::Unknown(other),
        })
    }

    /// Appends the message, with its length prefix, to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut put = |id: u8, ints: &[u32], tail: &[u8]| {
            let len = 1 + 4 * ints.len() + tail.len();
            out.extend_from_slice(&(len as u32).to_be_bytes());
            out.push(id);
            for i in ints {
                out.extend_from_slice(&i.to_be_bytes());
            }
            out.extend_from_slice(tail);
        };
        match self {
            Message::KeepAlive => out.extend_from_slice(&[0; 4]),
            Message::Choke => put(0, &[], &[]),
            Message::Unchoke => put(1, &[], &[]),
            Message::Interested => put(2, &[], &[]),
            Message::NotInterested => put(3, &[], &[]),
            Message::Have(i) => put(4, &[*i], &[]),
            Message::Bitfield(b) => put(5, &[], b),
            Message::Request {
                index,
                begin,
                length,
            } => put(6, &[*index, *begin, *length], &[]),
            Message::Piece { index, begin, data } => put(7, &[*index, *begin], data),
            Message::Cancel {
                index,
                begin,
                length,
            } => put(8, &[*index, *begin, *length], &[]),
            Message::Port(p) => put(9, &[], &p.to_be_bytes()),
            Message::Suggest(i) => put(0x0D, &[*i], &[]),
            Message::HaveAll => put(0x0E, &[], &[]),
            Message::HaveNone => put(0x0F, &[], &[]),
            Message::Reject {
                index,
                begin,
                length,
            } => put(0x10, &[*index, *begin, *length], &[]),
            Message::AllowedFast(i) => put(0x11, &[*i], &[]),
            Message::Extended { id, payload } => {
                let len = 2 + payload.len();
                out.extend_from_slice(&(len as u32).to_be_bytes());
                out.extend_from_slice(&[super::extended::EXTENDED, *id]);
                out.extend_from_slice(payload);
            }
            Message::Unknown(id) => put(*id, &[], &[]),
        }
    }
    /// The message with its length prefix, as sent on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// The longest message we accept on a torrent with `piece_count` pieces: a bitfield, a block of
/// up to [`MAX_BLOCK`], or an extension message of similar size, whichever is largest.
pub fn max_message_len(piece_count: usize) -> u32 {
    let bitfield = 1 + piece_count.div_ceil(8) as u64;
    bitfield.max(9 + MAX_BLOCK as u64).min(u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MessageReader;

    fn all_messages() -> Vec<Message> {
        vec![
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have(7),
            Message::Bitfield(vec![0xf0, 0x01]),
            Message::Request {
                index: 1,
                begin: 16384,
                length: 16384,
            },
            Message::Piece {
                index: 2,
                begin: 0,
                data: vec![1, 2, 3],
            },
            Message::Cancel {
                index: 1,
                begin: 0,
                length: 5,
            },
            Message::Port(6881),
            Message::Suggest(3),
            Message::HaveAll,
            Message::HaveNone,
            Message::Reject {
                index: 4,
                begin: 32768,
                length: 16384,
            },
            Message::AllowedFast(9),
            Message::Extended {
                id: 0,
                payload: b"de".to_vec(),
            },
        ]
    }

    #[test]
    fn round_trip_every_message() {
        let mut bytes = Vec::new();
        for m in all_messages() {
            m.encode_into(&mut bytes);
        }
        let mut reader = MessageReader::new(max_message_len(100));
        let mut stream = &bytes[..];
        for m in all_messages() {
            assert_eq!(reader.read(&mut stream).unwrap(), m);
        }
        assert!(matches!(reader.read(&mut stream), Err(WireError::Closed)));
    }

    #[test]
    fn known_encodings() {
        assert_eq!(Message::Have(1).to_bytes(), [0, 0, 0, 5, 4, 0, 0, 0, 1]);
        assert_eq!(
            Message::Request {
                index: 0,
                begin: 0,
                length: 16384
            }
            .to_bytes(),
            [0, 0, 0, 13, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0]
        );
        // BEP 6's ids.
        assert_eq!(Message::HaveAll.to_bytes(), [0, 0, 0, 1, 0x0E]);
        assert_eq!(Message::HaveNone.to_bytes(), [0, 0, 0, 1, 0x0F]);
        assert_eq!(
            Message::AllowedFast(2).to_bytes(),
            [0, 0, 0, 5, 0x11, 0, 0, 0, 2]
        );
        assert_eq!(
            Message::Suggest(2).to_bytes(),
            [0, 0, 0, 5, 0x0D, 0, 0, 0, 2]
        );
        assert_eq!(
            Message::Reject {
                index: 1,
                begin: 0,
                length: 16384
            }
            .to_bytes(),
            [0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0]
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for body in [
            &[4u8, 0, 0][..],
            &[6, 0, 0, 0, 1],
            &[7, 0, 0, 0],
            &[0, 1],
            &[9, 1],
            &[0x0D, 0, 0, 1],
            &[0x0E, 0],
            &[0x0F, 1, 2],
            &[0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            &[0x11, 0, 0, 0, 0, 0],
            &[20],
        ] {
            assert!(
                matches!(Message::parse(body), Err(WireError::Malformed { .. })),
                "{body:?}"
            );
        }
    }
}
