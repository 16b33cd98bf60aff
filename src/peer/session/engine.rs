//! What every torrent of a running peer shares: its flags, identity, listening port, limits,
//! hashing threads, file handles, DHT node and the listener's set of torrents.

use crate::dht::Dht;
use crate::disk::file_pool::FilePool;
use crate::peer::connection_limits::ConnectionLimits;
use crate::peer::hash_pool::HashPool;
use crate::peer::listener::Torrents;
use crate::peer::rate_limit::RateLimits;
use crate::peer::session::PeerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The parts of the process a torrent starts with.
pub(crate) struct Engine {
    /// The flags the peer was started with.
    pub config: PeerConfig,
    /// Set when the whole process stops.
    pub shutdown: Arc<AtomicBool>,
    pub peer_id: [u8; 20],
    /// The first listening socket's address.
    pub local: SocketAddr,
    /// `--max-upload-rate` and `--max-download-rate`, changeable at run time.
    pub limits: Arc<RateLimits>,
    pub connection_limits: Arc<ConnectionLimits>,
    pub hashers: HashPool,
    pub files: Arc<FilePool>,
    pub dht: Option<Arc<Dht>>,
    /// What the listener serves.
    pub served: Arc<Torrents>,
}
