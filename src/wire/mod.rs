//! The BitTorrent peer wire protocol (BEP 3): handshake and length-prefixed messages.
//!
//! Reading is done by [`MessageReader`], which keeps partial input across read time-outs, so a
//! connection loop can wake up every second without losing bytes. Every length prefix is checked
//! against a bound before any buffer grows.

use std::fmt;
use std::io::{self, Read, Write};

/// The block size requested from peers (the de-facto standard).
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// The largest block we serve. BEP 3 peers ask for 16 KiB; some older ones for up to 128 KiB.
pub const MAX_BLOCK: u32 = 128 * 1024;

const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// Size of a handshake on the wire.
pub const HANDSHAKE_LEN: usize = 68;

/// Errors on a peer connection.
#[derive(Debug)]
pub enum WireError {
    Io(io::Error),
    /// The peer closed the connection.
    Closed,
    /// The handshake did not name the BitTorrent protocol.
    BadProtocol,
    /// A length prefix over the bound for this torrent.
    TooLong {
        length: u32,
        max: u32,
    },
    /// A message whose body does not fit its id.
    Malformed {
        id: u8,
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

impl std::error::Error for WireError {}

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

/// The first 68 bytes each side sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// Extension bits; we set none and ignore the peer's.
    pub reserved: [u8; 8],
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
}

impl Handshake {
    pub fn new(info_hash: [u8; 20], peer_id: [u8; 20]) -> Handshake {
        Handshake {
            reserved: [0; 8],
            info_hash,
            peer_id,
        }
    }

    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash);
        out[48..68].copy_from_slice(&self.peer_id);
        out
    }

    pub fn from_bytes(b: &[u8; HANDSHAKE_LEN]) -> Result<Handshake, WireError> {
        if b[0] != 19 || &b[1..20] != PROTOCOL {
            return Err(WireError::BadProtocol);
        }
        let mut h = Handshake::new([0; 20], [0; 20]);
        h.reserved.copy_from_slice(&b[20..28]);
        h.info_hash.copy_from_slice(&b[28..48]);
        h.peer_id.copy_from_slice(&b[48..68]);
        Ok(h)
    }
}

/// A peer message after the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    Request {
        index: u32,
        begin: u32,
        length: u32,
    },
    Piece {
        index: u32,
        begin: u32,
        data: Vec<u8>,
    },
    Cancel {
        index: u32,
        begin: u32,
        length: u32,
    },
    /// The DHT port (BEP 5); read and ignored.
    Port(u16),
    /// Any other id (extension protocol, fast extension, ...): its body is skipped.
    Unknown(u8),
}

fn be32(b: &[u8]) -> u32 {
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
            6 | 8 => {
                fixed(12)?;
                let (index, begin, length) = (be32(rest), be32(&rest[4..]), be32(&rest[8..]));
                if id == 6 {
                    Message::Request {
                        index,
                        begin,
                        length,
                    }
                } else {
                    Message::Cancel {
                        index,
                        begin,
                        length,
                    }
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
            Message::Unknown(id) => put(*id, &[], &[]),
        }
    }

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

/// Reads whole messages from a stream, keeping partial input across read time-outs.
pub struct MessageReader {
    buf: Vec<u8>,
    max_len: u32,
}

impl MessageReader {
    pub fn new(max_len: u32) -> MessageReader {
        MessageReader {
            buf: Vec::with_capacity(64 * 1024),
            max_len,
        }
    }

    /// Returns the next message. A read time-out surfaces as an error for which
    /// [`WireError::is_timeout`] holds; the bytes read so far are kept for the next call.
    pub fn read(&mut self, stream: &mut impl Read) -> Result<Message, WireError> {
        loop {
            if let Some(message) = self.take()? {
                return Ok(message);
            }
            let old = self.buf.len();
            let want = self.wanted().max(4096);
            self.buf.resize(old + want, 0);
            let n = match stream.read(&mut self.buf[old..]) {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(old);
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e.into());
                }
            };
            self.buf.truncate(old + n);
            if n == 0 {
                return Err(WireError::Closed);
            }
        }
    }

    /// Bytes still missing from the message being read (0 when the prefix is incomplete).
    fn wanted(&self) -> usize {
        if self.buf.len() < 4 {
            return 0;
        }
        (4 + be32(&self.buf) as usize).saturating_sub(self.buf.len())
    }

    fn take(&mut self) -> Result<Option<Message>, WireError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let length = be32(&self.buf);
        if length > self.max_len {
            return Err(WireError::TooLong {
                length,
                max: self.max_len,
            });
        }
        let total = 4 + length as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let message = Message::parse(&self.buf[4..total]);
        self.buf.drain(..total);
        message.map(Some)
    }
}

/// Reads the 68-byte handshake, giving up after the stream's read time-out.
pub fn read_handshake(stream: &mut impl Read) -> Result<Handshake, WireError> {
    let mut b = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut b[..20]).map_err(eof_to_closed)?;
    // Check the protocol string before waiting for the rest, so a stranger is dropped early.
    if b[0] != 19 || &b[1..20] != PROTOCOL {
        return Err(WireError::BadProtocol);
    }
    stream.read_exact(&mut b[20..]).map_err(eof_to_closed)?;
    Handshake::from_bytes(&b)
}

pub fn write_handshake(stream: &mut impl Write, h: &Handshake) -> Result<(), WireError> {
    stream.write_all(&h.to_bytes())?;
    Ok(())
}

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
    }

    #[test]
    fn huge_length_prefix_is_refused_before_allocating() {
        let mut reader = MessageReader::new(max_message_len(10));
        let bytes = [0xff, 0xff, 0xff, 0xf0, 7];
        match reader.read(&mut &bytes[..]) {
            Err(WireError::TooLong { length, .. }) => assert_eq!(length, 0xffff_fff0),
            other => panic!("expected TooLong, got {other:?}"),
        }
        assert!(reader.buf.capacity() < 1 << 20);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for body in [
            &[4u8, 0, 0][..],
            &[6, 0, 0, 0, 1],
            &[7, 0, 0, 0],
            &[0, 1],
            &[9, 1],
        ] {
            assert!(
                matches!(Message::parse(body), Err(WireError::Malformed { .. })),
                "{body:?}"
            );
        }
    }

    #[test]
    fn unknown_and_extension_messages_are_skipped() {
        let mut bytes = vec![0, 0, 0, 4, 20, 0, b'd', b'e'];
        Message::Have(3).encode_into(&mut bytes);
        let mut reader = MessageReader::new(max_message_len(10));
        let mut stream = &bytes[..];
        assert_eq!(reader.read(&mut stream).unwrap(), Message::Unknown(20));
        assert_eq!(reader.read(&mut stream).unwrap(), Message::Have(3));
    }

    /// A stream that yields one byte per read, with a time-out between each.
    struct Trickle<'a> {
        data: &'a [u8],
        timeout_next: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.timeout_next = !self.timeout_next;
            if self.timeout_next {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            if self.data.is_empty() {
                return Ok(0);
            }
            out[0] = self.data[0];
            self.data = &self.data[1..];
            Ok(1)
        }
    }

    #[test]
    fn partial_input_survives_timeouts() {
        let bytes = Message::Piece {
            index: 1,
            begin: 2,
            data: vec![9; 40],
        }
        .to_bytes();
        let mut stream = Trickle {
            data: &bytes,
            timeout_next: false,
        };
        let mut reader = MessageReader::new(max_message_len(10));
        let mut timeouts = 0;
        let message = loop {
            match reader.read(&mut stream) {
                Ok(m) => break m,
                Err(e) if e.is_timeout() => timeouts += 1,
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(
            message,
            Message::Piece {
                index: 1,
                begin: 2,
                data: vec![9; 40]
            }
        );
        assert_eq!(timeouts, bytes.len());
    }

    #[test]
    fn handshake_round_trip_and_rejects_other_protocols() {
        let h = Handshake::new([1; 20], [2; 20]);
        let bytes = h.to_bytes();
        assert_eq!(read_handshake(&mut &bytes[..]).unwrap(), h);
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
}
