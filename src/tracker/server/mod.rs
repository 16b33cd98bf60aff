//! The tracker server: piecemeal's JSON announce API and the standard BEP 3 HTTP tracker
//! protocol on one port, sharing one registry of swarms.
//!
//! Endpoints:
//! - `POST /announce` with a JSON body (the wire structs of [`crate::tracker::protocol`]),
//!   answered in JSON; errors are HTTP 400/404/405 with `{"failure reason": "..."}`.
//! - `GET /announce?info_hash=...` (BEP 3), answered bencoded with compact peers (BEP 23, and
//!   `peers6` per BEP 7) unless `compact=0`; errors are HTTP 200 with a bencoded
//!   `failure reason`, which is where BitTorrent clients look for them.
//! - `GET /scrape?info_hash=...` (BEP 48, `info_hash` repeatable).
//! - UDP (BEP 15) connect, announce and scrape on the same port number, served by the threads
//!   of [`udp`](self) into the same registry.
//!
//! One acceptor thread hands each connection to a fixed pool of workers. Each request must
//! arrive completely within [`Limits::deadline`](crate::net::http::Limits::deadline), so a
//! client that sends nothing (or one byte a second) holds a worker for at most that long; when
//! every worker is busy and the queue is full, new connections get an immediate 503.
//!
//! Where things are: `lifecycle.rs` starts and stops the threads, `connection.rs` serves one
//! connection, `routes.rs` sends a request to its handler (`json_api.rs`, `bep3.rs`,
//! `scrape.rs`, with the parameter checks they share in `params.rs`), and [`swarm`] keeps the
//! peers.

mod bep3;
mod connection;
mod json_api;
mod lifecycle;
mod params;
mod routes;
mod scrape;
pub mod swarm;
#[cfg(test)]
mod testing;
mod udp;

pub use lifecycle::{TrackerConfig, TrackerError, TrackerHandle, default_peer_timeout, start};
#[doc(hidden)]
pub use routes::answer_fresh;
