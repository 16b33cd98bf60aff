//! Framing: cutting a byte stream into whole messages, with partial input kept across read
//! time-outs and every length prefix checked before the buffer grows.
//!
//! The socket is read through one buffer per connection, as much as the kernel has at each
//! read (up to [`MAX_BUFFER`]), so a stream of 16 KiB blocks costs one `read` per dozen blocks
//! rather than two per block; a block is handed out as a slice of that buffer
//! ([`Frame::Block`]), for the caller to copy once to its place. The buffer starts small and
//! grows only while reads fill it, so an idle connection holds little.

use std::io::{self, Read};

use super::WireError;
use super::message::{Message, be32};

/// The read buffer of a busy connection grows to this.
pub const MAX_BUFFER: usize = 256 * 1024;
/// A new connection's read buffer.
const START_BUFFER: usize = 16 * 1024;

/// One message as read: a block borrows the reader's buffer, anything else is decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A `piece` message: a block of piece `index` at `begin`.
    Block {
        /// Piece index.
        index: u32,
        /// Offset within the piece.
        begin: u32,
        /// The block's bytes, valid until the next read.
        data: &'a [u8],
    },
    /// Any other message.
    Message(Message),
}

/// Reads whole messages from a stream, keeping partial input across read time-outs.
pub struct MessageReader {
    /// Bytes read; `buf[start..end]` are not consumed yet.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_len: u32,
}

impl MessageReader {
    /// A reader refusing messages longer than `max_len` (see
    /// [`max_message_len`](super::max_message_len)).
    pub fn new(max_len: u32) -> MessageReader {
        MessageReader {
            buf: vec![0; START_BUFFER],
            start: 0,
            end: 0,
            max_len,
        }
    }

    /// Returns the next message, owned. A read time-out surfaces as an error for which
    /// [`WireError::is_timeout`] holds; the bytes read so far are kept for the next call.
    pub fn read(&mut self, stream: &mut impl Read) -> Result<Message, WireError> {
        Ok(match self.read_frame(stream)? {
            Frame::Block { index, begin, data } => Message::Piece {
                index,
                begin,
                data: data.to_vec(),
            },
            Frame::Message(message) => message,
        })
    }

    /// [`read`](Self::read), with a block left in the buffer rather than copied.
    pub fn read_frame(&mut self, stream: &mut impl Read) -> Result<Frame<'_>, WireError> {
        let total = loop {
            if let Some(total) = self.complete()? {
                break total;
            }
            self.fill(stream)?;
        };
        let body = self.start + 4..self.start + total;
        self.start += total;
        let body = &self.buf[body];
        if body.first() == Some(&7) && body.len() >= 9 {
            return Ok(Frame::Block {
                index: be32(&body[1..]),
                begin: be32(&body[5..]),
                data: &body[9..],
            });
        }
        Message::parse(body).map(Frame::Message)
    }

    /// The length (prefix included) of the first message if the buffer holds all of it.
    fn complete(&self) -> Result<Option<usize>, WireError> {
        let pending = &self.buf[self.start..self.end];
        if pending.len() < 4 {
            return Ok(None);
        }
        let length = be32(pending);
        if length > self.max_len {
            return Err(WireError::TooLong {
                length,
                max: self.max_len,
            });
        }
        let total = 4 + length as usize;
        Ok((pending.len() >= total).then_some(total))
    }

    /// Reads what the stream has, making room first: consumed bytes are dropped from the
    /// front, and the buffer grows to hold the message being read (its length was checked) or
    /// because the last read filled it.
    fn fill(&mut self, stream: &mut impl Read) -> Result<(), WireError> {
        let pending = self.end - self.start;
        let needed = if pending >= 4 {
            4 + be32(&self.buf[self.start..]) as usize
        } else {
            4
        };
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.start = 0;
            self.end = pending;
        }
        if self.buf.len() < needed {
            self.buf.resize(needed, 0);
        }
        loop {
            match stream.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(WireError::Closed),
                Ok(n) => {
                    self.end += n;
                    if self.end == self.buf.len() && self.buf.len() < MAX_BUFFER {
                        self.buf.resize((self.buf.len() * 2).min(MAX_BUFFER), 0);
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
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

    #[test]
    fn many_blocks_come_from_few_reads_and_borrow_the_buffer() {
        let mut bytes = Vec::new();
        for i in 0..20u32 {
            Message::Piece {
                index: i,
                begin: 0,
                data: vec![i as u8; 16 * 1024],
            }
            .encode_into(&mut bytes);
        }
        Message::Have(3).encode_into(&mut bytes);
        let mut stream = Counting {
            data: &bytes,
            reads: 0,
        };
        let mut reader = MessageReader::new(max_message_len(100));
        for i in 0..20u32 {
            match reader.read_frame(&mut stream).unwrap() {
                Frame::Block { index, begin, data } => {
                    assert_eq!((index, begin, data.len()), (i, 0, 16 * 1024));
                    assert!(data.iter().all(|&b| b == i as u8));
                }
                other => panic!("expected a block, got {other:?}"),
            }
        }
        assert_eq!(reader.read(&mut stream).unwrap(), Message::Have(3));
        // 16, 32, 64, 128 KiB, then 256 KiB reads: not one or two per block.
        assert!(stream.reads <= 8, "{} reads for 20 blocks", stream.reads);
        assert!(reader.buf.len() <= MAX_BUFFER);
    }

    /// A stream handing out as much as each read asks for, counting the reads.
    struct Counting<'a> {
        data: &'a [u8],
        reads: usize,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            let n = out.len().min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }
}
