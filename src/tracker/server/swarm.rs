//! The tracker's registry of swarms: which peers announced which torrent, and when.
//!
//! Pure and thread-safe. Swarms are spread over a fixed number of shards, each behind its own
//! mutex, so announces for different torrents rarely wait for each other. Time is passed in by
//! the caller (`now`), which keeps expiry testable without sleeping.

use crate::lock::lock;
use crate::metainfo::InfoHash;
use crate::tracker::protocol::Event;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Peers returned when an announce does not say `numwant`.
pub const DEFAULT_NUMWANT: usize = 50;
/// Most peers returned by one announce, whatever `numwant` says.
pub const MAX_NUMWANT: usize = 200;
/// Number of independently locked shards.
const SHARDS: usize = 16;

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
    last_seen: Instant,
}

/// One torrent's swarm: its peers, kept in a vector (with an index by peer id) so a random subset
/// can be drawn by position without walking them all, and its counts.
#[derive(Debug, Default)]
struct Swarm {
    peers: Vec<PeerEntry>,
    index: HashMap<[u8; 20], usize>,
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
        self.index.remove(&gone.peer_id);
        if gone.seeder {
            self.seeders -= 1;
        }
        if let Some(moved) = self.peers.get(position) {
            self.index.insert(moved.peer_id, position);
        }
    }

    /// Inserts or refreshes a peer; returns its position.
    fn upsert(&mut self, announce: &PeerAnnounce, now: Instant) -> usize {
        let seeder = announce.left == 0;
        match self.index.get(&announce.peer_id) {
            Some(&position) => {
                let entry = &mut self.peers[position];
                if entry.seeder != seeder {
                    if seeder {
                        self.seeders += 1;
                    } else {
                        self.seeders -= 1;
                    }
                }
                entry.addr = announce.addr;
                entry.seeder = seeder;
                entry.last_seen = now;
                position
            }
            None => {
                let position = self.peers.len();
                self.peers.push(PeerEntry {
                    peer_id: announce.peer_id,
                    addr: announce.addr,
                    seeder,
                    last_seen: now,
                });
                self.index.insert(announce.peer_id, position);
                if seeder {
                    self.seeders += 1;
                }
                position
            }
        }
    }

    /// Up to `want` peers other than the one at `exclude`, chosen uniformly at random.
    fn sample(&self, exclude: usize, want: usize) -> Vec<SwarmPeer> {
        let others = self.peers.len() - 1;
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
    peer_timeout: Duration,
}

impl Swarms {
    /// An empty registry in which peers not heard from for `peer_timeout` are dropped by
    /// [`Swarms::expire`].
    pub fn new(peer_timeout: Duration) -> Swarms {
        Swarms {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            peer_timeout,
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
    ) -> AnnounceReply {
        let mut shard = self.shard(&info_hash);
        if announce.event == Event::Stopped {
            let Some(swarm) = shard.get_mut(&info_hash) else {
                return AnnounceReply {
                    complete: 0,
                    incomplete: 0,
                    peers: Vec::new(),
                };
            };
            if let Some(&position) = swarm.index.get(&announce.peer_id) {
                swarm.remove_at(position);
            }
            let stats = swarm.stats();
            if swarm.peers.is_empty() {
                shard.remove(&info_hash);
            }
            return AnnounceReply {
                complete: stats.complete,
                incomplete: stats.incomplete,
                peers: Vec::new(),
            };
        }
        let swarm = shard.entry(info_hash).or_default();
        let was_seeder = swarm
            .index
            .get(&announce.peer_id)
            .is_some_and(|&p| swarm.peers[p].seeder);
        let position = swarm.upsert(announce, now);
        // Count a download once per peer: a seeder repeating `completed` is not a new one.
        if announce.event == Event::Completed && !was_seeder {
            swarm.downloaded += 1;
        }
        let want = announce
            .numwant
            .map_or(DEFAULT_NUMWANT, |n| n as usize)
            .min(MAX_NUMWANT);
        let stats = swarm.stats();
        AnnounceReply {
            complete: stats.complete,
            incomplete: stats.incomplete,
            peers: swarm.sample(position, want),
        }
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
                    if now.saturating_duration_since(seen) >= self.peer_timeout {
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
                !swarm.peers.is_empty()
            });
            if shard.capacity() > 4 * shard.len() + 16 {
                shard.shrink_to_fit();
            }
        }
        dropped
    }

    /// Number of torrents with at least one peer.
    pub fn torrent_count(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> InfoHash {
        InfoHash([n; 20])
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
        let swarms = Swarms::new(Duration::from_secs(60));
        let now = Instant::now();
        let a = peer(1, 100, Event::Started);
        let b = peer(2, 0, Event::Started);
        let first = swarms.announce(hash(1), &a, now);
        assert_eq!((first.complete, first.incomplete), (0, 1));
        assert!(first.peers.is_empty());
        let second = swarms.announce(hash(1), &b, now);
        assert_eq!((second.complete, second.incomplete), (1, 1));
        assert_eq!(
            second.peers,
            vec![SwarmPeer {
                peer_id: a.peer_id,
                addr: a.addr
            }]
        );
        let again = swarms.announce(hash(1), &a, now);
        assert_eq!(
            again.peers,
            vec![SwarmPeer {
                peer_id: b.peer_id,
                addr: b.addr
            }]
        );
        // Another torrent is a separate swarm.
        assert!(swarms.announce(hash(2), &b, now).peers.is_empty());
    }

    #[test]
    fn stopped_removes_peer_and_empty_torrent() {
        let swarms = Swarms::new(Duration::from_secs(60));
        let now = Instant::now();
        swarms.announce(hash(1), &peer(1, 5, Event::Started), now);
        swarms.announce(hash(1), &peer(2, 5, Event::Started), now);
        let reply = swarms.announce(hash(1), &peer(1, 5, Event::Stopped), now);
        assert_eq!(
            (reply.complete, reply.incomplete, reply.peers.len()),
            (0, 1, 0)
        );
        let seen = swarms.announce(hash(1), &peer(2, 5, Event::None), now);
        assert!(seen.peers.is_empty());
        swarms.announce(hash(1), &peer(2, 5, Event::Stopped), now);
        assert_eq!(swarms.torrent_count(), 0);
        // Stopping on an unknown torrent creates nothing.
        swarms.announce(hash(9), &peer(2, 5, Event::Stopped), now);
        assert_eq!(swarms.torrent_count(), 0);
    }

    #[test]
    fn completion_moves_leecher_to_seeders_and_counts_once() {
        let swarms = Swarms::new(Duration::from_secs(60));
        let now = Instant::now();
        swarms.announce(hash(1), &peer(1, 5, Event::Started), now);
        let done = swarms.announce(hash(1), &peer(1, 0, Event::Completed), now);
        assert_eq!((done.complete, done.incomplete), (1, 0));
        swarms.announce(hash(1), &peer(1, 0, Event::Completed), now);
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
        let swarms = Swarms::new(Duration::from_secs(60));
        for n in 0..count {
            swarms.announce(hash(1), &peer(n, 1, Event::Started), now);
        }
        swarms
    }

    #[test]
    fn numwant_limits_and_samples_without_duplicates() {
        let now = Instant::now();
        let swarms = crowd(300, now);
        let mut me = peer(7, 1, Event::None);
        me.numwant = Some(10);
        let reply = swarms.announce(hash(1), &me, now);
        assert_eq!(reply.peers.len(), 10);
        let distinct: HashSet<_> = reply.peers.iter().map(|p| p.peer_id).collect();
        assert_eq!(distinct.len(), 10);
        assert!(!distinct.contains(&me.peer_id));

        me.numwant = None;
        assert_eq!(
            swarms.announce(hash(1), &me, now).peers.len(),
            DEFAULT_NUMWANT
        );
        me.numwant = Some(100_000);
        let all = swarms.announce(hash(1), &me, now).peers;
        assert_eq!(all.len(), MAX_NUMWANT);
        assert!(all.iter().all(|p| p.peer_id != me.peer_id));
        me.numwant = Some(0);
        assert!(swarms.announce(hash(1), &me, now).peers.is_empty());
    }

    #[test]
    fn sampling_reaches_every_peer() {
        let now = Instant::now();
        let swarms = crowd(20, now);
        let mut me = peer(0, 1, Event::None);
        me.numwant = Some(3);
        let mut seen = HashSet::new();
        for _ in 0..400 {
            for p in swarms.announce(hash(1), &me, now).peers {
                seen.insert(p.peer_id);
            }
        }
        assert_eq!(seen.len(), 19);
    }

    #[test]
    fn expiry_drops_silent_peers_and_empty_torrents() {
        let timeout = Duration::from_secs(60);
        let swarms = Swarms::new(timeout);
        let start = Instant::now();
        swarms.announce(hash(1), &peer(1, 0, Event::Started), start);
        swarms.announce(hash(1), &peer(2, 5, Event::Started), start);
        swarms.announce(hash(2), &peer(3, 5, Event::Started), start);
        // Peer 2 re-announces halfway, so only peers 1 and 3 are stale at the timeout.
        swarms.announce(hash(1), &peer(2, 5, Event::None), start + timeout / 2);
        assert_eq!(swarms.expire(start + timeout / 2), 0);
        assert_eq!(swarms.expire(start + timeout), 2);
        assert_eq!(swarms.torrent_count(), 1);
        let stats = swarms.scrape(&[hash(1)])[0].1;
        assert_eq!((stats.complete, stats.incomplete), (0, 1));
        assert_eq!(swarms.expire(start + timeout * 2), 1);
        assert_eq!(swarms.torrent_count(), 0);
    }

    #[test]
    fn moving_peer_updates_address() {
        let swarms = Swarms::new(Duration::from_secs(60));
        let now = Instant::now();
        let mut a = peer(1, 5, Event::Started);
        swarms.announce(hash(1), &a, now);
        a.addr = SocketAddr::from(([127, 0, 0, 2], 7000));
        swarms.announce(hash(1), &a, now);
        let reply = swarms.announce(hash(1), &peer(2, 5, Event::Started), now);
        assert_eq!(
            reply.peers,
            vec![SwarmPeer {
                peer_id: a.peer_id,
                addr: a.addr
            }]
        );
        assert_eq!(reply.incomplete, 2);
    }
}
