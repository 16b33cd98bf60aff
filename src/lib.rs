//! piecemeal: a BitTorrent tracker and peer built on blocking `std::net` sockets and thread pools.
//!
//! The library holds all logic; `bin/piecemeal.rs` only parses flags and calls into it. Modules
//! are grouped by layer (see DESIGN.md for how a block travels through them):
//!
//! - [`bencode`], [`bitfield`]: pure codecs and piece maps shared by every layer;
//! - [`metainfo`]: the `.torrent` format (parse, info hash, create, show);
//! - [`wire`]: the peer wire protocol (messages, framing, handshake);
//! - [`disk`]: pieces to files and back, and piece verification;
//! - [`peer`]: the downloading and seeding engine (session, connections, picker, pipeline);
//! - [`tracker`]: the tracker protocol, the tracker server and the client that announces to it;
//! - [`dht`]: the Mainline DHT node (BEP 5);
//! - [`rpc`]: what a running peer lets a caller see and change;
//! - [`net`]: HTTP plumbing and the worker pool shared by the servers;
//! - [`lock`]: the one poison-tolerant lock helper.

pub mod bencode;
pub mod bitfield;
pub mod dht;
pub mod disk;
#[doc(hidden)]
pub mod fuzzing;
pub mod lock;
pub mod metainfo;
pub mod net;
pub mod peer;
pub mod rpc;
pub mod tracker;
pub mod wire;
