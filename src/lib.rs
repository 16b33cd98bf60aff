//! piecemeal: a BitTorrent tracker and peer built on blocking `std::net` sockets and thread pools.
//!
//! The library holds all logic; `bin/piecemeal.rs` only parses flags and calls into it.

pub mod announce;
pub mod bencode;
pub mod bitfield;
pub mod connection;
pub mod download;
pub mod http;
pub mod metainfo;
pub mod peer;
pub mod picker;
pub mod pool;
pub mod progress;
pub mod storage;
pub mod swarm;
pub mod torrent;
pub mod tracker;
pub mod upload;
pub mod wire;
