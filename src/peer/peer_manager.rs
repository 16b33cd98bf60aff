//! The peer manager of one torrent: it knows every connection's state and rates and runs the
//! [`choker`](crate::peer::choker) over them (Transmission's peer-mgr beside its peer-msgs).
//!
//! Each connection [`join`](PeerManager::join)s and gets a [`PeerSlot`]: it publishes into it
//! (atomics, no lock) whether the peer is interested, whether it snubs us, and the block bytes
//! received and sent, and reads back whether to unchoke it. The manager's thread ([`run`], one
//! per torrent, named `choke`) samples the counters every second into rates over
//! [`RATE_WINDOW`], and rechokes every [`RECHOKE_EVERY`] and whenever a connection asks
//! ([`PeerManager::rechoke_soon`]: a peer became interested or uninterested, or left). The
//! connection sends `choke`/`unchoke` when the decision changes, on its next turn.
//!
//! The registry's mutex is held only to add, remove or copy the list of slots.

use crate::lock::lock;
use crate::peer::choker::{Candidate, Choker, RATE_WINDOW, RECHOKE_EVERY, SEED_QUOTA_PIECES};
use crate::peer::torrent_state::TorrentState;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often the manager samples the connections' byte counters.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// What one connection shares with the peer manager.
pub struct PeerSlot {
    id: u64,
    /// The remote peer's address (for the log).
    pub addr: SocketAddr,
    connected_at: Instant,
    interested: AtomicBool,
    snubbed: AtomicBool,
    received: AtomicU64,
    sent: AtomicU64,
    /// When a block last went either way, in milliseconds after `connected_at`.
    last_block_ms: AtomicU64,
    unchoke: AtomicBool,
    /// Pieces the peer says it has (from its bitfield and `have`s), for display.
    pieces: AtomicU64,
    /// Bytes per second (received, sent) as the manager last sampled them, for display.
    download_rate: AtomicU64,
    upload_rate: AtomicU64,
}

impl PeerSlot {
    /// Publishes whether the peer is interested; `true` if that changed.
    pub fn set_interested(&self, interested: bool) -> bool {
        self.interested.swap(interested, Ordering::Relaxed) != interested
    }

    /// Publishes whether the peer leaves our requests unanswered.
    pub fn set_snubbed(&self, snubbed: bool) {
        self.snubbed.store(snubbed, Ordering::Relaxed);
    }

    /// Publishes the block bytes received from and sent to the peer so far.
    pub fn set_counters(&self, received: u64, sent: u64) {
        let before = self.received.swap(received, Ordering::Relaxed);
        if self.sent.swap(sent, Ordering::Relaxed) != sent || before != received {
            let ms = self.connected_at.elapsed().as_millis() as u64;
            self.last_block_ms.store(ms, Ordering::Relaxed);
        }
    }

    /// How long no block went either way at `now` (since the connection started if none did).
    pub fn idle_for(&self, now: Instant) -> Duration {
        let last = Duration::from_millis(self.last_block_ms.load(Ordering::Relaxed));
        now.saturating_duration_since(self.connected_at + last)
    }

    /// Whether the peer said it is interested.
    pub fn interested(&self) -> bool {
        self.interested.load(Ordering::Relaxed)
    }

    /// Whether the peer leaves our requests unanswered.
    pub fn snubbed(&self) -> bool {
        self.snubbed.load(Ordering::Relaxed)
    }

    /// Whether the choker wants the peer unchoked.
    pub fn unchoked(&self) -> bool {
        self.unchoke.load(Ordering::Relaxed)
    }

    /// Publishes how many pieces the peer says it has (a `bitfield`, `have all`/`none`).
    pub fn set_pieces(&self, pieces: u64) {
        self.pieces.store(pieces, Ordering::Relaxed);
    }

    /// Counts one more piece the peer says it has (a new `have`).
    pub fn add_piece(&self) {
        self.pieces.fetch_add(1, Ordering::Relaxed);
    }

    /// What the session shows of the connection: its counters and last sampled rates.
    pub fn view(&self) -> SlotView {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SlotView {
            received: load(&self.received),
            sent: load(&self.sent),
            download_rate: load(&self.download_rate),
            upload_rate: load(&self.upload_rate),
            pieces: load(&self.pieces),
        }
    }
}

/// A copy of one connection's counters ([`PeerSlot::view`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotView {
    /// Block bytes received from and sent to the peer.
    pub received: u64,
    pub sent: u64,
    /// Bytes per second over the last [`RATE_WINDOW`], received and sent.
    pub download_rate: u64,
    pub upload_rate: u64,
    /// Pieces the peer says it has.
    pub pieces: u64,
}

/// The registry of a torrent's connections and its choker settings.
pub struct PeerManager {
    slots: AtomicUsize,
    next_id: AtomicU64,
    peers: Mutex<Vec<Arc<PeerSlot>>>,
    /// Set by [`rechoke_soon`](Self::rechoke_soon), with `wake` to rouse the thread.
    pending: Mutex<bool>,
    wake: Condvar,
}

impl PeerManager {
    /// An empty registry with `slots` upload slots.
    pub fn new(slots: usize) -> PeerManager {
        PeerManager {
            slots: AtomicUsize::new(slots),
            next_id: AtomicU64::new(0),
            peers: Mutex::new(Vec::new()),
            pending: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    /// Sets the number of regular upload slots (the optimistic unchoke comes on top).
    pub fn set_upload_slots(&self, slots: usize) {
        self.slots.store(slots, Ordering::Relaxed);
    }

    /// Registers a new connection to `addr`, choked and uninterested.
    pub fn join(&self, addr: SocketAddr) -> Arc<PeerSlot> {
        let slot = Arc::new(PeerSlot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            addr,
            connected_at: Instant::now(),
            interested: AtomicBool::new(false),
            snubbed: AtomicBool::new(false),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            last_block_ms: AtomicU64::new(0),
            unchoke: AtomicBool::new(false),
            pieces: AtomicU64::new(0),
            download_rate: AtomicU64::new(0),
            upload_rate: AtomicU64::new(0),
        });
        lock(&self.peers).push(slot.clone());
        slot
    }

    /// Forgets a connection that ended; its upload slot goes to another peer.
    pub fn leave(&self, slot: &PeerSlot) {
        lock(&self.peers).retain(|p| p.id != slot.id);
        self.rechoke_soon();
    }

    /// Asks the manager's thread to rechoke now rather than at its next period.
    pub fn rechoke_soon(&self) {
        *lock(&self.pending) = true;
        self.wake.notify_all();
    }

    /// Waits up to `limit` for [`rechoke_soon`](Self::rechoke_soon); whether it was called.
    fn wait(&self, limit: Duration) -> bool {
        let pending = lock(&self.pending);
        let (mut pending, _) = self
            .wake
            .wait_timeout_while(pending, limit, |p| !*p)
            .unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *pending)
    }

    /// The slot of the connection to `addr`, if it has joined.
    pub fn slot_of(&self, addr: SocketAddr) -> Option<Arc<PeerSlot>> {
        lock(&self.peers).iter().find(|p| p.addr == addr).cloned()
    }

    fn snapshot(&self) -> Vec<Arc<PeerSlot>> {
        lock(&self.peers).clone()
    }
}

/// What the manager's thread remembers of one connection.
#[derive(Default)]
struct Record {
    /// (when, received, sent) samples over the last [`RATE_WINDOW`].
    samples: VecDeque<(Instant, u64, u64)>,
    unchoked_since: Option<Instant>,
    last_unchoked: Option<Instant>,
    /// Bytes sent to the peer when its current unchoke began.
    sent_at_unchoke: u64,
    /// Its seeding quota ran out during the current unchoke, and a rechoke was asked for.
    quota_noted: bool,
}

impl Record {
    fn sample(&mut self, now: Instant, slot: &PeerSlot) {
        let received = slot.received.load(Ordering::Relaxed);
        let sent = slot.sent.load(Ordering::Relaxed);
        self.samples.push_back((now, received, sent));
        while self
            .samples
            .get(1)
            .is_some_and(|(t, ..)| now.saturating_duration_since(*t) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Whether the peer was sent `quota` bytes during its current unchoke.
    fn quota_used(&self, quota: u64) -> bool {
        let sent = self.samples.back().map_or(0, |s| s.2);
        self.unchoked_since.is_some() && sent.saturating_sub(self.sent_at_unchoke) >= quota
    }

    /// Bytes per second (received, sent) between the oldest and newest samples.
    fn rates(&self) -> (u64, u64) {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return (0, 0);
        };
        let secs = last.0.saturating_duration_since(first.0).as_secs_f64();
        if secs <= 0.0 {
            return (0, 0);
        }
        let rate = |a: u64, b: u64| (b.saturating_sub(a) as f64 / secs) as u64;
        (rate(first.1, last.1), rate(first.2, last.2))
    }
}

/// The state of the manager's thread: the choker and what it remembers of each connection.
pub struct Rechoker {
    choker: Choker,
    records: HashMap<u64, Record>,
    unchoked: Vec<SocketAddr>,
}

impl Rechoker {
    /// A fresh one, its ties broken by `seed`.
    pub fn with_seed(seed: u64) -> Rechoker {
        Rechoker {
            choker: Choker::with_seed(seed),
            records: HashMap::new(),
            unchoked: Vec::new(),
        }
    }

    /// Samples every connection's counters.
    fn sample(&mut self, peers: &[Arc<PeerSlot>], now: Instant) {
        self.records
            .retain(|id, _| peers.iter().any(|p| p.id == *id));
        for p in peers {
            let record = self.records.entry(p.id).or_default();
            record.sample(now, p);
            let (down, up) = record.rates();
            p.download_rate.store(down, Ordering::Relaxed);
            p.upload_rate.store(up, Ordering::Relaxed);
        }
    }

    /// While seeding, samples the counters and tells whether a peer's unchoke just ran out
    /// of its quota ([`SEED_QUOTA_PIECES`]) while another interested peer waits: time for a
    /// rechoke rather than at the next period.
    fn quota_ran_out(&mut self, torrent: &TorrentState, now: Instant) -> bool {
        let peers = torrent.peers.snapshot();
        self.sample(&peers, now);
        if torrent.is_downloading() {
            return false;
        }
        let quota = SEED_QUOTA_PIECES * torrent.meta.info.piece_length;
        let waiting = peers
            .iter()
            .any(|p| p.interested() && self.records[&p.id].unchoked_since.is_none());
        if !waiting {
            return false;
        }
        let mut ran_out = false;
        for record in self.records.values_mut() {
            if record.quota_used(quota) && !record.quota_noted {
                record.quota_noted = true;
                ran_out = true;
            }
        }
        ran_out
    }

    /// Samples the counters, decides who is unchoked ([`Choker::decide`]) and publishes it to
    /// the connections.
    pub fn rechoke(&mut self, torrent: &TorrentState, now: Instant) {
        self.choose(torrent, now, false);
    }

    /// As [`rechoke`](Self::rechoke), but only the free slots are given ([`Choker::fill`]).
    pub fn fill_slots(&mut self, torrent: &TorrentState, now: Instant) {
        self.choose(torrent, now, true);
    }

    fn choose(&mut self, torrent: &TorrentState, now: Instant, fill_only: bool) {
        let manager = &torrent.peers;
        let peers = manager.snapshot();
        self.sample(&peers, now);
        let quota = SEED_QUOTA_PIECES * torrent.meta.info.piece_length;
        let candidates: Vec<Candidate> = peers
            .iter()
            .map(|p| {
                let record = &self.records[&p.id];
                let (download_rate, upload_rate) = record.rates();
                Candidate {
                    id: p.id,
                    interested: p.interested.load(Ordering::Relaxed),
                    download_rate,
                    upload_rate,
                    snubbed: p.snubbed.load(Ordering::Relaxed),
                    connected_at: p.connected_at,
                    unchoked_since: record.unchoked_since,
                    last_unchoked: record.last_unchoked,
                    quota_used: record.quota_used(quota),
                }
            })
            .collect();
        let seeding = !torrent.is_downloading();
        let slots = manager.slots.load(Ordering::Relaxed);
        let decision = if fill_only {
            self.choker.fill(&candidates, seeding, slots, now)
        } else {
            self.choker.decide(&candidates, seeding, slots, now)
        };
        let mut unchoked = Vec::new();
        for p in &peers {
            let on = decision.unchoke.contains(&p.id);
            let record = self.records.get_mut(&p.id).expect("sampled above");
            if on {
                if record.unchoked_since.is_none() {
                    record.unchoked_since = Some(now);
                    record.sent_at_unchoke = record.samples.back().map_or(0, |s| s.2);
                    record.quota_noted = false;
                }
                record.last_unchoked = Some(now);
                unchoked.push(p.addr);
            } else {
                record.unchoked_since = None;
            }
            p.unchoke.store(on, Ordering::Relaxed);
        }
        unchoked.sort();
        if unchoked != self.unchoked {
            let optimistic = peers.iter().find(|p| Some(p.id) == decision.optimistic);
            let interested = candidates.iter().filter(|c| c.interested).count();
            log::info!(
                "{}: unchoked {} of {interested} interested ({}): {}; optimistic {}",
                torrent.meta.info.name,
                unchoked.len(),
                if seeding { "seeding" } else { "leeching" },
                join(&unchoked),
                optimistic.map_or("none".into(), |p| p.addr.to_string()),
            );
            self.unchoked = unchoked;
        }
    }
}

fn join(addrs: &[SocketAddr]) -> String {
    let all: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    all.join(",")
}

/// The manager's thread: samples rates every second, rechokes every [`RECHOKE_EVERY`], and
/// when asked gives the free slots, until the process shuts down.
pub fn run(torrent: Arc<TorrentState>) {
    let mut rechoker = Rechoker::with_seed(fastrand::u64(..));
    let mut next = Instant::now();
    let mut asked = false;
    while !torrent.is_shutting_down() {
        let now = Instant::now();
        if now >= next {
            rechoker.rechoke(&torrent, now);
            next = now + RECHOKE_EVERY;
        } else if asked {
            rechoker.fill_slots(&torrent, now);
        } else if rechoker.quota_ran_out(&torrent, now) {
            rechoker.rechoke(&torrent, now);
        }
        asked = torrent
            .peers
            .wait(SAMPLE_EVERY.min(next.saturating_duration_since(now)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::test_support::Fixture;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn unchoked(slots: &[Arc<PeerSlot>]) -> Vec<u16> {
        slots
            .iter()
            .filter(|s| s.unchoked())
            .map(|s| s.addr.port())
            .collect()
    }

    #[test]
    fn leeching_unchokes_who_sent_most_over_the_window_and_a_leaver_frees_its_slot() {
        let f = Fixture::new(4, &[0]);
        f.state.peers.set_upload_slots(2);
        let slots: Vec<_> = (1..=5).map(|p| f.state.peers.join(addr(p))).collect();
        for s in &slots {
            assert!(s.set_interested(true));
        }
        let mut rechoker = Rechoker::with_seed(9);
        let t0 = Instant::now();
        rechoker.rechoke(&f.state, t0);
        assert_eq!(unchoked(&slots).len(), 3, "two slots and the optimistic");
        // Over 10 s, peers 4 and 5 send the most.
        for (s, bytes) in slots.iter().zip([1u64, 2, 3, 900, 800]) {
            s.set_counters(bytes * 1000, 0);
        }
        rechoker.rechoke(&f.state, t0 + RECHOKE_EVERY);
        assert_eq!(rechoker.records[&slots[3].id].rates(), (90_000, 0));
        // The rates are published for display too, beside the counters and the piece count.
        slots[3].set_pieces(3);
        slots[3].add_piece();
        let view = slots[3].view();
        assert_eq!(
            (view.received, view.download_rate, view.pieces),
            (900_000, 90_000, 4)
        );
        let now = unchoked(&slots);
        assert!(
            now.contains(&4) && now.contains(&5) && now.len() == 3,
            "{now:?}"
        );
        // Peer 4 leaves: the manager forgets it and its slot goes to another peer.
        f.state.peers.leave(&slots[3]);
        rechoker.fill_slots(&f.state, t0 + RECHOKE_EVERY * 2);
        assert!(!rechoker.records.contains_key(&slots[3].id));
        let now = unchoked(&slots);
        assert_eq!(now.len() - usize::from(now.contains(&4)), 3, "{now:?}");
        assert!(
            f.state.peers.wait(Duration::ZERO),
            "leaving asks for a rechoke"
        );
    }
}
