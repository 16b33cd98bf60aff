//! What the server's unit tests share: a service without sockets, and a way to send it a `GET`
//! and read the bencoded reply.

use super::access_list::AccessList;
use super::address_limit::AddressLimit;
use super::routes::{Service, route};
use super::stats::Stats;
use super::swarm::{Caps, Swarms};
use crate::bencode::{self, Value};
use crate::net::http::{Limits, Request};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A service with a 120 s interval (30 s minimum), a 60 s peer timeout, roomy caps, no access
/// list and no trusted proxy.
pub(super) fn service() -> Service {
    Service {
        swarms: Swarms::new(Caps {
            peer_timeout: Duration::from_secs(60),
            max_swarms: 1000,
            max_peers_per_swarm: 1000,
        }),
        interval: Duration::from_secs(120),
        min_interval: Duration::from_secs(30),
        limits: Limits::default(),
        trusted_proxies: Vec::new(),
        address_limit: AddressLimit::new(0, Duration::from_secs(120)),
        access: AccessList::open(),
        stats: Stats::default(),
    }
}

/// Routes a `GET` of `target` from `remote`, expects status 200 and decodes the bencoded reply.
pub(super) fn get(service: &Service, target: &str, remote: IpAddr) -> Value {
    let request = Request {
        method: "GET".into(),
        target: target.into(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let reply = route(&request, remote, service, Instant::now());
    assert_eq!(reply.status, 200);
    bencode::decode(&reply.body).expect("bencoded reply")
}

/// A BEP 3 announce target for torrent `01…01` by a peer whose id is `peer` repeated, with
/// `extra` query parameters appended.
pub(super) fn announce_target(peer: u8, port: u16, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left=5{extra}",
        "%01".repeat(20),
        format!("{peer:02}").repeat(10),
    )
}

/// A key of a bencoded dictionary.
pub(super) fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_dict().and_then(|d| d.get(key.as_bytes()))
}
