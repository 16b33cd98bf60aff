//! The tracker's registry of swarms: which peers announced which torrent, and when.
//!
//! Pure and thread-safe. Swarms are spread over a fixed number of shards, each behind its own
//! mutex, so announces for different torrents rarely wait for each other. Time is passed in by
//! the caller (`now`), which keeps expiry testable without sleeping.
//!
//! A peer is known by its address *and* (a keyed digest of) its peer id, so a request from
//! elsewhere that names the same peer id is a different peer: it cannot move, stop or complete
//! someone else's entry. Peers are stored compactly (`peer_list.rs`: 10 bytes for IPv4) and
//! drawn for replies without a set (`sampler.rs`).
//! Memory is bounded by [`Caps`]: a torrent beyond `max_swarms` is refused, and a swarm at
//! `max_peers_per_swarm` still answers newcomers but does not store them.

use super::peer_list::{DIGEST_MASK, Entry, PeerKey, PeerList, TICKS_PER_TIMEOUT};
use super::sampler::sample;
use crate::lock::lock;
use crate::metainfo::InfoHash;
use crate::tracker::protocol::Event;
use std::collections::HashMap;
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
    /// Whether only peers of the announcer's address family are wanted (a UDP reply carries
    /// one width of address); otherwise IPv4 and IPv6 peers are mixed.
    pub own_family_only: bool,
}

/// The answer to an announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceReply {
    /// Seeders, counting the announcer if it is one.
    pub complete: u64,
    /// Leechers, counting the announcer if it is one.
    pub incomplete: u64,
    /// Other peers of the torrent, a random subset when there are more than requested.
    pub peers: Vec<SocketAddr>,
}

/// Scrape numbers for one torrent (BEP 48).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    pub complete: u64,
    pub incomplete: u64,
    /// `completed` events seen since the torrent was last created in the registry.
    pub downloaded: u64,
}

/// Where a peer is stored: which family's list, and its position there.
#[derive(Clone, Copy, Debug)]
enum Slot {
    V4(usize),
    V6(usize),
}

/// One announce reduced to what the registry keeps.
struct Seen {
    port: u16,
    seeder: bool,
    completed: bool,
    tick: u8,
}

/// One torrent's swarm: its IPv4 and IPv6 peers, and its counts.
#[derive(Debug, Default)]
struct Swarm {
    v4: PeerList<[u8; 4]>,
    v6: PeerList<[u8; 16]>,
    seeders: u32,
    downloaded: u64,
}

/// Inserts or refreshes the peer `key` in `list`; its position, or `None` when `room` is false
/// and the peer new. A `completed` counts as a download once per entry, and only from an entry
/// that was a leecher here before: repeating it, or sending it with fresh ids, adds nothing.
fn upsert<A: Copy + Ord>(
    list: &mut PeerList<A>,
    key: PeerKey<A>,
    seen: &Seen,
    room: bool,
    seeders: &mut u32,
    downloaded: &mut u64,
) -> Option<usize> {
    match list.find(key) {
        Ok(position) => {
            let entry = list.get_mut(position);
            match (entry.seeder(), seen.seeder) {
                (false, true) => *seeders += 1,
                (true, false) => *seeders -= 1,
                _ => {}
            }
            if seen.completed && !entry.seeder() && entry.count_download() {
                *downloaded += 1;
            }
            entry.set_port(seen.port);
            entry.set_seeder(seen.seeder);
            entry.set_seen(seen.tick);
            Some(position)
        }
        Err(_) if !room => None,
        Err(position) => {
            list.insert(position, Entry::new(key, seen.port, seen.seeder, seen.tick));
            *seeders += u32::from(seen.seeder);
            Some(position)
        }
    }
}

/// Removes the peer `key` from `list`, if there; whether it was a seeder.
fn remove<A: Copy + Ord>(list: &mut PeerList<A>, key: PeerKey<A>) -> Option<bool> {
    let position = list.find(key).ok()?;
    Some(list.remove(position).seeder())
}

impl Swarm {
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    fn stats(&self) -> ScrapeStats {
        ScrapeStats {
            complete: self.seeders.into(),
            incomplete: (self.len() - self.seeders as usize) as u64,
            downloaded: self.downloaded,
        }
    }

    fn upsert(&mut self, ip: IpAddr, id: u32, seen: &Seen, max_peers: usize) -> Option<Slot> {
        let room = self.len() < max_peers;
        let (seeders, downloaded) = (&mut self.seeders, &mut self.downloaded);
        match ip {
            IpAddr::V4(v4) => upsert(
                &mut self.v4,
                (v4.octets(), id),
                seen,
                room,
                seeders,
                downloaded,
            )
            .map(Slot::V4),
            IpAddr::V6(v6) => upsert(
                &mut self.v6,
                (v6.octets(), id),
                seen,
                room,
                seeders,
                downloaded,
            )
            .map(Slot::V6),
        }
    }

    fn remove(&mut self, ip: IpAddr, id: u32) {
        let seeder = match ip {
            IpAddr::V4(v4) => remove(&mut self.v4, (v4.octets(), id)),
            IpAddr::V6(v6) => remove(&mut self.v6, (v6.octets(), id)),
        };
        if seeder == Some(true) {
            self.seeders -= 1;
        }
    }

    /// Up to `want` peers other than the one in `me` (if any), each equally likely, from both
    /// families or (`own_family_only`) from `family_v6`'s alone, appended to `out`.
    fn sample(
        &self,
        me: Option<Slot>,
        family_v6: bool,
        own_family_only: bool,
        want: usize,
        out: &mut Vec<SocketAddr>,
    ) {
        // Positions over the chosen lists: IPv4 peers first, then IPv6 ones.
        let n4 = if own_family_only && family_v6 {
            0
        } else {
            self.v4.len()
        };
        let n6 = if own_family_only && !family_v6 {
            0
        } else {
            self.v6.len()
        };
        let skip = match me {
            Some(Slot::V4(p)) => p,
            Some(Slot::V6(p)) => n4 + p,
            None => n4 + n6,
        };
        let others = n4 + n6 - usize::from(me.is_some());
        let mut rng = fastrand::Rng::with_seed(fastrand::u64(..));
        for i in sample(others, want, &mut rng) {
            // Positions from the requester's on shift by one so it is never picked.
            let at = if i >= skip { i + 1 } else { i };
            out.push(if at < n4 {
                let e = self.v4.get(at);
                SocketAddr::from((e.ip(), e.port()))
            } else {
                let e = self.v6.get(at - n4);
                SocketAddr::from((e.ip(), e.port()))
            });
        }
    }

    /// Drops peers whose age at tick `now` is a peer timeout or more; how many went.
    fn expire(&mut self, now: u8) -> usize {
        let (gone4, seeders4) = self.v4.expire(now);
        let (gone6, seeders6) = self.v6.expire(now);
        self.seeders -= (seeders4 + seeders6) as u32;
        gone4 + gone6
    }
}

/// All swarms the tracker knows, sharded by info hash.
pub struct Swarms {
    shards: Vec<Mutex<HashMap<InfoHash, Swarm>>>,
    /// Keyed (SipHash), so neither shards nor peer id digests can be aimed at from outside.
    hasher: RandomState,
    caps: Caps,
    /// Where ticks count from.
    epoch: Instant,
    /// Length of a tick: the peer timeout / [`TICKS_PER_TIMEOUT`], in nanoseconds.
    tick_nanos: u128,
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
            epoch: Instant::now(),
            tick_nanos: (caps.peer_timeout.as_nanos() / u128::from(TICKS_PER_TIMEOUT)).max(1),
            swarm_count: AtomicUsize::new(0),
        }
    }

    /// Ticks since the epoch, wrapping (earlier instants wrap below zero, which wrapping ages
    /// handle the same way).
    fn tick(&self, now: Instant) -> u8 {
        match now.checked_duration_since(self.epoch) {
            Some(since) => (since.as_nanos() / self.tick_nanos) as u8,
            None => 0u8
                .wrapping_sub((self.epoch.duration_since(now).as_nanos() / self.tick_nanos) as u8),
        }
    }

    fn shard(&self, info_hash: &InfoHash) -> MutexGuard<'_, HashMap<InfoHash, Swarm>> {
        let shard = &self.shards[self.hasher.hash_one(info_hash) as usize % SHARDS];
        // A panic while holding the lock cannot leave a swarm half-updated in a way that
        // matters more than losing the tracker, so keep serving.
        lock(shard)
    }

    /// Records an announce and returns counts plus other peers, appended to `peers` (a buffer
    /// the caller may reuse; pass `Vec::new()` otherwise). `stopped` removes the peer (and its
    /// swarm once empty) and returns no peers.
    pub fn announce(
        &self,
        info_hash: InfoHash,
        announce: &PeerAnnounce,
        now: Instant,
        mut peers: Vec<SocketAddr>,
    ) -> Result<AnnounceReply, Refused> {
        let ip = announce.addr.ip().to_canonical();
        let id = self.hasher.hash_one(announce.peer_id) as u32 & DIGEST_MASK;
        let mut shard = self.shard(&info_hash);
        if announce.event == Event::Stopped {
            let stats = match shard.get_mut(&info_hash) {
                None => ScrapeStats::default(),
                Some(swarm) => {
                    swarm.remove(ip, id);
                    let stats = swarm.stats();
                    if swarm.len() == 0 {
                        shard.remove(&info_hash);
                        self.swarm_count.fetch_sub(1, Ordering::SeqCst);
                    }
                    stats
                }
            };
            return Ok(AnnounceReply {
                complete: stats.complete,
                incomplete: stats.incomplete,
                peers,
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
        let seen = Seen {
            port: announce.addr.port(),
            seeder: announce.left == 0,
            completed: announce.event == Event::Completed,
            tick: self.tick(now),
        };
        let me = swarm.upsert(ip, id, &seen, self.caps.max_peers_per_swarm);
        let want = announce
            .numwant
            .map_or(DEFAULT_NUMWANT, |n| n as usize)
            .min(MAX_NUMWANT);
        swarm.sample(me, ip.is_ipv6(), announce.own_family_only, want, &mut peers);
        let stats = swarm.stats();
        Ok(AnnounceReply {
            complete: stats.complete,
            incomplete: stats.incomplete,
            peers,
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
    /// their memory. Returns how many peers were dropped. Must run at least once every three
    /// peer timeouts (`peer_list.rs`: ticks wrap).
    pub fn expire(&self, now: Instant) -> usize {
        let now = self.tick(now);
        let mut dropped = 0;
        for shard in &self.shards {
            let mut shard = lock(shard);
            shard.retain(|_, swarm| {
                dropped += swarm.expire(now);
                let keep = swarm.len() > 0;
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
    use std::collections::HashSet;

    fn hash(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    fn announce(swarms: &Swarms, h: InfoHash, a: &PeerAnnounce, now: Instant) -> AnnounceReply {
        swarms
            .announce(h, a, now, Vec::new())
            .expect("under the caps")
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
            own_family_only: false,
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
        assert_eq!(second.peers, vec![a.addr]);
        let again = announce(&swarms, hash(1), &a, now);
        assert_eq!(again.peers, vec![b.addr]);
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
        let distinct: HashSet<_> = reply.peers.iter().copied().collect();
        assert_eq!(distinct.len(), 10);
        assert!(!distinct.contains(&me.addr));

        me.numwant = None;
        assert_eq!(
            announce(&swarms, hash(1), &me, now).peers.len(),
            DEFAULT_NUMWANT
        );
        me.numwant = Some(100_000);
        let all = announce(&swarms, hash(1), &me, now).peers;
        assert_eq!(all.len(), MAX_NUMWANT);
        assert!(all.iter().all(|p| *p != me.addr));
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
                seen.insert(p);
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
        assert_eq!(reply.peers, vec![a.addr]);
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
            swarms.announce(hash(9), &peer(1, 5, Event::Started), now, Vec::new()),
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
                .announce(hash(9), &peer(1, 5, Event::Started), now, Vec::new())
                .is_ok()
        );
        assert_eq!(swarms.totals().torrents, 3);
    }

    #[test]
    fn families_are_mixed_unless_only_the_own_one_is_wanted() {
        let swarms = registry(Duration::from_secs(60));
        let now = Instant::now();
        let mut v6 = peer(1, 5, Event::Started);
        v6.addr = "[2001:db8::1]:6881".parse().unwrap();
        announce(&swarms, hash(1), &v6, now);
        let mut mapped = peer(2, 0, Event::Started);
        mapped.addr = "[::ffff:10.0.0.2]:6882".parse().unwrap();
        announce(&swarms, hash(1), &mapped, now);
        let mut me = peer(3, 5, Event::Started);
        let both = announce(&swarms, hash(1), &me, now);
        let mut addrs: Vec<String> = both.peers.iter().map(ToString::to_string).collect();
        addrs.sort();
        // A mapped IPv4 address is stored (and given out) as the IPv4 address it is.
        assert_eq!(addrs, ["10.0.0.2:6882", "[2001:db8::1]:6881"]);
        assert_eq!((both.complete, both.incomplete), (1, 2));
        me.own_family_only = true;
        let own = announce(&swarms, hash(1), &me, now);
        assert_eq!(own.peers, ["10.0.0.2:6882".parse::<SocketAddr>().unwrap()]);
        v6.own_family_only = true;
        assert!(announce(&swarms, hash(1), &v6, now).peers.is_empty());
        v6.event = Event::Stopped;
        announce(&swarms, hash(1), &v6, now);
        assert_eq!(swarms.scrape(&[hash(1)])[0].1.incomplete, 1);
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
