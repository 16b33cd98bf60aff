//! The socket of a peer connection as the handshake, the connection loop and the writer thread
//! see it: plaintext, or RC4 after an encrypted handshake ([`crate::wire::mse`]).
//!
//! A [`PeerStream`] splits into a [`ReadHalf`] for the loop and a [`WriteHalf`] for the writer
//! thread, each with its own handle on the socket and its own cipher (the two directions of
//! RC4 are independent streams), so neither half waits for the other. Bytes the handshake read
//! ahead (the first bytes that told plaintext from encrypted, an encrypted handshake's initial
//! payload) are served before the socket is read again. On a plaintext stream a read or write
//! is the socket's own, behind one branch.

use crate::wire::mse::{Cipher, Ciphers};
use std::io::{self, Read, Write};
use std::net::TcpStream;

/// Bytes encrypted at a time into a write half's scratch buffer.
const WRITE_CHUNK: usize = 64 * 1024;

/// A peer connection's socket and, when encrypted, its ciphers.
pub struct PeerStream {
    read: ReadHalf,
    write: WriteHalf,
}

/// What the connection loop reads from.
pub struct ReadHalf {
    socket: TcpStream,
    cipher: Option<Cipher>,
    /// Bytes read (and decrypted) ahead, served first.
    pending: Vec<u8>,
    pending_pos: usize,
}

/// What the writer thread writes to.
pub struct WriteHalf {
    socket: TcpStream,
    cipher: Option<Cipher>,
    scratch: Vec<u8>,
}

impl PeerStream {
    /// A plaintext stream on `socket`.
    pub fn new(socket: TcpStream) -> io::Result<PeerStream> {
        PeerStream::with_pending(socket, Vec::new())
    }

    /// A plaintext stream on `socket` that first yields `pending`, bytes already read off it.
    pub fn with_pending(socket: TcpStream, pending: Vec<u8>) -> io::Result<PeerStream> {
        Ok(PeerStream {
            write: WriteHalf {
                socket: socket.try_clone()?,
                cipher: None,
                scratch: Vec::new(),
            },
            read: ReadHalf {
                socket,
                cipher: None,
                pending,
                pending_pos: 0,
            },
        })
    }

    /// Switches to the payload after an encrypted handshake: RC4 from here on when `ciphers`
    /// are given, and `received` (payload the handshake read ahead, decrypted) read first.
    pub fn begin_payload(&mut self, ciphers: Option<Ciphers>, received: Vec<u8>) {
        if let Some(Ciphers { send, receive }) = ciphers {
            self.write.cipher = Some(send);
            self.read.cipher = Some(receive);
        }
        self.read.pending.drain(..self.read.pending_pos);
        self.read.pending_pos = 0;
        self.read.pending.extend(received);
    }

    /// The socket (time-outs, shutdown, the address).
    pub fn socket(&self) -> &TcpStream {
        &self.read.socket
    }

    /// " (RC4)" when the payload is encrypted, for log lines.
    pub fn describe(&self) -> &'static str {
        if self.read.cipher.is_some() {
            " (RC4)"
        } else {
            ""
        }
    }

    /// The two halves, to be used from two threads.
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        (self.read, self.write)
    }
}

impl ReadHalf {
    /// The socket (time-outs, shutdown).
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending_pos < self.pending.len() {
            let n = (&self.pending[self.pending_pos..]).read(buf)?;
            self.pending_pos += n;
            if self.pending_pos == self.pending.len() {
                self.pending = Vec::new();
                self.pending_pos = 0;
            }
            return Ok(n);
        }
        let n = self.socket.read(buf)?;
        if let Some(cipher) = &mut self.cipher {
            cipher.apply(&mut buf[..n]);
        }
        Ok(n)
    }
}

/// The connection loop is generic over `Read + Write` so that its unit tests can write inline;
/// with a writer thread it never writes, and the read half has nothing to write with.
impl Write for ReadHalf {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the reading half of a connection does not write",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encrypted, a write sends all of `buf` or fails: the keystream has moved on by then, so a
/// failed write leaves the stream unusable (as any write time-out does the connection).
impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(cipher) = &mut self.cipher else {
            return self.socket.write(buf);
        };
        for chunk in buf.chunks(WRITE_CHUNK) {
            self.scratch.clear();
            self.scratch.extend_from_slice(chunk);
            cipher.apply(&mut self.scratch);
            self.socket.write_all(&self.scratch)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

impl Read for PeerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read.read(buf)
    }
}

impl Write for PeerStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.write.flush()
    }
}
