//! One peer connection after the handshake, in both directions: it fetches pieces the remote
//! peer has and we lack (through the picker and a [`Pipeline`]), and serves the remote peer's
//! requests for pieces we have verified.
//!
//! Outgoing connections run on their own thread (one per remote peer, the download side);
//! incoming ones run on a worker of the upload pool. That thread only ever blocks reading:
//! everything it sends goes through an [`Outbox`] to the connection's writer thread
//! ([`writer`]), so a connection whose peer is slow to read (or is busy writing to us) still
//! reads. The loop wakes at least every [`TICK`] to send `have` messages, keep-alives and new
//! requests, and to notice shutdown or a failed write.
//!
//! The loop works on any `Read + Write` stream, to which a read time-out (`WouldBlock` or
//! `TimedOut`) is a quiet tick: [`run`] sets a TCP socket up for it and starts the writer
//! thread, the unit tests drive the loop with scripted in-memory streams and write inline.

use crate::bitfield::Bitfield;
use crate::peer::error::ConnError;
use crate::peer::extension::Extensions;
use crate::peer::fast::{self, Answer, Fast};
use crate::peer::peer_manager::PeerSlot;
use crate::peer::peer_stream::PeerStream;
use crate::peer::pipeline::{BlockRequest, Pipeline};
use crate::peer::snub::{self, Snub, Verdict};
use crate::peer::suggest::Suggestions;
use crate::peer::torrent_state::{HASH_STRIKES, TorrentState};
use crate::peer::window::DEFAULT_PEER_REQQ;
use crate::peer::writer::{self, MAX_QUEUED_BLOCKS, Outbox};
use crate::wire::{Frame, Handshake, MAX_BLOCK, Message, MessageReader, max_message_len};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often the loop wakes when the peer is quiet.
pub const TICK: Duration = Duration::from_millis(250);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
/// A peer that sends nothing at all (not even keep-alives) for this long is dropped.
const IDLE_LIMIT: Duration = Duration::from_secs(150);
/// Writes that block this long (a peer that stopped reading) end the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// After a clean end, how long the last queued messages may take to go out.
const LINGER: Duration = Duration::from_secs(1);

/// Who writes what the loop queues.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sending {
    /// The connection's writer thread.
    Thread,
    /// The loop itself, after each step, to the stream it reads (unit tests).
    Inline,
}

/// Connection state, named as in BEP 3.
struct Conn<'a, S> {
    torrent: &'a TorrentState,
    stream: S,
    remote: SocketAddr,
    remote_id: [u8; 20],
    outbox: &'a Outbox,
    sending: Sending,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    peer_has: Bitfield,
    /// Set when `peer_has` or our pieces changed, so interest is recomputed only then.
    interest_stale: bool,
    pipeline: Pipeline,
    have_pos: usize,
    /// The torrent's [`strike_count`](TorrentState::strike_count) when this peer's strikes
    /// were last looked up.
    strikes_seen: usize,
    last_received: Instant,
    last_sent: Instant,
    /// Whether the peer leaves our requests unanswered ([`snub`]).
    snub: Snub,
    /// The fast extension (BEP 6), if both sides speak it.
    fast: Fast,
    /// The peer set the DHT bit: it gets our `port` message.
    peer_runs_dht: bool,
    /// Set when the download limit says to read nothing more until then: not reading is
    /// what makes TCP slow the sender down.
    throttled_until: Option<Instant>,
    /// What the peer manager knows of this connection, and its choke decision.
    slot: Arc<PeerSlot>,
    /// Bytes of requested blocks received.
    received: u64,
    /// Pieces suggested (BEP 6) to the peer and by it ([`suggest`](crate::peer::suggest)).
    suggestions: Suggestions,
    /// The extension protocol (metadata served, peer exchange).
    ext: Extensions,
}

/// Runs a connection whose handshake is done until it ends, the torrent shuts down, or both
/// sides are complete; `theirs` is the peer's handshake (its reserved bits say which
/// extensions it speaks). Pieces it was fetching go back to the picker whatever happens, and
/// its writer thread has ended when this returns.
pub fn run(
    stream: PeerStream,
    torrent: &TorrentState,
    remote: SocketAddr,
    theirs: &Handshake,
) -> Result<(), ConnError> {
    // The read time-out is the loop's tick.
    let socket = stream.socket().try_clone()?;
    socket.set_read_timeout(Some(TICK))?;
    socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let _ = socket.set_nodelay(true);
    let (reading, mut sending) = stream.split();
    let outbox = Outbox::new();
    std::thread::scope(|s| {
        let writer = std::thread::Builder::new()
            .name(format!("send-{remote}"))
            .spawn_scoped(s, || writer::run(&outbox, &mut sending, torrent))?;
        let ending = Ending {
            outbox: &outbox,
            stream: &socket,
        };
        let result = run_loop(reading, torrent, remote, theirs, &outbox, Sending::Thread);
        // After a clean end the last messages (a `have`, `not interested`) may go out.
        if result.is_ok() && !torrent.is_shutting_down() {
            outbox.close(true);
            outbox.wait_finished(LINGER);
        }
        if outbox.failed() {
            // The peer stopped reading: reset the connection rather than leave megabytes in
            // the kernel's send buffer for a peer that will not take them.
            let _ = socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO));
        }
        drop(ending);
        let _ = writer.join();
        result
    })
}

/// Stops the writer thread when the loop ends, even by a panic (the scope would otherwise
/// wait for it forever): closes the outbox and shuts the socket down under a blocked write.
struct Ending<'a> {
    outbox: &'a Outbox,
    stream: &'a TcpStream,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        self.outbox.close(false);
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// The message loop on `stream`, with `outbox` written by `sending`.
fn run_loop<S: Read + Write>(
    stream: S,
    torrent: &TorrentState,
    remote: SocketAddr,
    theirs: &Handshake,
    outbox: &Outbox,
    sending: Sending,
) -> Result<(), ConnError> {
    let pieces = torrent.meta.info.piece_count();
    let mut conn = Conn {
        torrent,
        stream,
        remote,
        remote_id: theirs.peer_id,
        outbox,
        sending,
        am_choking: true,
        am_interested: false,
        peer_choking: true,
        peer_interested: false,
        peer_has: Bitfield::new(pieces),
        interest_stale: true,
        pipeline: Pipeline::new(DEFAULT_PEER_REQQ),
        have_pos: 0,
        strikes_seen: 0,
        last_received: Instant::now(),
        last_sent: Instant::now(),
        snub: Snub::new(snub::timeout()),
        fast: Fast::new(theirs.fast(), pieces),
        peer_runs_dht: theirs.dht(),
        throttled_until: None,
        slot: torrent.peers.join(remote),
        received: 0,
        suggestions: Suggestions::new(pieces),
        ext: Extensions::new(theirs.supports_extensions(), torrent),
    };
    torrent.connections.fetch_add(1, Ordering::SeqCst);
    let result = conn.drive(MessageReader::new(max_message_len(pieces)));
    torrent.peers.leave(&conn.slot);
    conn.ext.close(torrent, remote);
    torrent.connections.fetch_sub(1, Ordering::SeqCst);
    for index in conn.pipeline.pieces() {
        torrent.picker.put_back(index);
    }
    torrent.picker.remove_peer(&conn.peer_has);
    conn.give_back_dealt();
    result
}

impl<S: Read + Write> Conn<'_, S> {
    fn drive(&mut self, mut reader: MessageReader) -> Result<(), ConnError> {
        // Snapshot the log position before the bitfield so no verified piece goes unannounced.
        self.have_pos = self.torrent.have_log_len();
        let have = self.torrent.picker.have();
        if let Some(opening) = fast::opening(self.fast.enabled(), &have) {
            self.queue(opening);
        }
        for allowed in self.fast.grant(
            self.remote.ip(),
            &self.torrent.meta.info_hash.0,
            have.is_complete(),
        ) {
            self.queue(allowed);
        }
        if let (Some(dht), true) = (self.torrent.dht(), self.peer_runs_dht) {
            // BEP 5: our DHT port, so the peer can add our node to its table.
            if let Ok(addr) = dht.local_addr() {
                self.queue(Message::Port(addr.port()));
            }
        }
        if let Some(m) = self.ext.handshake(self.torrent, self.remote) {
            self.queue(m);
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
            if let Some(until) = self.throttled_until {
                // Wait in ticks, so shutdown, `have`s and keep-alives are not held up.
                let now = Instant::now();
                if now < until {
                    std::thread::sleep((until - now).min(TICK));
                    continue;
                }
                self.throttled_until = None;
            }
            match reader.read_frame(&mut self.stream) {
                Ok(Frame::Block { index, begin, data }) => {
                    self.last_received = Instant::now();
                    self.receive(index, begin, data)?;
                    self.throttle(data.len());
                }
                Ok(Frame::Message(message)) => {
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
            match self.snub.check(now) {
                Verdict::Unchanged => {}
                Verdict::Snubbed => self.on_snubbed(),
                Verdict::Hopeless => return Err(ConnError::Snubbed),
            }
        }
    }

    fn queue(&mut self, message: Message) {
        self.queue_all([message]);
    }

    /// Queues messages with one lock and one wake-up of the writer.
    fn queue_all(&mut self, messages: impl IntoIterator<Item = Message>) {
        if self.outbox.send_all(messages) {
            self.last_sent = Instant::now();
        }
    }

    /// Reports a failed write; writes what is queued when the loop writes inline.
    fn flush(&mut self) -> Result<(), ConnError> {
        if let Some(e) = self.outbox.take_failure() {
            return Err(e.into());
        }
        if self.sending == Sending::Inline {
            writer::write_ready(self.outbox, &mut self.stream, self.torrent)?;
        }
        Ok(())
    }

    /// Announces new pieces, updates interest and choking, and tops up our requests.
    fn housekeeping(&mut self) -> Result<(), ConnError> {
        let (new, pos) = self.torrent.haves_since(self.have_pos);
        self.have_pos = pos;
        for index in new {
            self.interest_stale = true;
            self.give_up(index);
            if !self.peer_has.get(index as usize) {
                self.queue(Message::Have(index));
            }
        }
        let want = if std::mem::take(&mut self.interest_stale) {
            self.torrent.is_downloading() && self.torrent.picker.wants_any_of(&self.peer_has)
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
        self.apply_choke_decision();
        // A fast peer that chokes us still serves the pieces it allows fast.
        if self.am_interested && (!self.peer_choking || self.fast.enabled()) {
            self.request_more();
        }
        if let Some(m) = self.ext.due(self.torrent, self.remote) {
            self.queue(m);
        }
        if self.last_sent.elapsed() > KEEPALIVE_EVERY {
            self.queue(Message::KeepAlive);
        }
        self.check_strikes()?;
        self.flush()
    }

    /// Tells the peer manager how this peer stands and follows its choke decision: requests
    /// queued for a peer we choke are dropped, as BEP 3 allows.
    fn apply_choke_decision(&mut self) {
        self.slot.set_snubbed(self.snub.is_snubbed());
        self.slot.set_counters(self.received, self.outbox.sent());
        let choke = !self.slot.unchoked();
        if choke == self.am_choking {
            return;
        }
        self.am_choking = choke;
        if choke {
            self.choke_peer();
            self.give_back_dealt();
        } else {
            // Suggestions first, so the peer has them when it picks its first pieces.
            self.deal_ahead();
            self.queue(Message::Unchoke);
        }
    }

    /// Fills the request window, taking new pieces from the picker once the blocks left in
    /// the pieces held cannot fill it.
    fn request_more(&mut self) {
        // A peer that chokes us (a fast one) serves only the pieces it allows fast.
        let now = Instant::now();
        let Some(from) = self.fast.askable(&self.peer_has, self.peer_choking, now) else {
            return;
        };
        let from = &*from;
        if self.pipeline.wants_piece() {
            // One list of the pieces held per refill, not one per piece taken: with one-block
            // pieces a refill takes up to a whole window of them.
            let mut holding = self.pipeline.pieces();
            while self.pipeline.wants_piece() {
                let suggested = self.suggestions.theirs();
                let Some(index) = self
                    .torrent
                    .picker
                    .take_preferring(from, &holding, suggested)
                else {
                    break;
                };
                self.suggestions.taken(index);
                // Not handed to us again in this refill, whether we keep it or not.
                holding.push(index);
                let Some(epoch) = self.torrent.sink.epoch(index) else {
                    // An endgame copy of a piece being hashed: nothing left to fetch.
                    self.torrent.picker.put_back(index);
                    continue;
                };
                let size = self.torrent.meta.info.piece_size(index as usize) as u32;
                self.pipeline.add_piece(index, size, epoch);
            }
        }
        let requests = self.pipeline.next_requests(now, |i| from.get(i as usize));
        if !requests.is_empty() {
            self.snub.on_requests(now);
        }
        self.queue_all(requests.into_iter().map(|r| Message::Request {
            index: r.index,
            begin: r.begin,
            length: r.length,
        }));
    }

    /// Charges `bytes` received to the download limits and holds further reads until they
    /// are paid for. The peer is not to blame for that time: it does not count as silence.
    fn throttle(&mut self, bytes: usize) {
        let wait = self.torrent.rate_limits.charge_download(bytes as u64);
        if !wait.is_zero() {
            self.throttled_until = Some(Instant::now() + wait);
            self.last_received += wait;
            self.snub.excuse(wait);
        }
    }

    /// Ends the connection once pieces with this peer's blocks in them failed their hash
    /// [`HASH_STRIKES`] times (the hashing counts the strikes), banning the peer.
    fn check_strikes(&mut self) -> Result<(), ConnError> {
        let count = self.torrent.strike_count();
        if count == self.strikes_seen {
            return Ok(());
        }
        self.strikes_seen = count;
        let strikes = self.torrent.strikes(self.remote);
        if strikes < HASH_STRIKES {
            return Ok(());
        }
        self.torrent.ban(self.remote, self.remote_id);
        Err(ConnError::BadPieces(strikes))
    }

    fn handle(&mut self, message: Message) -> Result<(), ConnError> {
        let pieces = self.peer_has.len();
        match message {
            Message::KeepAlive | Message::Unknown(_) => {}
            Message::Suggest(index) => self.on_suggest(index),
            Message::Port(port) => {
                if let (Some(dht), true) = (self.torrent.dht(), port != 0) {
                    dht.ping(SocketAddr::new(self.remote.ip(), port));
                }
            }
            Message::Cancel {
                index,
                begin,
                length,
            } => self.on_cancel(BlockRequest {
                index,
                begin,
                length,
            }),
            Message::Choke => self.on_choked(),
            Message::Unchoke => self.peer_choking = false,
            Message::Interested | Message::NotInterested => {
                self.peer_interested = message == Message::Interested;
                if self.slot.set_interested(self.peer_interested) {
                    self.torrent.peers.rechoke_soon();
                }
            }
            Message::Have(index) => {
                if index as usize >= pieces {
                    return Err(ConnError::BadHave(index));
                }
                if self.peer_has.set(index as usize) {
                    self.slot.add_piece();
                    self.interest_stale = true;
                    self.torrent.picker.add_have(index);
                }
            }
            Message::Bitfield(bytes) => {
                let new = Bitfield::from_bytes(&bytes, pieces).map_err(ConnError::BadBitfield)?;
                self.replace_peer_has(new);
            }
            Message::HaveAll if self.fast.enabled() => {
                self.replace_peer_has(Bitfield::full(pieces))
            }
            Message::HaveNone if self.fast.enabled() => {
                self.replace_peer_has(Bitfield::new(pieces))
            }
            Message::Reject {
                index,
                begin,
                length,
            } if self.fast.enabled() => self.on_reject(BlockRequest {
                index,
                begin,
                length,
            }),
            Message::AllowedFast(index) => self.fast.on_allowed_fast(index),
            // Fast messages from a peer that did not set the bit: ignored.
            Message::HaveAll | Message::HaveNone | Message::Reject { .. } => {}
            Message::Request {
                index,
                begin,
                length,
            } => self.serve(index, begin, length)?,
            Message::Piece { index, begin, data } => {
                self.receive(index, begin, &data)?;
                self.throttle(data.len());
            }
            Message::Extended { id, payload } => {
                let mut replies = Vec::new();
                let (torrent, remote) = (self.torrent, self.remote);
                self.ext
                    .on_message(id, &payload, torrent, remote, &mut replies)?;
                replies.into_iter().for_each(|m| self.queue(m));
            }
        }
        Ok(())
    }

    /// What the peer has, from a `bitfield`, `have all` or `have none`.
    fn replace_peer_has(&mut self, new: Bitfield) {
        self.interest_stale = true;
        self.torrent.picker.replace_bitfield(&self.peer_has, &new);
        self.slot.set_pieces(new.count() as u64);
        self.peer_has = new;
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
        let request = BlockRequest {
            index,
            begin,
            length,
        };
        // A choked peer's requests are dropped, as BEP 3 says, or rejected (BEP 6); so are
        // requests for pieces we do not have yet (the peer raced our `have`).
        let have = self.torrent.picker.has(index);
        let granted = self.fast.granted(index);
        match fast::answer(self.fast.enabled(), self.am_choking, have, granted) {
            Answer::Serve => {}
            Answer::Reject => {
                self.queue(outstanding::reject(request));
                return self.flush();
            }
            Answer::Ignore => return Ok(()),
        }
        if !self.start_serving(request) {
            return self.flush();
        }
        // The writer reads the block from disk when its turn comes.
        if self.outbox.serve(request) {
            self.last_sent = Instant::now();
        } else {
            log::debug!(
                "{}: more than {MAX_QUEUED_BLOCKS} requests queued, dropped {request:?}",
                self.remote
            );
            if self.fast.enabled() {
                self.queue(outstanding::reject(request));
            }
        }
        self.flush()
    }

    /// A block arrived: one we asked for is written straight to its place on disk (the only
    /// copy of it we make), and a piece whose last block this was goes to be hashed.
    fn receive(&mut self, index: u32, begin: u32, data: &[u8]) -> Result<(), ConnError> {
        let in_flight = self.pipeline.in_flight();
        let landed = self
            .pipeline
            .on_block(index, begin, data.len(), Instant::now());
        // Only a block we asked for shows the peer is answering: junk must not keep a snubbing
        // peer's requests (and the pieces behind them) alive.
        if self.pipeline.in_flight() < in_flight {
            self.received += data.len() as u64;
            if self
                .snub
                .on_block(self.pipeline.in_flight(), Instant::now())
            {
                self.pipeline.set_cap(None);
            }
            self.release_stalled();
        }
        let Some(landed) = landed else {
            return Ok(());
        };
        let first_from = landed.first.then_some(self.remote);
        if !self
            .torrent
            .write_block(index, landed.epoch, begin, data, first_from)
        {
            // Closed under us (another copy is being hashed, or failed and reopened), or the
            // disk failed: the piece is not ours to finish.
            if landed.done {
                self.torrent.picker.put_back(index);
            } else {
                self.give_up(index);
            }
            return Ok(());
        }
        if landed.done {
            self.torrent.piece_written(index, landed.epoch, self.remote);
            self.check_strikes()?;
        }
        Ok(())
    }
}

mod outstanding;
mod suggesting;
#[cfg(test)]
mod tests;
