//! Framing: cutting a byte stream into whole messages, with partial input kept across read
//! time-outs and every length prefix checked before the buffer grows.

use std::io::{self, Read};

use super::WireError;
use super::message::{Message, be32};

/// Reads whole messages from a stream, keeping partial input across read time-outs.
pub struct MessageReader {
    buf: Vec<u8>,
    max_len: u32,
}

impl MessageReader {
    /// A reader refusing messages longer than `max_len` (see
    /// [`max_message_len`](super::max_message_len)).
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

    /// Removes and decodes the first message if the buffer holds all of it.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::max_message_len;

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
    fn unknown_and_extension_messages_are_skipped() {
        let mut bytes = vec![0, 0, 0, 4, 20, 0, b'd', b'e', 0, 0, 0, 2, 0x42, 1];
        Message::Have(3).encode_into(&mut bytes);
        let mut reader = MessageReader::new(max_message_len(10));
        let mut stream = &bytes[..];
        let handshake = Message::Extended {
            id: 0,
            payload: b"de".to_vec(),
        };
        assert_eq!(reader.read(&mut stream).unwrap(), handshake);
        assert_eq!(reader.read(&mut stream).unwrap(), Message::Unknown(0x42));
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
}
