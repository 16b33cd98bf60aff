//! piecemeal's JSON API as the client speaks it: the `POST /announce` body and the reply.

use super::ReplyError;
use crate::tracker::protocol::{
    AnnounceRequest, AnnounceResponse, JsonAnnounce, JsonReply, PeerAddr, peer_id_from_json,
    peer_id_to_json,
};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The `POST /announce` body for `req`.
pub(super) fn json_request(req: &AnnounceRequest) -> JsonAnnounce {
    JsonAnnounce {
        info_hash: req.info_hash.hex(),
        peer_id: peer_id_to_json(&req.peer_id),
        port: req.port,
        uploaded: req.uploaded,
        downloaded: req.downloaded,
        left: req.left,
        event: Some(req.event.as_str().to_string()),
        numwant: req.numwant,
        ip: None,
    }
}

/// Parses a JSON API reply; `None` when the body is not a JSON object (not a JSON tracker).
pub(super) fn parse_json_reply(body: &[u8]) -> Option<Result<AnnounceResponse, ReplyError>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    if let Some(reason) = object.get("failure reason") {
        let reason = reason
            .as_str()
            .map_or_else(|| reason.to_string(), str::to_string);
        return Some(Err(ReplyError::Failure(reason)));
    }
    let reply: JsonReply = match serde_json::from_value(value) {
        Ok(reply) => reply,
        Err(e) => return Some(Err(ReplyError::Invalid(format!("invalid JSON reply: {e}")))),
    };
    let mut peers = Vec::with_capacity(reply.peers.len());
    for peer in reply.peers {
        let Ok(ip) = peer.ip.parse::<IpAddr>() else {
            return Some(Err(ReplyError::Invalid(format!(
                "peer ip {:?} is not an IP address",
                peer.ip
            ))));
        };
        peers.push(PeerAddr {
            addr: SocketAddr::new(ip, peer.port),
            peer_id: peer.peer_id.as_deref().and_then(peer_id_from_json),
        });
    }
    Some(Ok(AnnounceResponse {
        interval: Duration::from_secs(reply.interval),
        min_interval: reply.min_interval.map(Duration::from_secs),
        complete: reply.complete,
        incomplete: reply.incomplete,
        peers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_reply_parsing_and_detection() {
        let ok = br#"{"interval":60,"min_interval":10,"complete":1,"incomplete":0,
            "peers":[{"peer_id":"-PM0001-abcdefghijkl","ip":"127.0.0.1","port":6881},{"ip":"::1","port":1}]}"#;
        let reply = parse_json_reply(ok).unwrap().unwrap();
        assert_eq!(reply.interval, Duration::from_secs(60));
        assert_eq!(reply.peers[0].peer_id, Some(*b"-PM0001-abcdefghijkl"));
        assert_eq!(reply.peers[1].addr, "[::1]:1".parse().unwrap());

        let refused = parse_json_reply(br#"{"failure reason":"bad info_hash"}"#).unwrap();
        assert_eq!(
            refused.unwrap_err(),
            ReplyError::Failure("bad info_hash".into())
        );
        assert!(matches!(
            parse_json_reply(br#"{"peers":[]}"#),
            Some(Err(ReplyError::Invalid(_)))
        ));
        assert!(matches!(
            parse_json_reply(br#"{"interval":1,"peers":[{"ip":"nope","port":1}]}"#),
            Some(Err(ReplyError::Invalid(_)))
        ));
        // Not JSON objects: the caller falls back to BEP 3.
        assert!(parse_json_reply(b"d14:failure reason3:note").is_none());
        assert!(parse_json_reply(b"[1,2]").is_none());
        assert!(parse_json_reply(b"").is_none());
    }
}
