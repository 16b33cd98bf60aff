//! What every front end (HTTP, UDP) shares: the registry, its limits and counters, and the
//! protocol-neutral announce and scrape that apply the access list and the per-address budget
//! before touching the registry.

use super::access_list::AccessList;
use super::address_limit::AddressLimit;
use super::lifecycle::TrackerConfig;
use super::stats::{Kind, Proto, Stats};
use super::swarm::{AnnounceReply, Caps, PeerAnnounce, ScrapeStats, Swarms};
use crate::metainfo::InfoHash;
use crate::net::http::Limits;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The tracker's shared state, one per process, used by every worker of every protocol.
pub(super) struct Service {
    pub(super) swarms: Swarms,
    pub(super) interval: Duration,
    pub(super) min_interval: Duration,
    /// Size and time bounds for each HTTP request.
    pub(super) limits: Limits,
    /// Addresses whose `ip=` parameter and `X-Forwarded-For` header are believed.
    pub(super) trusted_proxies: Vec<IpAddr>,
    pub(super) address_limit: AddressLimit,
    pub(super) access: AccessList,
    pub(super) stats: Stats,
}

impl Service {
    /// The service `config` describes, admitting the info hashes `access` allows.
    pub(super) fn new(config: &TrackerConfig, access: AccessList) -> Service {
        Service {
            swarms: Swarms::new(Caps {
                peer_timeout: config.peer_timeout,
                max_swarms: config.max_swarms,
                max_peers_per_swarm: config.max_peers_per_swarm,
            }),
            interval: config.interval,
            min_interval: config.min_interval,
            limits: config.limits.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            address_limit: AddressLimit::new(config.max_announces_per_ip, config.interval),
            access,
            stats: Stats::default(),
        }
    }

    /// Records an announce that arrived over `proto`; `announce.addr` must hold the address the
    /// request came from (or the one a trusted proxy vouched for), as peers are known by it.
    /// Peers are appended to `peers` (a buffer to reuse, or `Vec::new()`).
    /// `Err` holds the failure reason to send back.
    pub(super) fn announce(
        &self,
        proto: Proto,
        info_hash: InfoHash,
        announce: &PeerAnnounce,
        now: Instant,
        peers: Vec<SocketAddr>,
    ) -> Result<AnnounceReply, String> {
        self.stats.record(proto, Kind::Announce);
        self.access.check(&info_hash)?;
        if !self.address_limit.allow(announce.addr.ip(), now) {
            return Err(format!(
                "too many announces from your address; retry in {} s",
                self.interval.as_secs()
            ));
        }
        self.swarms
            .announce(info_hash, announce, now, peers)
            .map_err(|e| e.to_string())
    }

    /// Scrape numbers for `hashes`, counted as one scrape over `proto`.
    pub(super) fn scrape(&self, proto: Proto, hashes: &[InfoHash]) -> Vec<(InfoHash, ScrapeStats)> {
        self.stats.record(proto, Kind::Scrape);
        self.swarms.scrape(hashes)
    }

    /// Whether requests from `remote` may say where the peer really is.
    pub(super) fn trusts(&self, remote: IpAddr) -> bool {
        self.trusted_proxies.contains(&remote)
    }
}
