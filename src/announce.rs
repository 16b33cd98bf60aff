//! Client side of the tracker protocols: announcing to a piecemeal JSON tracker or a standard
//! BEP 3 HTTP tracker, with BEP 12 tiers.
//!
//! CONTRACT (types are fixed; helper B implements the rest).

use crate::metainfo::InfoHash;
use std::net::SocketAddr;
use std::time::Duration;

/// The `event` of an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Started,
    Completed,
    Stopped,
    /// A regular re-announce (no event key in BEP 3, `"absent"` in the JSON API).
    None,
}

/// What a peer tells the tracker about itself.
#[derive(Clone, Debug)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    pub numwant: Option<u32>,
}

/// One peer from a tracker reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddr {
    pub addr: SocketAddr,
    /// Known for dictionary-model and JSON replies, absent for compact ones.
    pub peer_id: Option<[u8; 20]>,
}

/// A successful tracker reply.
#[derive(Clone, Debug)]
pub struct AnnounceResponse {
    pub interval: Duration,
    pub min_interval: Option<Duration>,
    pub complete: Option<u64>,
    pub incomplete: Option<u64>,
    pub peers: Vec<PeerAddr>,
}
