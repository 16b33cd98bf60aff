//! The peer: the process that seeds and downloads torrents.
//!
//! - [`session`]: the process (start-up, completion, shutdown);
//! - [`torrent_state`]: what the process knows about one torrent, shared by its threads;
//! - [`announcing`]: the announce thread of a torrent; [`dial`]: outgoing connections;
//!   [`listener`]: incoming connections; [`handshake`]: the handshake exchange of both;
//!   [`encryption`]: the encrypted handshake before it; [`peer_stream`]: the socket, ciphered;
//!   [`dht_search`]: a torrent's DHT lookups;
//! - [`connection`]: one connection's message loop; [`error`]: why a connection ended;
//!   [`fast`]: what the fast extension (BEP 6) changes on a connection;
//! - [`open_connections`]: the connections of a torrent, and the one kept of a simultaneous open;
//! - [`writer`]: the sending half of a connection, which never makes the loop wait;
//! - [`peer_manager`]: every connection's state and rates, and which peers the [`choker`]
//!   unchokes; [`snub`]: when a peer leaves our requests unanswered;
//! - [`picker`]: which piece to fetch next, by the [`availability`] of pieces among the peers;
//!   [`pipeline`]: the block requests of one connection; [`window`]: how many of them to keep
//!   in flight;
//! - [`rate_limit`]: upload and download limits, per torrent and for the process;
//! - [`progress`]: what the user sees while it runs;
//! - [`extension`]: the extension protocol on a connection (metadata served, peer exchange);
//!   [`peer_feed`]: peers learnt other than from the tracker, dialled by one thread per torrent;
//! - [`magnet_fetch`]: a magnet link's metadata fetched before its torrent starts, assembled
//!   and checked by [`metadata`].
//!
//! How a piece moves from missing to verified, and which locks may be held together, is written
//! down in [`picker`] and [`torrent_state`].

pub mod announcing;
pub mod availability;
pub mod choker;
pub mod connection;
pub mod connection_limits;
pub mod dht_search;
pub mod dial;
pub mod encryption;
pub mod error;
pub mod eviction;
pub mod extension;
pub mod fast;
pub mod handshake;
pub mod hash_pool;
pub mod listener;
pub mod magnet_fetch;
pub mod metadata;
pub mod metadata_peer;
pub mod open_connections;
pub mod peer_feed;
pub mod peer_manager;
pub mod peer_stream;
pub mod picker;
pub mod piece_sink;
pub mod pipeline;
pub mod progress;
pub mod rate_limit;
pub mod rate_meter;
pub mod resume_saving;
pub mod session;
pub mod snub;
pub mod suggest;
pub mod torrent_state;
pub mod window;
pub mod writer;

#[cfg(test)]
mod test_support;

pub use session::{PeerConfig, PeerError, Session, run};
