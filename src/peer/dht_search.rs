//! The peer's use of the DHT: [`start`] runs the process's node (on UDP at the peer's port),
//! and [`run`] is the DHT thread of one torrent: a `get_peers` lookup of its info hash now and
//! then, whose peers are dialled like a tracker's, followed by `announce_peer` with our port to
//! the closest nodes, so others find us too.

use crate::dht::{Dht, DhtConfig, krpc};
use crate::peer::dial::dial;
use crate::peer::session::PeerConfig;
use crate::peer::torrent_state::TorrentState;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Between lookups once the DHT answered (peers re-announce every 15–30 minutes).
const INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Between lookups while no node answered yet (the table is still filling).
const RETRY_EMPTY: Duration = Duration::from_secs(5);
/// Between lookups while downloading and no peer was found.
const RETRY_NO_PEERS: Duration = Duration::from_secs(10);

/// Searches for and announces `torrent` (listening on `port`) until shutdown.
pub fn run(torrent: Arc<TorrentState>, dht: Arc<Dht>, port: u16) {
    let name = torrent.meta.info.name.clone();
    while !torrent.is_shutting_down() {
        let found = dht.get_peers(torrent.meta.info_hash.0, Some(port));
        log::info!(
            "{name}: DHT lists {} peers ({} nodes answered, announced to {})",
            found.peers.len(),
            found.nodes,
            found.announced
        );
        for addr in &found.peers {
            dial(&torrent, *addr);
        }
        let wait = if found.nodes == 0 {
            RETRY_EMPTY
        } else if found.peers.is_empty() && torrent.is_downloading() {
            RETRY_NO_PEERS
        } else {
            INTERVAL
        };
        let until = Instant::now() + wait;
        while Instant::now() < until && !torrent.is_shutting_down() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Where a peer keeps its DHT routing table between runs.
pub const DHT_STATE_FILE: &str = ".piecemeal/dht.json";
/// The public routers a DHT node bootstraps from when given none.
const PUBLIC_ROUTERS: [&str; 3] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
];

/// Starts the DHT node on UDP at the peer's port, unless switched off or every torrent is
/// private. A node that cannot start is a warning, not an error: trackers still work.
pub fn start(config: &PeerConfig, all_private: bool, port: u16) -> Option<Dht> {
    if config.no_dht || all_private {
        return None;
    }
    let ip = match config.bind {
        Some(IpAddr::V4(ip)) => ip,
        Some(IpAddr::V6(_)) => {
            log::warn!("DHT off: it runs on IPv4 only (BEP 32 is not spoken)");
            return None;
        }
        None => Ipv4Addr::UNSPECIFIED,
    };
    let names: Vec<&str> = if config.dht_bootstrap.is_empty() {
        // A node bound to loopback could not reach the public routers anyway.
        if ip.is_loopback() {
            Vec::new()
        } else {
            PUBLIC_ROUTERS.to_vec()
        }
    } else {
        config.dht_bootstrap.iter().map(String::as_str).collect()
    };
    let bootstrap = names
        .iter()
        .flat_map(|name| match name.to_socket_addrs() {
            Ok(addrs) => addrs.filter_map(krpc::v4).collect(),
            Err(e) => {
                log::warn!("DHT bootstrap node {name}: {e}");
                Vec::new()
            }
        })
        .collect();
    let dht_config = DhtConfig {
        bind: SocketAddrV4::new(ip, port),
        bootstrap,
        state_file: Some(config.dir.join(DHT_STATE_FILE)),
    };
    match Dht::start(dht_config) {
        Ok(dht) => {
            log::info!("DHT node {:?} on UDP port {port}", dht.id());
            Some(dht)
        }
        Err(e) => {
            log::warn!("{e}; DHT off");
            None
        }
    }
}
