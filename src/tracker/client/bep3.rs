//! The BEP 3 HTTP tracker protocol as the client speaks it: the `GET` announce URL, and the
//! bencoded reply with compact (BEP 23, BEP 7) or dictionary peers.

use super::ReplyError;
use crate::bencode;
use crate::net::http;
use crate::tracker::protocol::compact::{self, Family};
use crate::tracker::protocol::{AnnounceRequest, AnnounceResponse, Event, PeerAddr};
use log::{debug, warn};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The BEP 3 announce URL for `req`, keeping any query the tracker URL already has (passkeys).
pub(super) fn bep3_url(url: &str, req: &AnnounceRequest) -> String {
    // A fragment is never sent to the server.
    let base = url.split('#').next().unwrap_or(url);
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut out = format!(
        "{base}{separator}info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact=1",
        http::percent_encode(&req.info_hash.0),
        http::percent_encode(&req.peer_id),
        req.port,
        req.uploaded,
        req.downloaded,
        req.left
    );
    if req.event != Event::None {
        out.push_str("&event=");
        out.push_str(req.event.as_str());
    }
    if let Some(numwant) = req.numwant {
        out.push_str(&format!("&numwant={numwant}"));
    }
    out
}

/// Parses a bencoded BEP 3 reply: compact (BEP 23) or dictionary peers, plus `peers6` (BEP 7).
pub(super) fn parse_bep3_reply(body: &[u8]) -> Result<AnnounceResponse, ReplyError> {
    let invalid = |what: &str| ReplyError::Invalid(what.to_string());
    let value = bencode::decode(body)
        .map_err(|e| ReplyError::Invalid(format!("reply is not bencoded: {e}")))?;
    let dict = value
        .as_dict()
        .ok_or_else(|| invalid("reply is not a dictionary"))?;
    let field = |name: &str| dict.get(name.as_bytes());
    if let Some(reason) = field("failure reason") {
        let reason = reason
            .as_bytes()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        return Err(ReplyError::Failure(reason.into_owned()));
    }
    if let Some(warning) = field("warning message").and_then(|w| w.as_bytes()) {
        warn!("tracker warning: {}", String::from_utf8_lossy(warning));
    }
    let count = |name: &str| -> Result<Option<u64>, ReplyError> {
        match field(name) {
            None => Ok(None),
            Some(v) => v
                .as_int()
                .and_then(|n| u64::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    ReplyError::Invalid(format!("{name} is not a non-negative integer"))
                }),
        }
    };
    let interval = count("interval")?.ok_or_else(|| invalid("reply has no interval"))?;
    let mut peers = Vec::new();
    match field("peers") {
        None => {}
        Some(bencode::Value::Bytes(compact)) => peers.extend(compact_peers(compact, Family::V4)?),
        Some(bencode::Value::List(list)) => {
            for entry in list {
                peers.extend(dictionary_peer(entry)?);
            }
        }
        Some(_) => return Err(invalid("peers is neither a string nor a list")),
    }
    match field("peers6") {
        None => {}
        Some(bencode::Value::Bytes(compact)) => peers.extend(compact_peers(compact, Family::V6)?),
        Some(_) => return Err(invalid("peers6 is not a string")),
    }
    Ok(AnnounceResponse {
        interval: Duration::from_secs(interval),
        min_interval: count("min interval")?.map(Duration::from_secs),
        complete: count("complete")?,
        incomplete: count("incomplete")?,
        peers,
    })
}

/// The peers of one compact list; compact entries carry no peer id.
fn compact_peers(
    data: &[u8],
    family: Family,
) -> Result<impl Iterator<Item = PeerAddr>, ReplyError> {
    let addrs = compact::decode(data, family).map_err(|e| ReplyError::Invalid(e.to_string()))?;
    Ok(addrs.into_iter().map(|addr| PeerAddr {
        addr,
        peer_id: None,
    }))
}

/// One dictionary-model peer; `None` for peers given by host name, which would need a blocking
/// lookup and which no current tracker sends.
fn dictionary_peer(entry: &bencode::Value) -> Result<Option<PeerAddr>, ReplyError> {
    let dict = entry
        .as_dict()
        .ok_or_else(|| ReplyError::Invalid("peer entry is not a dictionary".into()))?;
    let ip = dict
        .get(b"ip".as_slice())
        .and_then(|v| v.as_bytes())
        .ok_or_else(|| ReplyError::Invalid("peer entry has no ip".into()))?;
    let port = dict
        .get(b"port".as_slice())
        .and_then(|v| v.as_int())
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| ReplyError::Invalid("peer entry has no valid port".into()))?;
    let Some(ip) = std::str::from_utf8(ip)
        .ok()
        .and_then(|s| s.parse::<IpAddr>().ok())
    else {
        debug!(
            "skipping peer with host name {:?}",
            String::from_utf8_lossy(ip)
        );
        return Ok(None);
    };
    let peer_id = dict
        .get(b"peer id".as_slice())
        .and_then(|v| v.as_bytes())
        .and_then(|id| <[u8; 20]>::try_from(id).ok());
    Ok(Some(PeerAddr {
        addr: SocketAddr::new(ip, port),
        peer_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::client::tests::request;
    use std::collections::BTreeMap;

    fn dict(entries: Vec<(&str, bencode::Value)>) -> bencode::Value {
        bencode::Value::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn bep3_url_encodes_binary_fields_and_keeps_passkey() {
        let url = bep3_url("http://t.example/announce?passkey=x#frag", &request());
        assert!(
            url.starts_with("http://t.example/announce?passkey=x&info_hash="),
            "{url}"
        );
        assert!(
            url.contains(&format!("info_hash={}", "%AB".repeat(20))),
            "{url}"
        );
        assert!(
            url.contains("peer_id=-PM0001-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3")
        );
        assert!(url.ends_with("&compact=1&event=started&numwant=7"), "{url}");
        let mut regular = request();
        regular.event = Event::None;
        regular.numwant = None;
        assert!(bep3_url("http://t/a", &regular).ends_with("left=3&compact=1"));
    }

    #[test]
    fn bep3_reply_with_compact_peers_and_peers6() {
        let mut v6 = vec![0u8; 16];
        v6[15] = 1;
        v6.extend_from_slice(&6882u16.to_be_bytes());
        let body = bencode::encode(&dict(vec![
            ("interval", bencode::Value::Int(900)),
            ("min interval", bencode::Value::Int(60)),
            ("complete", bencode::Value::Int(2)),
            ("incomplete", bencode::Value::Int(5)),
            (
                "peers",
                bencode::Value::Bytes(vec![10, 0, 0, 1, 0x1a, 0xe1, 127, 0, 0, 1, 0, 80]),
            ),
            ("peers6", bencode::Value::Bytes(v6)),
        ]));
        let reply = parse_bep3_reply(&body).unwrap();
        assert_eq!(reply.interval, Duration::from_secs(900));
        assert_eq!(reply.min_interval, Some(Duration::from_secs(60)));
        assert_eq!((reply.complete, reply.incomplete), (Some(2), Some(5)));
        let addrs: Vec<String> = reply.peers.iter().map(|p| p.addr.to_string()).collect();
        assert_eq!(addrs, ["10.0.0.1:6881", "127.0.0.1:80", "[::1]:6882"]);
        assert!(reply.peers.iter().all(|p| p.peer_id.is_none()));
    }

    #[test]
    fn bep3_reply_with_dictionary_peers() {
        let peer = |ip: &str, port: i64| {
            dict(vec![
                ("ip", bencode::Value::Bytes(ip.as_bytes().to_vec())),
                ("peer id", bencode::Value::Bytes(vec![b'x'; 20])),
                ("port", bencode::Value::Int(port)),
            ])
        };
        let body = bencode::encode(&dict(vec![
            ("interval", bencode::Value::Int(30)),
            (
                "peers",
                bencode::Value::List(vec![peer("::1", 1), peer("a.host", 2), peer("1.2.3.4", 3)]),
            ),
        ]));
        let reply = parse_bep3_reply(&body).unwrap();
        assert_eq!(reply.peers.len(), 2, "the host-name peer is skipped");
        assert_eq!(reply.peers[0].addr, "[::1]:1".parse().unwrap());
        assert_eq!(reply.peers[1].peer_id, Some([b'x'; 20]));
        assert_eq!(reply.complete, None);

        let bad_port = bencode::encode(&dict(vec![
            ("interval", bencode::Value::Int(30)),
            ("peers", bencode::Value::List(vec![peer("1.2.3.4", 70000)])),
        ]));
        assert!(matches!(
            parse_bep3_reply(&bad_port),
            Err(ReplyError::Invalid(_))
        ));
    }

    #[test]
    fn bep3_failures_and_malformed_replies() {
        let failure = bencode::encode(&dict(vec![(
            "failure reason",
            bencode::Value::Bytes(b"unregistered torrent".to_vec()),
        )]));
        assert_eq!(
            parse_bep3_reply(&failure).unwrap_err(),
            ReplyError::Failure("unregistered torrent".into())
        );
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"<html>".to_vec(), "bencoded"),
            (b"i3e".to_vec(), "dictionary"),
            (bencode::encode(&dict(vec![])), "interval"),
            (
                bencode::encode(&dict(vec![("interval", bencode::Value::Int(-1))])),
                "interval",
            ),
            (
                bencode::encode(&dict(vec![
                    ("interval", bencode::Value::Int(1)),
                    ("peers", bencode::Value::Bytes(vec![1; 7])),
                ])),
                "multiple of 6",
            ),
        ];
        for (body, needle) in cases {
            match parse_bep3_reply(&body) {
                Err(ReplyError::Invalid(why)) => assert!(why.contains(needle), "{why}"),
                other => panic!("expected invalid for {body:?}, got {other:?}"),
            }
        }
    }
}
