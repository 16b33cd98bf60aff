//! The state one peer process keeps for one torrent, shared by all its connection threads,
//! its announce thread and the progress display.
//!
//! How a piece goes from missing to verified is written down in [`picker`](crate::peer::picker);
//! [`TorrentState::write_block`] is where a fetched block goes to disk,
//! [`TorrentState::piece_written`] where a whole piece is sent to be hashed, and
//! [`TorrentState::verify_written`] where it is hashed (on a [`HashPool`](crate::peer::hash_pool::HashPool) thread) and recorded.
//!
//! # Locks
//!
//! The shared parts behind locks are the picker's piece states (a mutex inside [`Picker`]), the
//! have log (an `RwLock`: every connection reads it each tick, a verified piece writes it), and
//! the mutexes of the per-peer stats, the hash strikes, the dialled and banned sets, the open
//! connections ([`OpenConnections`]), the storage failure and the feed's listening addresses
//! ([`PeerFeed`]), and the senders list of the [`PieceSink`]. [`Storage`] needs none: it does
//! positioned reads and writes (its file pool's lock is its own, held for bookkeeping only); the
//! sink's write epochs keep a block off a piece being hashed or verified.
//!
//! The rule that keeps them free of deadlocks: **at most one of these locks is held at a time**,
//! and none across disk or socket I/O, a send to the announce thread, or a call into another
//! component. Every method here takes a lock for one step and lets go before the next (in
//! [`claim_dial`](TorrentState::claim_dial) the banned set is released before the dialled set
//! is taken: each operand of `&&` drops its temporaries). The picker holds its mutex only for
//! its own bookkeeping and a send on its unbounded queue, which never blocks. A change that
//! must hold two at once takes them in this order and documents it here: picker state, have
//! log, stats, sink senders, strikes, banned, dialled, connected, failure, the feed's listening addresses.
//!
//! One ordering between them matters without nesting: a piece enters the picker's `have`
//! ([`Picker::finish`]) before the have log, and a new connection reads the log position
//! ([`TorrentState::have_log_len`]) before the picker's `have` for its bitfield. A piece
//! verified in between is then in both the bitfield and the `have` messages that follow (one
//! redundant `have`), never in neither.

use crate::dht::Dht;
use crate::disk::storage::Storage;
use crate::lock::{lock, read, write};
use crate::metainfo::Metainfo;
use crate::peer::choker::DEFAULT_UPLOAD_SLOTS;
use crate::peer::connection_limits::ConnectionLimits;
use crate::peer::encryption::Encryption;
use crate::peer::error::ConnError;
use crate::peer::hash_pool::HashQueue;
use crate::peer::open_connections::{Direction, Link, OpenConnections};
use crate::peer::peer_feed::PeerFeed;
use crate::peer::peer_manager::PeerManager;
use crate::peer::picker::Picker;
use crate::peer::piece_sink::PieceSink;
use crate::peer::rate_limit::{RateLimits, TorrentLimits};
use crate::peer::suggest::Dealer;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

/// Bytes and verified pieces received from one remote peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Bytes of verified pieces.
    pub bytes: u64,
    /// Verified pieces.
    pub pieces: u64,
}

/// Pieces failing their hash with a peer's blocks in them before it is dropped and banned.
pub const HASH_STRIKES: u32 = 3;

/// What became of a written piece hashed by [`TorrentState::verify_written`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Verified: the piece is ours now.
    Verified,
    /// Verified, but recorded already.
    Duplicate,
    /// The data does not match the piece's SHA-1.
    HashMismatch,
}

/// What the announce thread is told when the torrent changes state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TorrentEvent {
    /// The last missing piece of the whole torrent was verified (sent once; never for a
    /// selective download that leaves pieces out: that peer is no seeder).
    Completed,
}

/// One torrent inside a running peer.
pub struct TorrentState {
    /// The torrent.
    pub meta: Metainfo,
    /// Its files in the peer's folder.
    pub storage: Storage,
    /// Which pieces are verified, and which to fetch next.
    pub picker: Picker,
    /// Which pieces take blocks now, and who wrote into them.
    pub sink: PieceSink,
    /// Where written pieces are hashed (unset: on the connection thread that wrote them).
    hash_queue: OnceLock<HashQueue>,
    /// Pieces failed by address, and how many strikes were counted in all.
    strikes: Mutex<HashMap<SocketAddr, u32>>,
    strike_count: AtomicUsize,
    /// This process's peer id (the same for every torrent).
    pub peer_id: [u8; 20],
    /// Set once, when the process shuts down.
    pub shutdown: Arc<AtomicBool>,
    /// Pieces in the order they were verified; connections send `have` for new entries.
    have_log: RwLock<Vec<u32>>,
    /// The have log's length, so a connection that is up to date takes no lock per message.
    have_log_len: AtomicUsize,
    /// Bytes served to other peers.
    pub uploaded: AtomicU64,
    /// Verified bytes fetched by this process (not counting discarded copies).
    pub downloaded: AtomicU64,
    /// Bytes wanted when the process started.
    pub left_at_start: u64,
    /// Bytes still wanted: `left_at_start` less every verified piece stored since.
    left: AtomicU64,
    /// Bytes of the pieces a selective download leaves out and lacks: part of `left` for good.
    left_out: u64,
    /// Bytes of the wanted pieces (every piece, unless the download is selective).
    wanted_bytes: u64,
    /// When the process started, for the completion line's speed.
    pub started: Instant,
    /// Connections past their handshake, both directions.
    pub connections: AtomicUsize,
    /// Every connection's state and rates, and who is unchoked.
    pub peers: PeerManager,
    /// Which pieces a seeder suggests to whom, so each leaves it once before any twice.
    pub dealer: Dealer,
    /// By connection address, with the connection's peer id and direction when it was open.
    stats: Mutex<BTreeMap<SocketAddr, (PeerStats, Option<Link>)>>,
    /// Addresses with an outgoing connection open, so none is dialled twice.
    dialled: Mutex<HashSet<SocketAddr>>,
    /// Connections past their handshake: a peer that dials us while we dial it gets one
    /// connection, not two splitting the same work.
    connected: OpenConnections,
    /// Peers dropped for sending bad data, by address and by peer id.
    banned: Mutex<(HashSet<SocketAddr>, HashSet<[u8; 20]>)>,
    completed: AtomicBool,
    /// Held while a verified piece is counted (picker, `left`, `downloaded`, have log, stats)
    /// and completion decided: with several hash threads, the piece that completes the
    /// torrent must not be seen complete while another thread's piece is still uncounted
    /// (the `complete` line and the `completed` announce would miss it).
    accounting: Mutex<()>,
    /// A storage failure that stopped the download (full disk, ...).
    failure: Mutex<Option<String>>,
    events: crossbeam_channel::Sender<TorrentEvent>,
    /// Upload and download limits this torrent's connections charge (its own and the
    /// process's; each has its own lock, held for arithmetic only).
    pub rate_limits: TorrentLimits,
    /// How many connections this torrent and the process keep open.
    limits: Arc<ConnectionLimits>,
    /// The process's DHT node, when it runs for this torrent (never for a private one).
    dht: Option<Arc<Dht>>,
    /// Peers learnt from peer exchange (and other sources than the tracker), to dial.
    pub feed: PeerFeed,
    /// Whether its outgoing connections are encrypted (`--encryption`).
    pub encryption: Encryption,
}

impl TorrentState {
    /// Wraps an opened, verified torrent. `events` reaches its announce thread.
    pub fn new(
        meta: Metainfo,
        storage: Storage,
        picker: Picker,
        peer_id: [u8; 20],
        shutdown: Arc<AtomicBool>,
        events: crossbeam_channel::Sender<TorrentEvent>,
    ) -> TorrentState {
        let complete = picker.is_done();
        let left_at_start = Self::left_of(&meta, &picker);
        let (have, wanted) = (picker.have(), picker.wanted());
        let size = |i: usize| meta.info.piece_size(i);
        let wanted_bytes = wanted.ones().map(size).sum();
        let left_out = (0..have.len())
            .filter(|&i| !wanted.get(i) && !have.get(i))
            .map(size)
            .sum();
        TorrentState {
            sink: PieceSink::new(&picker.have()),
            hash_queue: OnceLock::new(),
            strikes: Mutex::new(HashMap::new()),
            strike_count: AtomicUsize::new(0),
            meta,
            storage,
            picker,
            peer_id,
            shutdown,
            have_log: RwLock::new(Vec::new()),
            have_log_len: AtomicUsize::new(0),
            accounting: Mutex::new(()),
            uploaded: AtomicU64::new(0),
            downloaded: AtomicU64::new(0),
            left_at_start,
            left: AtomicU64::new(left_at_start),
            left_out,
            wanted_bytes,
            started: Instant::now(),
            connections: AtomicUsize::new(0),
            peers: PeerManager::new(DEFAULT_UPLOAD_SLOTS),
            dealer: Dealer::new(have.len(), have.is_complete()),
            stats: Mutex::new(BTreeMap::new()),
            dialled: Mutex::new(HashSet::new()),
            connected: OpenConnections::default(),
            banned: Mutex::new((HashSet::new(), HashSet::new())),
            completed: AtomicBool::new(complete),
            failure: Mutex::new(None),
            events,
            rate_limits: TorrentLimits::default(),
            limits: Arc::new(ConnectionLimits::default()),
            dht: None,
            feed: PeerFeed::default(),
            encryption: Encryption::default(),
        }
    }

    /// Puts this torrent under the process's rate limits.
    pub fn with_global_limits(mut self, global: Arc<RateLimits>) -> TorrentState {
        self.rate_limits = TorrentLimits::new(global);
        self
    }

    /// Dials this torrent's peers with the `--encryption` policy.
    pub fn with_encryption(mut self, encryption: Encryption) -> TorrentState {
        self.encryption = encryption;
        self
    }

    /// Puts this torrent under the process's connection limits (register it with them too).
    pub fn with_connection_limits(mut self, limits: Arc<ConnectionLimits>) -> TorrentState {
        self.limits = limits;
        self
    }

    /// Lets this torrent's connections tell peers the DHT port and learn theirs.
    pub fn with_dht(mut self, dht: Option<Arc<Dht>>) -> TorrentState {
        self.dht = dht;
        self
    }

    /// The DHT node, when it runs for this torrent.
    pub fn dht(&self) -> Option<&Arc<Dht>> {
        self.dht.as_ref()
    }

    fn left_of(meta: &Metainfo, picker: &Picker) -> u64 {
        let have = picker.have();
        (0..have.len())
            .filter(|&i| !have.get(i))
            .map(|i| meta.info.piece_size(i))
            .sum()
    }

    /// Bytes still missing of the whole torrent (BEP 3 `left`: what it takes to be a seeder, so
    /// a finished selective download still reports the pieces it left out).
    pub fn left(&self) -> u64 {
        self.left.load(Ordering::SeqCst)
    }

    /// Bytes of the wanted pieces verified, and of all the wanted pieces: what the progress
    /// display measures (the whole torrent, unless the download is selective).
    pub fn wanted_progress(&self) -> (u64, u64) {
        let wanted_left = self.left().saturating_sub(self.left_out);
        (
            self.wanted_bytes.saturating_sub(wanted_left),
            self.wanted_bytes,
        )
    }

    /// Whether every wanted piece is verified (every piece, unless the download is selective).
    pub fn is_complete(&self) -> bool {
        self.completed.load(Ordering::SeqCst)
    }

    /// Whether the process is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Whether this torrent still downloads (not complete, not stopped by a disk failure).
    pub fn is_downloading(&self) -> bool {
        !self.is_complete() && lock(&self.failure).is_none()
    }

    /// Pieces verified since `from` in the have log, and the new position.
    pub fn haves_since(&self, from: usize) -> (Vec<u32>, usize) {
        if self.have_log_len.load(Ordering::SeqCst) == from {
            return (Vec::new(), from);
        }
        let log = read(&self.have_log);
        (log[from.min(log.len())..].to_vec(), log.len())
    }

    /// Length of the have log (the position a new connection starts from).
    pub fn have_log_len(&self) -> usize {
        read(&self.have_log).len()
    }

    /// Hashes written pieces on `pool`'s threads (see [`HashPool::attach`](crate::peer::hash_pool::HashPool::attach)).
    pub(crate) fn use_hash_queue(&self, queue: HashQueue) {
        let _ = self.hash_queue.set(queue);
    }

    /// Writes a block of piece `index`, fetched at write epoch `epoch` (see
    /// [`PieceSink`]); `first_from` names the peer on its first block of the piece. `false`
    /// when the block was not written: the piece was closed or reopened since (the caller lets
    /// go of it), or the write failed, which stops this torrent's download (see
    /// [`failure`](Self::failure)) and keeps what is on disk.
    pub fn write_block(
        &self,
        index: u32,
        epoch: u32,
        begin: u32,
        data: &[u8],
        first_from: Option<SocketAddr>,
    ) -> bool {
        let written = self
            .sink
            .write(&self.storage, index, epoch, begin, data, first_from);
        written.unwrap_or_else(|e| {
            lock(&self.failure).get_or_insert_with(|| e.to_string());
            false
        })
    }

    /// Every block of piece `index` (taken at `epoch`) is written, the last by `from`: the
    /// piece is closed and hashed, on the hash pool if there is one, or else here and now.
    /// `false` when another holder closed it first: the piece is let go of (put back).
    pub fn piece_written(&self, index: u32, epoch: u32, from: SocketAddr) -> bool {
        if !self.sink.close(index, epoch) {
            self.picker.put_back(index);
            return false;
        }
        match self.hash_queue.get() {
            Some(queue) => queue.submit(index, from),
            None => {
                self.verify_written(index, from, &mut Vec::new());
            }
        }
        true
    }

    /// Hashes the closed piece `index` from disk (`buf` is scratch space). A match is
    /// recorded: the picker's verified set, the have log, the byte counts, `from`'s stats. A
    /// mismatch reopens the piece, puts it back on the work queue and counts a strike against
    /// every peer that wrote into it.
    pub fn verify_written(&self, index: u32, from: SocketAddr, buf: &mut Vec<u8>) -> Stored {
        let info = &self.meta.info;
        if !crate::disk::stored_piece_matches(&self.storage, info, index as usize, buf) {
            let senders = self.sink.reopen(index);
            for addr in &senders {
                self.strike(index, *addr);
            }
            self.picker.put_back(index);
            return Stored::HashMismatch;
        }
        self.sink.verified(index);
        let accounting = lock(&self.accounting);
        if !self.picker.finish(index) {
            return Stored::Duplicate;
        }
        self.storage.start_writeback(index);
        let size = info.piece_size(index as usize);
        // `left` drops before the have log grows and before `Completed` is sent, so the
        // `completed` announce (and any announce after it) carries the true figure.
        self.left.fetch_sub(size, Ordering::SeqCst);
        let mut log = write(&self.have_log);
        log.push(index);
        self.have_log_len.store(log.len(), Ordering::SeqCst);
        drop(log);
        self.downloaded.fetch_add(size, Ordering::SeqCst);
        let link = self.connected.link_of(from);
        let mut stats = lock(&self.stats);
        let (s, known) = stats.entry(from).or_default();
        s.bytes += size;
        s.pieces += 1;
        *known = known.or(link);
        drop(stats);
        if self.picker.is_done() && !self.completed.swap(true, Ordering::SeqCst) {
            if let Err(e) = self.storage.sync() {
                log::warn!("{}: {e}", self.meta.info.name);
            }
            if self.picker.is_complete() {
                let _ = self.events.send(TorrentEvent::Completed);
            }
        }
        drop(accounting);
        Stored::Verified
    }

    /// Counts a failed piece against `addr`; at [`HASH_STRIKES`] it is banned (by address,
    /// and by peer id while it is connected; its connection sees [`strikes`](Self::strikes)
    /// and ends).
    fn strike(&self, index: u32, addr: SocketAddr) {
        let count = {
            let mut strikes = lock(&self.strikes);
            let count = strikes.entry(addr).or_default();
            *count += 1;
            *count
        };
        self.strike_count.fetch_add(1, Ordering::SeqCst);
        log::warn!(
            "{}: piece {index} with blocks from {addr} failed its hash ({count} so far)",
            self.meta.info.name
        );
        if count >= HASH_STRIKES {
            let peer_id = self.connected.link_of(addr).map(|l| l.peer_id);
            let mut banned = lock(&self.banned);
            banned.0.insert(addr);
            banned.1.extend(peer_id);
        }
    }

    /// Failed pieces `addr` wrote into.
    pub fn strikes(&self, addr: SocketAddr) -> u32 {
        lock(&self.strikes).get(&addr).copied().unwrap_or(0)
    }

    /// Strikes counted against anyone so far: a connection looks up its own only when this
    /// changed.
    pub fn strike_count(&self) -> usize {
        self.strike_count.load(Ordering::SeqCst)
    }

    /// Fetches, writes and hashes a whole piece as a connection would, from `from`, right here.
    #[cfg(test)]
    pub(crate) fn store_piece(&self, index: u32, data: &[u8], from: SocketAddr) -> Stored {
        let Some(epoch) = self.sink.epoch(index) else {
            self.picker.put_back(index);
            return Stored::Duplicate;
        };
        if !self.write_block(index, epoch, 0, data, Some(from)) {
            self.picker.put_back(index);
            return Stored::Duplicate;
        }
        let mut buf = Vec::new();
        if !self.sink.close(index, epoch) {
            self.picker.put_back(index);
            return Stored::Duplicate;
        }
        self.verify_written(index, from, &mut buf)
    }

    /// The storage failure that stopped this torrent's download, if any.
    pub fn failure(&self) -> Option<String> {
        lock(&self.failure).clone()
    }

    /// Per-peer download figures, by remote address. A peer that served over two connections
    /// (both halves of a simultaneous open, before one closed) is counted once, under the
    /// address we dialled (its listening address) where there is one.
    pub fn peer_stats(&self) -> BTreeMap<SocketAddr, PeerStats> {
        let stats = lock(&self.stats).clone();
        let mut names: HashMap<(IpAddr, [u8; 20]), SocketAddr> = HashMap::new();
        for link in stats.values().filter_map(|(_, link)| *link) {
            let name = names
                .entry((link.addr.ip(), link.peer_id))
                .or_insert(link.addr);
            if link.direction == Direction::Outgoing {
                *name = link.addr;
            }
        }
        let mut merged: BTreeMap<SocketAddr, PeerStats> = BTreeMap::new();
        for (addr, (s, link)) in stats {
            let name = link.map_or(addr, |l| names[&(addr.ip(), l.peer_id)]);
            let sum = merged.entry(name).or_default();
            sum.bytes += s.bytes;
            sum.pieces += s.pieces;
        }
        merged
    }

    /// Claims `addr` for an outgoing connection; `false` if one is open or the peer is banned.
    pub fn claim_dial(&self, addr: SocketAddr) -> bool {
        !lock(&self.banned).0.contains(&addr) && lock(&self.dialled).insert(addr)
    }

    /// Addresses claimed for outgoing connections (dialling or open).
    pub fn dialled_count(&self) -> usize {
        lock(&self.dialled).len()
    }

    /// Releases an address claimed with [`claim_dial`](Self::claim_dial).
    pub fn release_dial(&self, addr: SocketAddr) {
        lock(&self.dialled).remove(&addr);
    }

    /// Records a connection whose handshake is done, for as long as the returned guard lives;
    /// `Err(Duplicate)` when it is the losing half of a simultaneous open. A connection it
    /// replaces is closed through its `stream` handle (see
    /// [`open_connections`](crate::peer::open_connections)).
    /// When this torrent or the process is at its connection limit, an idle connection is
    /// dropped to make room, or else this one is refused (see
    /// [`connection_limits`](crate::peer::connection_limits)).
    pub fn admit(&self, link: Link, stream: Option<TcpStream>) -> Result<Admitted<'_>, ConnError> {
        self.limits.make_room(self)?;
        let token = self.connected.admit(&self.peer_id, link, stream)?;
        self.limits.opened();
        Ok(Admitted {
            torrent: self,
            token,
        })
    }

    /// How many connections are past their handshake.
    pub fn connection_count(&self) -> usize {
        self.connected.len()
    }

    /// The connections past their handshake, with the tokens to [`evict`](Self::evict) them.
    pub(crate) fn open_tokens(&self) -> Vec<(u64, Link)> {
        self.connected.tokens()
    }

    /// Closes an admitted connection to make room for another.
    pub(crate) fn evict(&self, token: u64) {
        if self.connected.evict(token) {
            self.limits.closed();
        }
    }

    /// The connections past their handshake.
    pub fn links(&self) -> Vec<Link> {
        self.connected.links()
    }

    /// Bans a peer that sent bad data, so it is neither dialled nor accepted again.
    pub fn ban(&self, addr: SocketAddr, peer_id: [u8; 20]) {
        let mut banned = lock(&self.banned);
        banned.0.insert(addr);
        banned.1.insert(peer_id);
    }

    /// Whether `peer_id` was banned.
    pub fn is_banned(&self, peer_id: &[u8; 20]) -> bool {
        lock(&self.banned).1.contains(peer_id)
    }
}

/// A connection recorded by [`TorrentState::admit`]; dropping it forgets the connection.
pub struct Admitted<'a> {
    torrent: &'a TorrentState,
    token: u64,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if self.torrent.connected.remove(self.token) {
            self.torrent.limits.closed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitfield::Bitfield;
    use crate::peer::test_support::{Fixture, PIECE};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn a_verified_piece_is_written_logged_and_counted_once() {
        let f = Fixture::new(3, &[]);
        let piece = f.state.picker.take(&Bitfield::full(3), &[]).unwrap();
        let data = f.piece(piece);
        assert_eq!(f.state.store_piece(piece, data, addr(1)), Stored::Verified);
        assert_eq!(
            f.state.storage.read(piece, 0, data.len() as u32).unwrap(),
            data
        );
        // An endgame copy that arrives later is discarded.
        assert_eq!(f.state.store_piece(piece, data, addr(2)), Stored::Duplicate);
        assert_eq!(f.state.haves_since(0), (vec![piece], 1));
        assert_eq!(f.state.haves_since(1), (vec![], 1));
        assert_eq!(f.state.downloaded.load(Ordering::SeqCst), data.len() as u64);
        let stats = f.state.peer_stats();
        assert_eq!(stats.len(), 1);
        assert_eq!(
            stats[&addr(1)],
            PeerStats {
                bytes: data.len() as u64,
                pieces: 1
            }
        );
        assert!(!f.state.is_complete());
        assert!(f.events.try_recv().is_err());
    }

    #[test]
    fn a_piece_failing_its_hash_goes_back_to_the_picker() {
        let f = Fixture::new(3, &[0]);
        let piece = f.state.picker.take(&Bitfield::full(3), &[]).unwrap();
        let junk = vec![1u8; PIECE as usize];
        assert_eq!(
            f.state
                .store_piece(piece, &junk[..f.piece(piece).len()], addr(1)),
            Stored::HashMismatch
        );
        assert_eq!(f.state.haves_since(0), (vec![], 0));
        assert_eq!(f.state.downloaded.load(Ordering::SeqCst), 0);
        let mut only = Bitfield::new(3);
        only.set(piece as usize);
        assert_eq!(f.state.picker.take(&only, &[]), Some(piece));
    }

    #[test]
    fn copies_stored_at_once_log_each_piece_once_and_complete_once() {
        let f = Fixture::new(4, &[]);
        std::thread::scope(|s| {
            for port in 0..4 {
                let f = &f;
                s.spawn(move || {
                    for piece in 0..4 {
                        f.state.store_piece(piece, f.piece(piece), addr(port));
                    }
                });
            }
        });
        let (mut log, len) = f.state.haves_since(0);
        log.sort();
        assert_eq!((log, len), (vec![0, 1, 2, 3], 4));
        assert_eq!(
            f.state.downloaded.load(Ordering::SeqCst),
            f.content.len() as u64
        );
        let pieces: u64 = f.state.peer_stats().values().map(|s| s.pieces).sum();
        assert_eq!(pieces, 4);
        assert!(f.state.is_complete());
        assert_eq!(f.state.left(), 0, "each piece subtracted once");
        assert_eq!(f.events.try_recv(), Ok(TorrentEvent::Completed));
        assert!(f.events.try_recv().is_err(), "completed once");
    }

    #[test]
    fn progress_measures_the_wanted_pieces_only() {
        // Pieces 1 and 3 (the short last one) wanted, piece 0 on disk already.
        let f = Fixture::wanting(4, &[0], Some(&[1, 3]));
        let wanted = PIECE as u64 + PIECE as u64 / 2;
        assert_eq!(f.state.wanted_progress(), (0, wanted));
        f.state.store_piece(3, f.piece(3), addr(1));
        assert_eq!(f.state.wanted_progress(), (PIECE as u64 / 2, wanted));
        f.state.store_piece(1, f.piece(1), addr(1));
        assert_eq!(f.state.wanted_progress(), (wanted, wanted));
        assert!(f.state.is_complete());
        assert_eq!(f.state.left(), PIECE as u64, "piece 2 is still missing");
        // Not selective: the whole torrent, what is on disk included.
        let all = Fixture::new(4, &[0]);
        let total = all.content.len() as u64;
        assert_eq!(all.state.wanted_progress(), (PIECE as u64, total));
    }

    #[test]
    fn left_counts_down_with_each_verified_piece_and_only_then() {
        let f = Fixture::new(4, &[1]);
        let total = f.content.len() as u64;
        let start = total - PIECE as u64;
        assert_eq!((f.state.left_at_start, f.state.left()), (start, start));
        // A piece failing its hash, and the last (short) piece twice: only verified,
        // first copies count.
        let junk = vec![9u8; PIECE as usize];
        f.state.store_piece(0, &junk, addr(1));
        assert_eq!(f.state.left(), start);
        f.state.store_piece(3, f.piece(3), addr(1));
        f.state.store_piece(3, f.piece(3), addr(2));
        assert_eq!(f.state.left(), start - PIECE as u64 / 2);
        for piece in [0, 2] {
            f.state.store_piece(piece, f.piece(piece), addr(1));
        }
        assert_eq!(f.state.left(), 0);
        assert!(f.state.is_complete());
        // The announce thread, woken by `Completed`, reads the final figure.
        assert_eq!(f.events.try_recv(), Ok(TorrentEvent::Completed));
        assert_eq!(f.state.left_at_start, start, "the start figure stays");
    }

    #[test]
    fn a_peer_that_served_over_two_connections_is_credited_once() {
        let f = Fixture::new(4, &[]);
        let link = |port, peer_id, direction| Link {
            addr: addr(port),
            peer_id,
            direction,
        };
        // A higher id than ours: both halves of its simultaneous open are admitted here.
        let high = [b'~'; 20];
        let _ours = f.state.admit(link(6881, high, Direction::Outgoing), None);
        let _theirs = f.state.admit(link(50000, high, Direction::Incoming), None);
        let _other = f
            .state
            .admit(link(50001, [b'x'; 20], Direction::Incoming), None);
        for (piece, port) in [(0, 50000), (1, 6881), (2, 50000), (3, 50001)] {
            f.state.store_piece(piece, f.piece(piece), addr(port));
        }
        let stats = f.state.peer_stats();
        let credited: Vec<(u16, u64)> = stats.iter().map(|(a, s)| (a.port(), s.pieces)).collect();
        assert_eq!(credited, vec![(6881, 3), (50001, 1)]);
        let bytes: u64 = stats.values().map(|s| s.bytes).sum();
        assert_eq!(bytes, f.content.len() as u64);
    }

    #[test]
    fn a_full_table_refuses_a_newcomer_when_no_connection_is_idle() {
        let limits = Arc::new(ConnectionLimits::new(2, 3));
        // Two torrents of one process (their fixtures keep their folders).
        let (mut f1, mut f2) = (Fixture::new(1, &[]), Fixture::new(1, &[]));
        let limited = |f: &mut Fixture| {
            let state = Arc::get_mut(&mut f.state).expect("not shared yet");
            state.limits = limits.clone();
            limits.register(&f.state);
            f.state.clone()
        };
        let (one, two) = (limited(&mut f1), limited(&mut f2));
        let link = |port| Link {
            addr: addr(port),
            peer_id: [port as u8; 20],
            direction: Direction::Incoming,
        };
        // Connections that just started exchanged nothing yet, but are not idle for long.
        let first = one.admit(link(1), None).unwrap();
        let _second = one.admit(link(2), None).unwrap();
        assert!(matches!(
            one.admit(link(3), None),
            Err(ConnError::TooManyConnections(2))
        ));
        let _third = two.admit(link(4), None).unwrap();
        assert!(matches!(
            two.admit(link(5), None),
            Err(ConnError::TooManyConnections(3)),
        ));
        drop(first);
        assert!(
            two.admit(link(5), None).is_ok(),
            "a closed one frees its place"
        );
    }

    #[test]
    fn dial_claims_and_peer_registrations_are_exclusive_and_bans_stick() {
        let f = Fixture::new(1, &[]);
        assert!(f.state.claim_dial(addr(1)));
        assert!(!f.state.claim_dial(addr(1)), "already dialled");
        f.state.release_dial(addr(1));
        assert!(f.state.claim_dial(addr(1)));
        f.state.release_dial(addr(1));
        // OUR_ID starts with '-' (0x2d): a peer id of 1s is lower, so we keep our dial.
        let link = |port, direction| Link {
            addr: addr(port),
            peer_id: [1; 20],
            direction,
        };
        let ours = f.state.admit(link(1, Direction::Outgoing), None).unwrap();
        let twin = f.state.admit(link(2, Direction::Incoming), None);
        assert!(
            matches!(twin, Err(ConnError::Duplicate)),
            "simultaneous open"
        );
        drop(ours);
        assert!(f.state.links().is_empty(), "forgotten with its guard");
        assert!(f.state.admit(link(2, Direction::Incoming), None).is_ok());
        f.state.ban(addr(1), [2; 20]);
        assert!(!f.state.claim_dial(addr(1)));
        assert!(f.state.is_banned(&[2; 20]));
        assert!(!f.state.is_banned(&[1; 20]));
    }

    #[test]
    fn a_piece_being_hashed_is_neither_missing_nor_verified_until_the_pool_hashed_it() {
        let f = Fixture::new(3, &[]);
        let all = Bitfield::full(3);
        let piece = f.state.picker.take(&all, &[]).unwrap();
        let epoch = f.state.sink.epoch(piece).unwrap();
        let data = f.piece(piece);
        assert!(f.state.write_block(piece, epoch, 0, data, Some(addr(1))));
        // What `piece_written` does before it queues the piece for a hash thread.
        assert!(f.state.sink.close(piece, epoch));
        assert!(!f.state.picker.has(piece), "not verified");
        let others: Vec<u32> = (0..2)
            .map(|_| f.state.picker.take(&all, &[piece]).unwrap())
            .collect();
        assert!(!others.contains(&piece), "not queued as missing");
        // The endgame may offer it again, but it takes no blocks.
        assert_eq!(f.state.sink.epoch(piece), None);
        assert!(
            !f.state
                .write_block(piece, epoch, 0, &[0; 10], Some(addr(2)))
        );
        assert_eq!(
            f.state.verify_written(piece, addr(1), &mut Vec::new()),
            Stored::Verified
        );
        assert!(f.state.picker.has(piece));

        // With a pool attached, another thread hashes and records it.
        let pool = crate::peer::hash_pool::HashPool::start().unwrap();
        pool.attach(&f.state);
        let next = others[0];
        let epoch = f.state.sink.epoch(next).unwrap();
        assert!(
            f.state
                .write_block(next, epoch, 0, f.piece(next), Some(addr(1)))
        );
        assert!(f.state.piece_written(next, epoch, addr(1)));
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        while !f.state.picker.has(next) {
            assert!(Instant::now() < deadline, "the hash pool never verified it");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(f.state.haves_since(0), (vec![piece, next], 2));
        assert_eq!(f.state.peer_stats()[&addr(1)].pieces, 2);
    }

    #[test]
    fn a_failed_piece_counts_against_every_peer_that_wrote_into_it() {
        let f = Fixture::new(3, &[]);
        let junk = vec![0xEE; 100];
        for round in 1..=HASH_STRIKES {
            let piece = f.state.picker.take(&Bitfield::with_pieces(3, &[0]), &[]);
            assert_eq!(piece, Some(0), "the failed piece is queued again");
            let epoch = f.state.sink.epoch(0).unwrap();
            // An honest peer writes the piece; an endgame copy from another adds junk.
            assert!(f.state.write_block(0, epoch, 0, f.piece(0), Some(addr(1))));
            assert!(f.state.write_block(0, epoch, 0, &junk, Some(addr(2))));
            assert!(f.state.piece_written(0, epoch, addr(1)));
            assert_eq!(
                (f.state.strikes(addr(1)), f.state.strikes(addr(2))),
                (round, round)
            );
            assert!(
                !f.state.write_block(0, epoch, 0, &junk, None),
                "a stale holder's blocks are refused"
            );
        }
        assert!(!f.state.picker.has(0));
        assert!(
            !f.state.claim_dial(addr(2)),
            "banned at {HASH_STRIKES} strikes"
        );
        assert!(f.state.strike_count() >= 2 * HASH_STRIKES as usize);
    }
}
