//! The DHT thread of one torrent: a `get_peers` lookup of its info hash now and then, whose
//! peers are dialled like a tracker's, followed by `announce_peer` with our port to the closest
//! nodes, so others find us too.

use crate::dht::Dht;
use crate::peer::dial::dial;
use crate::peer::torrent_state::TorrentState;
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
