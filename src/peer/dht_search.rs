//! The peer's use of the DHT: [`start`] runs the process's node (on UDP at the peer's port);
//! [`run`] is the DHT thread of one torrent: a `get_peers` lookup of its info hash now and
//! then, whose peers are dialled like a tracker's, followed by `announce_peer` with our port to
//! the closest nodes, so others find us too; and [`find_metadata_peers`] is the same search
//! for a magnet link whose metadata is still missing (peers go to the metadata fetch, nothing
//! is announced: we have nothing to serve yet).

use crate::dht::{Dht, DhtConfig, Found, krpc};
use crate::metainfo::InfoHash;
use crate::peer::dial::dial;
use crate::peer::session::PeerConfig;
use crate::peer::torrent_state::TorrentState;
use crossbeam_channel::Sender;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Between lookups once the DHT answered (peers re-announce every 15–30 minutes).
const INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Between lookups while no node answered yet (the table is still filling), and while a
/// magnet link's metadata is missing and no peer was found.
const RETRY_EMPTY: Duration = Duration::from_secs(5);
/// Between lookups while downloading and no peer was found, and while a magnet link's
/// metadata is missing though peers were found (they may all fail to deliver it).
const RETRY_NO_PEERS: Duration = Duration::from_secs(10);
/// The wake-up of a thread waiting for its next lookup, to see a stop.
const TICK: Duration = Duration::from_millis(100);

/// Searches for and announces `torrent` (listening on `port`) until shutdown.
pub fn run(torrent: Arc<TorrentState>, dht: Arc<Dht>, port: u16) {
    let name = torrent.meta.info.name.clone();
    let stop = || torrent.is_shutting_down();
    search(&dht, torrent.meta.info_hash, Some(port), stop, |found| {
        log::info!(
            "{name}: DHT lists {} peers ({} nodes answered, announced to {})",
            found.peers.len(),
            found.nodes,
            found.announced
        );
        for addr in &found.peers {
            dial(&torrent, *addr);
        }
        if found.nodes == 0 {
            RETRY_EMPTY
        } else if found.peers.is_empty() && torrent.is_downloading() {
            RETRY_NO_PEERS
        } else {
            INTERVAL
        }
    });
}

/// Looks up the peers of a magnet link's `info_hash` until `stop`, sending them down `found`
/// (for [`crate::peer::magnet_fetch`], which asks them for the metadata).
pub fn find_metadata_peers(
    dht: &Dht,
    info_hash: InfoHash,
    found: &Sender<SocketAddr>,
    stop: &AtomicBool,
) {
    let stopped = || stop.load(Ordering::SeqCst);
    search(dht, info_hash, None, stopped, |f| {
        log::info!(
            "{info_hash}: DHT lists {} peers for the metadata ({} nodes answered)",
            f.peers.len(),
            f.nodes
        );
        for addr in &f.peers {
            let _ = found.try_send(*addr);
        }
        if f.peers.is_empty() {
            RETRY_EMPTY
        } else {
            RETRY_NO_PEERS
        }
    });
}

/// Runs `get_peers` lookups of `info_hash` (announcing `announce_port` when given) until
/// `stop()`; `found` takes each lookup's result and says how long to wait for the next.
fn search(
    dht: &Dht,
    info_hash: InfoHash,
    announce_port: Option<u16>,
    stop: impl Fn() -> bool,
    mut found: impl FnMut(&Found) -> Duration,
) {
    while !stop() {
        let wait = found(&dht.get_peers(info_hash.0, announce_port));
        let until = Instant::now() + wait;
        while Instant::now() < until && !stop() {
            std::thread::sleep(TICK);
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
