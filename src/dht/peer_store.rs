//! The peers other nodes announced to us (`announce_peer`), by info hash: what we answer
//! `get_peers` with. Bounded in info hashes and in peers per info hash; an entry expires
//! [`PEER_TTL`] after its last announce, as peers re-announce every 15–30 minutes.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// How long an announce is remembered.
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);
/// Most info hashes stored.
const MAX_TORRENTS: usize = 2000;
/// Most peers stored per info hash.
const MAX_PEERS: usize = 100;
/// Most peers given in one answer (a packet must stay under an Ethernet frame).
pub const MAX_ANSWER: usize = 50;

/// Announced peers by info hash.
#[derive(Debug, Default)]
pub struct PeerStore {
    torrents: HashMap<[u8; 20], HashMap<SocketAddrV4, Instant>>,
}

impl PeerStore {
    /// Records an announce. A full store refuses new info hashes; a full torrent replaces its
    /// oldest peer.
    pub fn announce(&mut self, info_hash: [u8; 20], peer: SocketAddrV4, now: Instant) {
        if !self.torrents.contains_key(&info_hash) && self.torrents.len() >= MAX_TORRENTS {
            self.expire(now);
            if self.torrents.len() >= MAX_TORRENTS {
                return;
            }
        }
        let peers = self.torrents.entry(info_hash).or_default();
        if !peers.contains_key(&peer) && peers.len() >= MAX_PEERS {
            if let Some(oldest) = peers.iter().min_by_key(|(_, t)| **t).map(|(a, _)| *a) {
                peers.remove(&oldest);
            }
        }
        peers.insert(peer, now);
    }

    /// Up to [`MAX_ANSWER`] live peers of `info_hash`, in no particular order.
    pub fn peers(&self, info_hash: &[u8; 20], now: Instant) -> Vec<SocketAddrV4> {
        self.torrents
            .get(info_hash)
            .into_iter()
            .flatten()
            .filter(|(_, t)| now.duration_since(**t) < PEER_TTL)
            .map(|(a, _)| *a)
            .take(MAX_ANSWER)
            .collect()
    }

    /// Forgets expired announces.
    pub fn expire(&mut self, now: Instant) {
        for peers in self.torrents.values_mut() {
            peers.retain(|_, t| now.duration_since(*t) < PEER_TTL);
        }
        self.torrents.retain(|_, p| !p.is_empty());
    }

    /// Info hashes and peers stored.
    pub fn counts(&self) -> (usize, usize) {
        let peers = self.torrents.values().map(HashMap::len).sum();
        (self.torrents.len(), peers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u32) -> SocketAddrV4 {
        SocketAddrV4::new(std::net::Ipv4Addr::from(n), 6881)
    }

    #[test]
    fn announces_are_answered_then_expire() {
        let now = Instant::now();
        let mut s = PeerStore::default();
        s.announce([1; 20], peer(1), now);
        assert_eq!(s.peers(&[1; 20], now), vec![peer(1)]);
        assert!(s.peers(&[2; 20], now).is_empty());
        assert!(s.peers(&[1; 20], now + PEER_TTL).is_empty());
        s.expire(now + PEER_TTL);
        assert_eq!(s.counts(), (0, 0));
    }

    #[test]
    fn the_store_is_bounded() {
        let now = Instant::now();
        let mut s = PeerStore::default();
        for i in 0..(MAX_PEERS as u32 * 3) {
            s.announce([1; 20], peer(i), now + Duration::from_millis(i as u64));
        }
        assert_eq!(s.counts(), (1, MAX_PEERS));
        assert!(s.peers(&[1; 20], now).len() <= MAX_ANSWER);
        for i in 0..(MAX_TORRENTS as u32 + 50) {
            let mut h = [0u8; 20];
            h[..4].copy_from_slice(&i.to_be_bytes());
            s.announce(h, peer(i), now);
        }
        assert_eq!(s.counts().0, MAX_TORRENTS);
    }
}
