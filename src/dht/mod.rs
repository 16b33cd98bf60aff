//! The Mainline DHT (BEP 5): a full node inside the peer process, on UDP at the peer's port.
//!
//! - [`node_id`]: ids and the XOR metric; [`krpc`]: the bencoded messages;
//! - [`routing_table`]: k-buckets and node states; [`lookup`]: iterative lookups;
//! - [`token`]: write tokens; [`peer_store`]: peers announced to us; [`query_limit`]: the
//!   per-IP limit on incoming queries; [`server`]: what a query is answered with;
//! - [`saved`]: the routing table kept in the peer's folder across runs;
//! - [`node`]: the socket and threads that run it all (the maintenance thread's work is in
//!   `maintenance.rs`).
//!
//! All but `node` are pure, with unit tests beside them.

pub mod krpc;
pub mod lookup;
mod maintenance;
pub mod node;
pub mod node_id;
pub mod peer_store;
pub mod query_limit;
pub mod routing_table;
pub mod saved;
pub mod server;
pub mod token;

pub use node::{Dht, DhtConfig, DhtError, DhtStats, Found};
