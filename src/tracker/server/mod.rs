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
//! - `GET /stats` (JSON, or HTML for browsers and at `GET /stats.html`): the status page.
//!
//! One waiting-room thread (`waiting_room.rs`) accepts connections and watches every open one
//! with `poll(2)`; only a connection whose whole request has arrived goes to one of a fixed
//! pool of workers, which answers it and gives a keep-alive connection back. A client that
//! sends nothing, or one byte a second, never holds a worker; each request must arrive within
//! [`Limits::deadline`](crate::net::http::Limits::deadline) of the connection entering the
//! room, and the number of open connections is capped.
//!
//! Where things are: `lifecycle.rs` starts and stops the threads, `connection.rs` is a
//! worker's part of a connection, `routes.rs` sends a request to its handler (`json_api.rs`,
//! `bep3.rs`, `scrape.rs`, `status_page.rs`, with the parameter checks they share in
//! `params.rs`), `service.rs` holds what every protocol shares and its neutral announce and
//! scrape (checking `access_list.rs` and `address_limit.rs`, counting in `stats.rs`), and
//! [`swarm`] keeps the peers.

mod access_list;
mod address_limit;
mod bep3;
mod connection;
mod json_api;
mod lifecycle;
mod params;
mod peer_list;
mod routes;
mod sampler;
mod scrape;
mod service;
pub mod stats;
mod status_page;
pub mod swarm;
#[cfg(test)]
mod testing;
mod udp;
mod waiting_room;

pub use access_list::{AccessListError, Mode as AccessMode};
pub use lifecycle::{
    TrackerConfig, TrackerError, TrackerHandle, default_min_interval, default_peer_timeout, start,
};
#[doc(hidden)]
pub use routes::answer_fresh;
