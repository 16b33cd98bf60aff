//! The tracker's registry of swarms: which peers announced which torrent, and when.
//!
//! Pure and thread-safe. Swarms are spread over a fixed number of shards, each behind its own
//! mutex, so announces for different torrents rarely wait for each other. Time is passed in by
//! the caller (`now`), which keeps expiry testable without sleeping.
//!
//! A peer is known by its address *and* its peer id, so a request from elsewhere that names
//! the same peer id is a different peer: it cannot move, stop or complete someone else's entry.
//! Memory is bounded by [`Caps`]: a torrent beyond `max_swarms` is refused, and a swarm at
//! `max_peers_per_swarm` still answers newcomers but does not store them.

use crate::lock::lock;
use crate::metainfo::InfoHash;
use crate::tracker::protocol::Event;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Peers returned when an announce does not say `numwant`.
pub const DEFAULT_NUMWANT: usize = 50;
/// Most peers returned by one announce, whatever `numwant` says.
pub const MAX_NUMWANT: usize = 200;
/// Number of independently locked shards.
const SHARDS: usize = 16;

/// Bounds on what the registry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Peers not heard from for this long are dropped by [`Swarms::expire`].
    pub peer_timeout: Duration,
    /// Most torrents tracked at once; announces for more are refused.
    pub max_swarms: usize,
    /// Most peers stored per torrent; more are answered but not stored.
    pub max_peers_per_swarm: usize,
}

/// Why an announce was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The registry already tracks `max_swarms` torrents.
    TooManySwarms(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::TooManySwarms(max) => write!(
                f,
                "tracker full: it tracks its limit of {max} torrents, retry later"
            ),
        }
    }
}

/// Who a peer is: where it announced from and the id it gave.
type PeerKey = (IpAddr, [u8; 20]);

/// One announce as the swarm sees it (already validated by the server).
#[derive(Clone, Debug)]
pub struct PeerAnnounce {
    pub peer_id: [u8; 20],
    /// Where other peers should connect: the announcer's IP and its listening port.
    pub addr: SocketAddr,
    /// Bytes the peer still needs; 0 makes it a seeder.
    pub left: u64,
    pub event: Event,
    /// Requested peer count; `None` means [`DEFAULT_NUMWANT`]. Capped at [`MAX_NUMWANT`].
    pub numwant: Option<u32>,
}

/// A peer handed out to other peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmPeer {
    pub peer_id: [u8; 20],
    pub addr: SocketAddr,
}

/// The answer to an announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceReply {
    /// Seeders, counting the announcer if it is one.
    pub complete: u64,
    /// Leechers, counting the announcer if it is one.
    pub incomplete: u64,
    /// Other peers of the torrent, a random subset when there are more than requested.
    pub peers: Vec<SwarmPeer>,
}

/// Scrape numbers for one torrent (BEP 48).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    pub complete: u64,
    pub incomplete: u64,
    /// `completed` events seen since the torrent was last created in the registry.
    pub downloaded: u64,
}

#[derive(Clone, Debug)]
struct PeerEntry {
    peer_id: [u8; 20],
    addr: SocketAddr,
    seeder: bool,
    /// Whether this entry's `completed` was counted in `downloaded` already.
    counted: bool,
    last_seen: Instant,
}

impl PeerEntry {
    fn key(&self) -> PeerKey {
        (self.addr.ip(), self.peer_id)
    }
}

/// One torrent's swarm: its peers, kept in a vector (with an index by peer id) so a random subset
/// can be drawn by position without walking them all, and its counts.
#[derive(Debug, Default)]
struct Swarm {
    peers: Vec<PeerEntry>,
    index: HashMap<PeerKey, usize>,
    seeders: u64,
    downloaded: u64,
}

impl Swarm {
    fn stats(&self) -> ScrapeStats {
        ScrapeStats {
            complete: self.seeders,
            incomplete: self.peers.len() as u64 - self.seeders,
            downloaded: self.downloaded,
        }
    }

    fn remove_at(&mut self, position: usize) {
        let gone = self.peers.swap_remove(position);
        self.index.remove(&gone.key());
        if gone.seeder {
            self.seeders -= 1;
        }
        if let Some(moved) = self.peers.get(position) {
            self.index.insert(moved.key(), position);
        }
    }

    /// Inserts or refreshes a peer; returns its position, or `None` when the swarm is full and
    /// the peer new. A `completed` counts as a download once per entry, and only from an entry
    /// that was a leecher here before: repeating it, or sending it with fresh ids, adds nothing.
    fn upsert(&mut self, announce: &PeerAnnounce, now: Instant, max_peers: usize) -> Option<usize> {
        let seeder = announce.left == 0;
        let key = (announce.addr.ip(), announce.peer_id);
        match self.index.get(&key) {
            Some(&position) => {
                let entry = &mut self.peers[position];
                if entry.seeder != seeder {
                    if seeder {
                        self.seeders += 1;
                    } else {
                        self.seeders -= 1;
                    }
                }
                if announce.event == Event::Completed && !entry.seeder && !entry.counted {
                    entry.counted = true;
                    self.downloaded += 1;
                }
                entry.addr = announce.addr;
                entry.seeder = seeder;
                entry.last_seen = now;
                Some(position)
            }
            None if self.peers.len() >= max_peers => None,
            None => {
                let position = self.peers.len();
                self.peers.push(PeerEntry {
                    peer_id: announce.peer_id,
                    addr: announce.addr,
                    seeder,
                    counted: false,
                    last_seen: now,
                });
                self.index.insert(key, position);
                if seeder {
                    self.seeders += 1;
                }
                Some(position)
            }
        }
    }

    /// Up to `want` peers other than the one at `exclude` (if any), chosen uniformly at random.
    fn sample(&self, exclude: Option<usize>, want: usize) -> Vec<SwarmPeer> {
        // Without a requester to skip, "past it" is past the end: nothing shifts.
        let (exclude, others) = match exclude {
            Some(position) => (position, self.peers.len() - 1),
            None => (self.peers.len(), self.peers.len()),
        };
        let to_peer = |i: usize| {
            // Positions past the requester shift by one so it is never picked.
            let entry = &self.peers[if i >= exclude { i + 1 } else { i }];
            SwarmPeer {
                peer_id: entry.peer_id,
                addr: entry.addr,
            }
        };
        if others <= want {
            return (0..others).map(to_peer).collect();
        }
        // Floyd's algorithm: a uniform `want`-subset of `0..others` in O(want).
        let mut chosen = HashSet::with_capacity(want);
        for j in others - want..others {
            let pick = fastrand::usize(..=j);
            if !chosen.insert(pick) {
                chosen.insert(j);
            }
        }
        chosen.into_iter().map(to_peer).collect()
    }
}

/// All swarms the tracker knows, sharded by info hash.
pub struct Swarms {
    shards: Vec<Mutex<HashMap<InfoHash, Swarm>>>,
    hasher: RandomState,
    caps: Caps,
    /// Torrents in all shards, kept apart so the cap needs no second lock.
    swarm_count: AtomicUsize,
}

/// Torrents, seeders and leechers in the whole registry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub torrents: u64,
    pub seeders: u64,
    pub leechers: u64,
}

impl Swarms {
    /// An empty registry bounded by `caps`.
    pub fn new(caps: Caps) -> Swarms {
        Swarms {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            caps,
            swarm_count: AtomicUsize::new(0),
        }
    }

    fn shard(&self, info_hash: &InfoHash) -> MutexGuard<'_, HashMap<InfoHash, Swarm>> {
        let shard = &self.shards[self.hasher.hash_one(info_hash) as usize % SHARDS];
        // A panic while holding the lock cannot leave a swarm half-updated in a way that
        // matters more than losing the tracker, so keep serving.
        lock(shard)
    }

    /// Records an announce and returns counts plus other peers. `stopped` removes the peer
    /// (and its swarm once empty) and returns no peers.
    pub fn announce(
        &self,
        info_hash: InfoHash,
        announce: &PeerAnnounce,
        now: Instant,
    ) -> Result<AnnounceReply, Refused> {
        let mut shard = self.shard(&info_hash);
        if announce.event == Event::Stopped {
            let Some(swarm) = shard.get_mut(&info_hash) else {
                return Ok(AnnounceReply {
                    complete: 0,
                    incomplete: 0,
                    peers: Vec::new(),
                });
            };
            if let Some(&position) = swarm.index.get(&(announce.addr.ip(), announce.peer_id)) {
                swarm.remove_at(position);
            }
            let stats = swarm.stats();
            if swarm.peers.is_empty() {
                shard.remove(&info_hash);
                self.swarm_count.fetch_sub(1, Ordering::SeqCst);
            }
            return Ok(AnnounceReply {
                complete: stats.complete,
                incomplete: stats.incomplete,
                peers: Vec::new(),
            });
        }
        if !shard.contains_key(&info_hash) {
            // Claim a place first, so concurrent announces in other shards cannot overshoot.
            if self.swarm_count.fetch_add(1, Ordering::SeqCst) >= self.caps.max_swarms {
                self.swarm_count.fetch_sub(1, Ordering::SeqCst);
                return Err(Refused::TooManySwarms(self.caps.max_swarms));
            }
            shard.insert(info_hash, Swarm::default());
        }
        let swarm = shard.get_mut(&info_hash).expect("inserted above");
        let position = swarm.upsert(announce, now, self.caps.max_peers_per_swarm);
        let want = announce
            .numwant
            .map_or(DEFAULT_NUMWANT, |n| n as usize)
            .min(MAX_NUMWANT);
        let stats = swarm.stats();
        Ok(AnnounceReply {
            complete: stats.complete,
            incomplete: stats.incomplete,
            peers: swarm.sample(position, want),
        })
    }

    /// Scrape numbers for each requested torrent, in request order; unknown torrents get zeros.
    pub fn scrape(&self, info_hashes: &[InfoHash]) -> Vec<(InfoHash, ScrapeStats)> {
        info_hashes
            .iter()
            .map(|hash| {
                let stats = self
                    .shard(hash)
                    .get(hash)
                    .map(Swarm::stats)
                    .unwrap_or_default();
                (*hash, stats)
            })
            .collect()
    }

    /// Drops peers not seen for the peer timeout and torrents left without peers, releasing
    /// their memory. Returns how many peers were dropped.
    pub fn expire(&self, now: Instant) -> usize {
        let mut dropped = 0;
        for shard in &self.shards {
            let mut shard = lock(shard);
            shard.retain(|_, swarm| {
                let mut position = 0;
                while position < swarm.peers.len() {
                    let seen = swarm.peers[position].last_seen;
                    if now.saturating_duration_since(seen) >= self.caps.peer_timeout {
                        swarm.remove_at(position);
                        dropped += 1;
                    } else {
                        position += 1;
                    }
                }
                if swarm.peers.capacity() > 4 * swarm.peers.len() + 16 {
                    swarm.peers.shrink_to_fit();
                    swarm.index.shrink_to_fit();
                }
                let keep = !swarm.peers.is_empty();
                if !keep {
                    self.swarm_count.fetch_sub(1, Ordering::SeqCst);
                }
                keep
            });
            if shard.capacity() > 4 * shard.len() + 16 {
                shard.shrink_to_fit();
            }
        }
        dropped
    }

    /// Number of torrents with at least one peer.
    pub fn torrent_count(&self) -> usize {
        self.swarm_count.load(Ordering::SeqCst)
    }

    /// Torrents, seeders and leechers now, one shard at a time.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for shard in &self.shards {
            for swarm in lock(shard).values() {
                let stats = swarm.stats();
                totals.torrents += 1;
                totals.seeders += stats.complete;
                totals.leechers += stats.incomplete;
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    fn announce(swarms: &Swarms, h: InfoHash, a: &PeerAnnounce, now: Instant) -> AnnounceReply {
        swarms.announce(h, a, now).expect("under the caps")
    }

    /// A registry with roomy caps.
    fn registry(peer_timeout: Duration) -> Swarms {
        Swarms::new(Caps {
            peer_timeout,
            max_swarms: 1000,
            max_peers_per_swarm: 1000,
        })
    }

    fn peer(n: u16, left: u64, event: Event) -> PeerAnnounce {
        let mut peer_id = [b'p'; 20];
        peer_id[..2].copy_from_slice(&n.to_be_bytes());
        PeerAnnounce {
            peer_id,
            addr: SocketAddr::from(([127, 0, 0, 1], 10_000 + n)),
            left,
            event,
            numwant: None,
        }
    }

    #[test]
    fn peers_see_each_other_but_not_themselves() {
        let swarms = registry(Duration::from_secs(60));
        let now = Instant::now();
        let a = peer(1, 100, Event::Started);
        let b = peer(2, 0, Event::Started);
        let first = announce(&swarms, hash(1), &a, now);
        assert_eq!((first.complete, first.incomplete), (0, 1));
        assert!(first.peers.is_empty());
        let second = announce(&swarms, hash(1), &b, now);
        assert_eq!((second.complete, second.incomplete), (1, 1));
        assert_eq!(
            second.peers,
            vec![SwarmPeer {
                peer_id: a.peer_id,
                addr: a.addr
            }]
        );
        let again = announce(&swarms, hash(1), &a, now);
        assert_eq!(
            again.peers,
            vec![SwarmPeer {
                peer_id: b.peer_id,
                addr: b.addr
            }]
        );
        // Another torrent is a separate swarm.
        assert!(announce(&swarms, hash(2), &b, now).peers.is_empty());
    }

    #[test]
    fn stopped_removes_peer_and_empty_torrent() {
        let swarms = registry(Duration::from_secs(60));
        let now = Instant::now();
        announce(&swarms, hash(1), &peer(1, 5, Event::Started), now);
        announce(&swarms, hash(1), &peer(2, 5, Event::Started), now);
        let reply = announce(&swarms, hash(1), &peer(1, 5, Event::Stopped), now);
        assert_eq!(
            (reply.complete, reply.incomplete, reply.peers.len()),
            (0, 1, 0)
        );
        let seen = announce(&swarms, hash(1), &peer(2, 5, Event::None), now);
        assert!(seen.peers.is_empty());
        announce(&swarms, hash(1), &peer(2, 5, Event::Stopped), now);
        assert_eq!(swarms.torrent_count(), 0);
        // Stopping on an unknown torrent creates nothing.
        announce(&swarms, hash(9), &peer(2, 5, Event::Stopped), now);
        assert_eq!(swarms.torrent_count(), 0);
    }

    #[test]
    fn completion_moves_leecher_to_seeders_and_counts_once() {
        let swarms = registry(Duration::from_secs(60));
        let now = Instant::now();
        announce(&swarms, hash(1), &peer(1, 5, Event::Started), now);
        let done = announce(&swarms, hash(1), &peer(1, 0, Event::Completed), now);
        assert_eq!((done.complete, done.incomplete), (1, 0));
        announce(&swarms, hash(1), &peer(1, 0, Event::Completed), now);
        let stats = swarms.scrape(&[hash(1), hash(2)]);
        assert_eq!(
            stats[0],
            (
                hash(1),
                ScrapeStats {
                    complete: 1,
                    incomplete: 0,
                    downloaded: 1
                }
            )
        );
        assert_eq!(stats[1], (hash(2), ScrapeStats::default()));
    }

    /// A registry in which peers `0..count` have started on torrent 1 at `now`.
    fn crowd(count: u16, now: Instant) -> Swarms {
        let swarms = registry(Duration::from_secs(60));
        for n in 0..count {
            announce(&swarms, hash(1), &peer(n, 1, Event::Started), now);
        }
        swarms
    }

    #[test]
    fn numwant_limits_and_samples_without_duplicates() {
        let now = Instant::now();
        let swarms = crowd(300, now);
        let mut me = peer(7, 1, Event::None);
        me.numwant = Some(10);
        let reply = announce(&swarms, hash(1), &me, now);
        assert_eq!(reply.peers.len(), 10);
        let distinct: HashSet<_> = reply.peers.iter().map(|p| p.peer_id).collect();
        assert_eq!(distinct.len(), 10);
        assert!(!distinct.contains(&me.peer_id));

        me.numwant = None;
        assert_eq!(
            announce(&swarms, hash(1), &me, now).peers.len(),
            DEFAULT_NUMWANT
        );
        me.numwant = Some(100_000);
        let all = announce(&swarms, hash(1), &me, now).peers;
        assert_eq!(all.len(), MAX_NUMWANT);
        assert!(all.iter().all(|p| p.peer_id != me.peer_id));
        me.numwant = Some(0);
        assert!(announce(&swarms, hash(1), &me, now).peers.is_empty());
    }

    #[test]
    fn sampling_reaches_every_peer() {
        let now = Instant::now();
        let swarms = crowd(20, now);
        let mut me = peer(0, 1, Event::None);
        me.numwant = Some(3);
        let mut seen = HashSet::new();
        for _ in 0..400 {
            for p in announce(&swarms, hash(1), &me, now).peers {
                seen.insert(p.peer_id);
            }
        }
        assert_eq!(seen.len(), 19);
    }

    #[test]
    fn expiry_drops_silent_peers_and_empty_torrents() {
        let timeout = Duration::from_secs(60);
        let swarms = registry(timeout);
        let start = Instant::now();
        announce(&swarms, hash(1), &peer(1, 0, Event::Started), start);
        announce(&swarms, hash(1), &peer(2, 5, Event::Started), start);
        announce(&swarms, hash(2), &peer(3, 5, Event::Started), start);
        // Peer 2 re-announces halfway, so only peers 1 and 3 are stale at the timeout.
        announce(
            &swarms,
            hash(1),
            &peer(2, 5, Event::None),
            start + timeout / 2,
        );
        assert_eq!(swarms.expire(start + timeout / 2), 0);
        assert_eq!(swarms.expire(start + timeout), 2);
        assert_eq!(swarms.torrent_count(), 1);
        let stats = swarms.scrape(&[hash(1)])[0].1;
        assert_eq!((stats.complete, stats.incomplete), (0, 1));
        assert_eq!(swarms.expire(start + timeout * 2), 1);
        assert_eq!(swarms.torrent_count(), 0);
    }

    #[test]
    fn only_the_same_address_can_move_or_stop_a_peer() {
        let swarms = registry(Duration::from_secs(60));
        let now = Instant::now();
        let mut a = peer(1, 5, Event::Started);
        announce(&swarms, hash(1), &a, now);
        // The same address may change its port.
        a.addr.set_port(7000);
        announce(&swarms, hash(1), &a, now);
        // Another address naming the same peer id is another peer: it moves and stops nothing.
        let mut forger = a.clone();
        forger.addr = SocketAddr::from(([127, 0, 0, 2], 7000));
        forger.event = Event::Stopped;
        announce(&swarms, hash(1), &forger, now);
        let reply = announce(&swarms, hash(1), &peer(2, 5, Event::Started), now);
        assert_eq!(
            reply.peers,
            vec![SwarmPeer {
                peer_id: a.peer_id,
                addr: a.addr
            }]
        );
        assert_eq!(reply.incomplete, 2);
    }

    #[test]
    fn caps_bound_swarms_and_peers_but_full_swarms_still_answer() {
        let swarms = Swarms::new(Caps {
            peer_timeout: Duration::from_secs(60),
            max_swarms: 3,
            max_peers_per_swarm: 2,
        });
        let now = Instant::now();
        for n in 0..3 {
            announce(&swarms, hash(n), &peer(1, 5, Event::Started), now);
        }
        assert_eq!(
            swarms.announce(hash(9), &peer(1, 5, Event::Started), now),
            Err(Refused::TooManySwarms(3))
        );
        assert_eq!(swarms.torrent_count(), 3);
        announce(&swarms, hash(0), &peer(2, 5, Event::Started), now);
        let late = announce(&swarms, hash(0), &peer(3, 5, Event::Started), now);
        assert_eq!(
            (late.incomplete, late.peers.len()),
            (2, 2),
            "answered, not stored"
        );
        // Once a torrent empties, its place is free again.
        announce(&swarms, hash(1), &peer(1, 5, Event::Stopped), now);
        assert!(
            swarms
                .announce(hash(9), &peer(1, 5, Event::Started), now)
                .is_ok()
        );
        assert_eq!(swarms.totals().torrents, 3);
    }

    #[test]
    fn downloads_count_once_per_leecher_that_completes() {
        let swarms = registry(Duration::from_secs(60));
        let now = Instant::now();
        // `completed` from a peer never seen as a leecher counts nothing.
        announce(&swarms, hash(1), &peer(1, 0, Event::Completed), now);
        announce(&swarms, hash(1), &peer(2, 5, Event::Started), now);
        for _ in 0..5 {
            announce(&swarms, hash(1), &peer(2, 0, Event::Completed), now);
            // Pretending to be a leecher again does not re-arm it.
            announce(&swarms, hash(1), &peer(2, 5, Event::None), now);
        }
        assert_eq!(swarms.scrape(&[hash(1)])[0].1.downloaded, 1);
    }
}
