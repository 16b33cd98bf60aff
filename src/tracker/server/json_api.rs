//! The JSON API's announce: `POST /announce` with a JSON body, answered in JSON.

use super::params::{Origin, valid_port};
use super::routes::{Reply, Service};
use super::stats::Proto;
use super::swarm::PeerAnnounce;
use crate::metainfo::InfoHash;
use crate::tracker::protocol::{Event, JsonAnnounce, JsonPeer, JsonReply, peer_id_from_json};
use std::net::SocketAddr;
use std::time::Instant;

/// Answers a JSON announce; a body that does not parse or validate gets a 400 with the reason,
/// a refused one (access list, limits) a 403. Peers in the reply carry no `peer_id`: the
/// registry keeps only a digest of each (and an id gives no power over another address's entry).
pub(super) fn json_announce(
    body: &[u8],
    origin: &Origin,
    service: &Service,
    now: Instant,
) -> Reply {
    let parsed = serde_json::from_slice::<JsonAnnounce>(body)
        .map_err(|e| format!("invalid announce JSON: {e}"))
        .and_then(|req| {
            let info_hash =
                InfoHash::from_hex(&req.info_hash).ok_or("info_hash must be 40 hex characters")?;
            let peer_id = peer_id_from_json(&req.peer_id)
                .ok_or("peer_id must be a 20-byte string or 40 hex characters")?;
            let event = match req.event.as_deref() {
                None => Event::None,
                Some(name) => Event::parse(name)
                    .ok_or("event must be started, completed, stopped or absent")?,
            };
            let announce = PeerAnnounce {
                peer_id,
                addr: SocketAddr::new(
                    origin.peer_ip(req.ip.as_deref().map(str::as_bytes)),
                    valid_port(req.port)?,
                ),
                left: req.left,
                event,
                numwant: req.numwant,
                own_family_only: false,
            };
            Ok((info_hash, announce))
        });
    let (info_hash, announce) = match parsed {
        Ok(parsed) => parsed,
        Err(reason) => return Reply::json_failure(400, &reason),
    };
    let reply = match service.announce(Proto::Http, info_hash, &announce, now, Vec::new()) {
        Ok(reply) => reply,
        Err(reason) => return Reply::json_failure(403, &reason),
    };
    let body = JsonReply {
        interval: service.interval.as_secs(),
        min_interval: Some(service.min_interval.as_secs()),
        complete: Some(reply.complete),
        incomplete: Some(reply.incomplete),
        peers: reply
            .peers
            .iter()
            .map(|p| JsonPeer {
                // The registry keeps only a digest of each peer id.
                peer_id: None,
                ip: p.ip().to_string(),
                port: p.port(),
            })
            .collect(),
    };
    Reply::json(200, serde_json::to_vec(&body).unwrap_or_default())
}
