//! One peer connection after the handshake, in both directions: it fetches pieces the remote
//! peer has and we lack (through the picker and a [`Pipeline`]), and serves the remote peer's
//! requests for pieces we have verified.
//!
//! Outgoing connections run on their own thread (one per remote peer, the download side);
//! incoming ones run on a worker of the upload pool. The loop wakes at least every
//! [`TICK`] to send `have` messages, keep-alives and new requests, and to notice shutdown.
//!
//! The loop works on any `Read + Write` stream, to which a read time-out (`WouldBlock` or
//! `TimedOut`) is a quiet tick: [`run`] sets a TCP socket up for it, the unit tests drive it
//! with scripted in-memory streams.

use crate::bitfield::Bitfield;
use crate::peer::error::ConnError;
use crate::peer::pipeline::Pipeline;
use crate::peer::torrent_state::{Stored, TorrentState};
use crate::wire::{MAX_BLOCK, Message, MessageReader, max_message_len};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often the loop wakes when the peer is quiet.
pub const TICK: Duration = Duration::from_millis(250);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
/// A peer that sends nothing at all (not even keep-alives) for this long is dropped.
const IDLE_LIMIT: Duration = Duration::from_secs(150);
/// A peer that leaves our requests unanswered this long is dropped so its pieces go elsewhere.
const SNUB_LIMIT: Duration = Duration::from_secs(20);
/// Writes that block this long (a peer that stopped reading) end the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// Block requests kept in flight per peer (512 KiB).
const MAX_IN_FLIGHT: usize = 32;
/// Pieces fetched at once per peer.
const MAX_PIECES: usize = 6;
/// Pieces failing their hash from one peer before it is dropped and banned.
const HASH_STRIKES: u32 = 3;

/// Connection state, named as in BEP 3.
struct Conn<'a, S> {
    torrent: &'a TorrentState,
    stream: S,
    remote: SocketAddr,
    remote_id: [u8; 20],
    out: Vec<u8>,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    peer_has: Bitfield,
    /// Set when `peer_has` or our pieces changed, so interest is recomputed only then.
    interest_stale: bool,
    pipeline: Pipeline,
    have_pos: usize,
    hash_failures: u32,
    last_received: Instant,
    last_sent: Instant,
    /// When the oldest unanswered request went out (None when nothing is outstanding).
    waiting_since: Option<Instant>,
}

/// Runs a connection whose handshake is done until it ends, the torrent shuts down, or both
/// sides are complete. Pieces it was fetching go back to the picker whatever happens.
pub fn run(
    stream: TcpStream,
    torrent: &TorrentState,
    remote: SocketAddr,
    remote_id: [u8; 20],
) -> Result<(), ConnError> {
    // The read time-out is the loop's tick.
    stream.set_read_timeout(Some(TICK))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    run_stream(stream, torrent, remote, remote_id)
}

/// [`run`] on any stream; the caller has set up its time-outs.
fn run_stream<S: Read + Write>(
    stream: S,
    torrent: &TorrentState,
    remote: SocketAddr,
    remote_id: [u8; 20],
) -> Result<(), ConnError> {
    let pieces = torrent.meta.info.piece_count();
    let mut conn = Conn {
        torrent,
        stream,
        remote,
        remote_id,
        out: Vec::new(),
        am_choking: true,
        am_interested: false,
        peer_choking: true,
        peer_interested: false,
        peer_has: Bitfield::new(pieces),
        interest_stale: true,
        pipeline: Pipeline::new(MAX_IN_FLIGHT, MAX_PIECES),
        have_pos: 0,
        hash_failures: 0,
        last_received: Instant::now(),
        last_sent: Instant::now(),
        waiting_since: None,
    };
    torrent.connections.fetch_add(1, Ordering::SeqCst);
    let result = conn.drive(MessageReader::new(max_message_len(pieces)));
    torrent.connections.fetch_sub(1, Ordering::SeqCst);
    for index in conn.pipeline.pieces() {
        torrent.picker.put_back(index);
    }
    result
}

impl<S: Read + Write> Conn<'_, S> {
    fn drive(&mut self, mut reader: MessageReader) -> Result<(), ConnError> {
        // Snapshot the log position before the bitfield so no verified piece goes unannounced.
        self.have_pos = self.torrent.have_log_len();
        let have = self.torrent.picker.have();
        if have.count() > 0 {
            self.queue(Message::Bitfield(have.as_bytes().to_vec()));
        }
        loop {
            if self.torrent.is_shutting_down() {
                return Ok(());
            }
            self.housekeeping()?;
            if self.torrent.is_complete() && self.peer_has.is_complete() {
                log::debug!("{}: both sides complete, closing", self.remote);
                return Ok(());
            }
            match reader.read(&mut self.stream) {
                Ok(message) => {
                    self.last_received = Instant::now();
                    self.handle(message)?;
                }
                Err(e) if e.is_timeout() => {}
                Err(e) => return Err(e.into()),
            }
            let now = Instant::now();
            if now - self.last_received > IDLE_LIMIT {
                return Err(ConnError::Idle(now - self.last_received));
            }
            if self.waiting_since.is_some_and(|t| now - t > SNUB_LIMIT) {
                return Err(ConnError::Snubbed);
            }
        }
    }

    fn queue(&mut self, message: Message) {
        message.encode_into(&mut self.out);
    }

    fn flush(&mut self) -> Result<(), ConnError> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out)?;
            self.out.clear();
            self.last_sent = Instant::now();
        }
        Ok(())
    }

    /// Announces new pieces, updates interest and choking, and tops up our requests.
    fn housekeeping(&mut self) -> Result<(), ConnError> {
        let (new, pos) = self.torrent.haves_since(self.have_pos);
        self.have_pos = pos;
        for index in new {
            self.interest_stale = true;
            self.pipeline_drop_if_done(index);
            if !self.peer_has.get(index as usize) {
                self.queue(Message::Have(index));
            }
        }
        let want = if std::mem::take(&mut self.interest_stale) {
            self.torrent.is_downloading() && self.torrent.picker.have().lacks_any_of(&self.peer_has)
        } else {
            // A disk failure stops the download without a new piece to mark interest stale.
            self.am_interested && self.torrent.is_downloading()
        };
        if want != self.am_interested {
            self.am_interested = want;
            self.queue(if want {
                Message::Interested
            } else {
                Message::NotInterested
            });
        }
        // Every interested peer is unchoked: upload capacity is bounded by the worker pool.
        if self.peer_interested && self.am_choking {
            self.am_choking = false;
            self.queue(Message::Unchoke);
        }
        if self.am_interested && !self.peer_choking {
            while self.pipeline.wants_piece() {
                let Some(index) = self.torrent.picker.take(&self.peer_has) else {
                    break;
                };
                self.pipeline.add_piece(
                    index,
                    self.torrent.meta.info.piece_size(index as usize) as u32,
                );
            }
            let requests = self.pipeline.next_requests();
            if !requests.is_empty() && self.waiting_since.is_none() {
                self.waiting_since = Some(Instant::now());
            }
            for r in requests {
                self.queue(Message::Request {
                    index: r.index,
                    begin: r.begin,
                    length: r.length,
                });
            }
        }
        if self.out.is_empty() && self.last_sent.elapsed() > KEEPALIVE_EVERY {
            self.queue(Message::KeepAlive);
        }
        self.flush()
    }

    /// Stops fetching a piece that another connection has just verified.
    fn pipeline_drop_if_done(&mut self, index: u32) {
        let Some(cancels) = self.pipeline.abandon(index) else {
            return;
        };
        self.torrent.picker.put_back(index);
        for r in cancels {
            self.queue(Message::Cancel {
                index: r.index,
                begin: r.begin,
                length: r.length,
            });
        }
    }

    fn handle(&mut self, message: Message) -> Result<(), ConnError> {
        let pieces = self.peer_has.len();
        match message {
            Message::KeepAlive
            | Message::Port(_)
            | Message::Unknown(_)
            | Message::Cancel { .. } => {}
            Message::Choke => {
                self.peer_choking = true;
                self.pipeline.on_choke();
                self.waiting_since = None;
            }
            Message::Unchoke => self.peer_choking = false,
            Message::Interested => self.peer_interested = true,
            Message::NotInterested => self.peer_interested = false,
            Message::Have(index) => {
                if index as usize >= pieces {
                    return Err(ConnError::BadHave(index));
                }
                self.interest_stale |= self.peer_has.set(index as usize);
            }
            Message::Bitfield(bytes) => {
                self.interest_stale = true;
                self.peer_has =
                    Bitfield::from_bytes(&bytes, pieces).map_err(ConnError::BadBitfield)?;
            }
            Message::Request {
                index,
                begin,
                length,
            } => self.serve(index, begin, length)?,
            Message::Piece { index, begin, data } => self.receive(index, begin, &data)?,
        }
        Ok(())
    }

    /// Answers a request for a block of a piece we have verified.
    fn serve(&mut self, index: u32, begin: u32, length: u32) -> Result<(), ConnError> {
        let info = &self.torrent.meta.info;
        let valid = (index as usize) < info.piece_count()
            && length > 0
            && length <= MAX_BLOCK
            && begin as u64 + length as u64 <= info.piece_size(index as usize);
        if !valid {
            return Err(ConnError::BadRequest {
                index,
                begin,
                length,
            });
        }
        // A choked peer's requests are dropped, as BEP 3 says; so are requests for pieces
        // we do not have yet (the peer raced our `have`).
        if self.am_choking || !self.torrent.picker.has(index) {
            return Ok(());
        }
        match self.torrent.storage.read(index, begin, length) {
            Ok(data) => {
                self.queue(Message::Piece { index, begin, data });
                self.flush()?;
                self.torrent
                    .uploaded
                    .fetch_add(length as u64, Ordering::Relaxed);
            }
            Err(e) => log::warn!("{}: {e}", self.torrent.meta.info.name),
        }
        Ok(())
    }

    fn receive(&mut self, index: u32, begin: u32, data: &[u8]) -> Result<(), ConnError> {
        let in_flight = self.pipeline.in_flight();
        let done = self.pipeline.on_block(index, begin, data);
        // Only a block we asked for shows the peer is answering: junk must not keep a snubbing
        // peer's requests (and the pieces behind them) alive.
        if self.pipeline.in_flight() < in_flight {
            self.waiting_since = (self.pipeline.in_flight() > 0).then(Instant::now);
        }
        let Some((index, piece)) = done else {
            return Ok(());
        };
        match self.torrent.store_piece(index, &piece, self.remote) {
            Ok(Stored::Verified) | Ok(Stored::Duplicate) => Ok(()),
            Ok(Stored::HashMismatch) => {
                self.hash_failures += 1;
                log::warn!(
                    "{}: piece {index} from {} failed its hash ({} so far)",
                    self.torrent.meta.info.name,
                    self.remote,
                    self.hash_failures
                );
                if self.hash_failures >= HASH_STRIKES {
                    self.torrent.ban(self.remote, self.remote_id);
                    return Err(ConnError::BadPieces(self.hash_failures));
                }
                Ok(())
            }
            // The torrent has recorded the failure and stops downloading; keep serving.
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
