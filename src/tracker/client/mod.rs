//! Client side of the tracker protocols: announcing to a piecemeal JSON tracker or a standard
//! BEP 3 HTTP tracker, with BEP 12 tiers.
//!
//! Protocol detection needs no configuration: a tracker URL is first sent piecemeal's JSON
//! announce (`POST`); when the reply is not a JSON object the same URL is tried as a BEP 3
//! tracker (`GET` with `compact=1`), and the protocol that worked is remembered per URL.

use crate::bencode;
use crate::net::http::{self, HttpError};
use crate::tracker::protocol::{
    AnnounceRequest, AnnounceResponse, Event, JsonAnnounce, JsonReply, PeerAddr, peer_id_from_json,
    peer_id_to_json,
};
use log::{debug, info, warn};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Which protocol a tracker URL speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackerKind {
    /// piecemeal's `POST /announce` with a JSON body.
    Json,
    /// BEP 3 `GET` with a query string and a bencoded reply.
    Bep3,
}

/// Why announcing failed.
#[derive(Debug)]
pub enum AnnounceError {
    /// The torrent lists no tracker.
    NoTrackers,
    /// The tracker answered with a `failure reason`.
    Refused { url: String, reason: String },
    /// The tracker could not be reached or its reply made no sense.
    Failed { url: String, detail: String },
    /// Every tracker of every tier failed; one error per tracker, in the order tried.
    AllFailed(Vec<AnnounceError>),
}

impl fmt::Display for AnnounceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnnounceError::NoTrackers => write!(f, "the torrent lists no tracker"),
            AnnounceError::Refused { url, reason } => {
                write!(f, "tracker {url} refused the announce: {reason}")
            }
            AnnounceError::Failed { url, detail } => write!(f, "tracker {url}: {detail}"),
            AnnounceError::AllFailed(errors) => {
                write!(f, "all {} trackers failed", errors.len())?;
                for error in errors {
                    write!(f, "; {error}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for AnnounceError {}

/// What was wrong with one tracker reply, before the URL is attached.
#[derive(Debug, PartialEq, Eq)]
enum ReplyError {
    /// The tracker said why it refused.
    Failure(String),
    /// The reply is not what the protocol allows.
    Invalid(String),
}

impl ReplyError {
    fn at(self, url: &str) -> AnnounceError {
        let url = url.to_string();
        match self {
            ReplyError::Failure(reason) => AnnounceError::Refused { url, reason },
            ReplyError::Invalid(detail) => AnnounceError::Failed { url, detail },
        }
    }
}

/// Default bound on one tracker exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Announces to a torrent's trackers following BEP 12, detecting each tracker's protocol.
#[derive(Debug)]
pub struct Announcer {
    tiers: Vec<Vec<String>>,
    kinds: HashMap<String, TrackerKind>,
    timeout: Duration,
}

impl Announcer {
    /// Takes the tiers in order (empty tiers are dropped) and shuffles each tier once, as BEP 12
    /// asks, so that clients spread over a tier's trackers.
    pub fn new(tiers: Vec<Vec<String>>) -> Announcer {
        let mut tiers: Vec<Vec<String>> = tiers.into_iter().filter(|t| !t.is_empty()).collect();
        for tier in &mut tiers {
            fastrand::shuffle(tier);
        }
        Announcer {
            tiers,
            kinds: HashMap::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Bounds each exchange with one tracker (connect, and then the whole request).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Fixes the protocol of a tracker URL instead of detecting it.
    pub fn set_kind(&mut self, url: &str, kind: TrackerKind) {
        self.kinds.insert(url.to_string(), kind);
    }

    /// The protocol detected (or set) for a tracker URL so far.
    pub fn kind(&self, url: &str) -> Option<TrackerKind> {
        self.kinds.get(url).copied()
    }

    /// The tiers in their current order of preference.
    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }

    /// Announces to the first tracker that answers, trying each tier's trackers in order and
    /// then the next tier. The tracker that answered moves to the front of its tier.
    pub fn announce(&mut self, req: &AnnounceRequest) -> Result<AnnounceResponse, AnnounceError> {
        let mut errors = Vec::new();
        for tier in 0..self.tiers.len() {
            for position in 0..self.tiers[tier].len() {
                let url = self.tiers[tier][position].clone();
                match self.announce_to(&url, req) {
                    Ok(response) => {
                        let url = self.tiers[tier].remove(position);
                        self.tiers[tier].insert(0, url);
                        return Ok(response);
                    }
                    Err(error) => {
                        // Not a warning: every failure is in the returned error if all fail.
                        info!("{error}");
                        errors.push(error);
                    }
                }
            }
        }
        match errors.len() {
            0 => Err(AnnounceError::NoTrackers),
            1 => Err(errors.remove(0)),
            _ => Err(AnnounceError::AllFailed(errors)),
        }
    }

    /// One tracker: its known protocol, or JSON first with a fallback to BEP 3 when the reply
    /// is not a JSON object.
    fn announce_to(
        &mut self,
        url: &str,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, AnnounceError> {
        let failed = |e: HttpError| AnnounceError::Failed {
            url: url.to_string(),
            detail: e.to_string(),
        };
        if self.kind(url) != Some(TrackerKind::Bep3) {
            let body = serde_json::to_vec(&json_request(req)).unwrap_or_default();
            let reply = http::request(url, "POST", Some(("application/json", &body)), self.timeout);
            let reply = match reply {
                Ok(reply) => Some(reply),
                // Nothing to gain from a second attempt in another protocol.
                Err(
                    e @ (HttpError::Connect { .. }
                    | HttpError::Timeout(_)
                    | HttpError::BadUrl { .. }),
                ) => {
                    return Err(failed(e));
                }
                Err(e) if self.kind(url) == Some(TrackerKind::Json) => return Err(failed(e)),
                Err(e) => {
                    debug!("tracker {url}: JSON announce failed ({e}), trying BEP 3");
                    None
                }
            };
            if let Some(reply) = reply {
                match parse_json_reply(&reply.body) {
                    Some(result) => {
                        self.kinds.insert(url.to_string(), TrackerKind::Json);
                        return result.map_err(|e| e.at(url));
                    }
                    None if self.kind(url) == Some(TrackerKind::Json) => {
                        return Err(AnnounceError::Failed {
                            url: url.to_string(),
                            detail: format!("HTTP {} without a JSON reply", reply.status),
                        });
                    }
                    None => debug!(
                        "tracker {url}: HTTP {} to a JSON announce is not JSON, trying BEP 3",
                        reply.status
                    ),
                }
            }
        }
        let reply =
            http::request(&bep3_url(url, req), "GET", None, self.timeout).map_err(failed)?;
        let result = parse_bep3_reply(&reply.body).map_err(|e| match e {
            ReplyError::Invalid(detail) if reply.status != 200 => AnnounceError::Failed {
                url: url.to_string(),
                detail: format!("HTTP {}: {detail}", reply.status),
            },
            other => other.at(url),
        })?;
        self.kinds.insert(url.to_string(), TrackerKind::Bep3);
        Ok(result)
    }
}

fn json_request(req: &AnnounceRequest) -> JsonAnnounce {
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

/// The BEP 3 announce URL for `req`, keeping any query the tracker URL already has (passkeys).
fn bep3_url(url: &str, req: &AnnounceRequest) -> String {
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

/// Parses a JSON API reply; `None` when the body is not a JSON object (not a JSON tracker).
fn parse_json_reply(body: &[u8]) -> Option<Result<AnnounceResponse, ReplyError>> {
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

/// Parses a bencoded BEP 3 reply: compact (BEP 23) or dictionary peers, plus `peers6` (BEP 7).
fn parse_bep3_reply(body: &[u8]) -> Result<AnnounceResponse, ReplyError> {
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
        Some(bencode::Value::Bytes(compact)) => peers.extend(compact_peers(compact, 6)?),
        Some(bencode::Value::List(list)) => {
            for entry in list {
                peers.extend(dictionary_peer(entry)?);
            }
        }
        Some(_) => return Err(invalid("peers is neither a string nor a list")),
    }
    match field("peers6") {
        None => {}
        Some(bencode::Value::Bytes(compact)) => peers.extend(compact_peers(compact, 18)?),
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

/// Splits compact peers: 4 (IPv4) or 16 (IPv6) address bytes then a big-endian port.
fn compact_peers(data: &[u8], width: usize) -> Result<Vec<PeerAddr>, ReplyError> {
    if !data.len().is_multiple_of(width) {
        return Err(ReplyError::Invalid(format!(
            "compact peer list of {} bytes is not a multiple of {width}",
            data.len()
        )));
    }
    Ok(data
        .chunks_exact(width)
        .map(|chunk| {
            let (ip, port) = chunk.split_at(width - 2);
            let ip = match <[u8; 4]>::try_from(ip) {
                Ok(v4) => IpAddr::from(v4),
                Err(_) => IpAddr::from(<[u8; 16]>::try_from(ip).unwrap_or([0; 16])),
            };
            PeerAddr {
                addr: SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])),
                peer_id: None,
            }
        })
        .collect())
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
    use crate::metainfo::InfoHash;
    use std::collections::BTreeMap;

    fn dict(entries: Vec<(&str, bencode::Value)>) -> bencode::Value {
        bencode::Value::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn request() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash([0xab; 20]),
            peer_id: *b"-PM0001-abcdefghijkl",
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Started,
            numwant: Some(7),
        }
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

    #[test]
    fn tiers_shuffle_within_but_not_across() {
        let tier0: Vec<String> = (0..8).map(|i| format!("http://a{i}/")).collect();
        let tier1 = vec!["http://b/".to_string()];
        let mut orders = std::collections::HashSet::new();
        for _ in 0..20 {
            let announcer = Announcer::new(vec![tier0.clone(), vec![], tier1.clone()]);
            let tiers = announcer.tiers();
            assert_eq!(tiers.len(), 2);
            let mut sorted = tiers[0].clone();
            sorted.sort();
            assert_eq!(sorted, tier0);
            assert_eq!(tiers[1], tier1);
            orders.insert(tiers[0].clone());
        }
        assert!(orders.len() > 1, "tier 0 was never shuffled");
    }

    #[test]
    fn no_trackers_is_an_error() {
        let err = Announcer::new(vec![vec![]])
            .announce(&request())
            .unwrap_err();
        assert!(matches!(err, AnnounceError::NoTrackers));
    }

    #[test]
    fn unsupported_scheme_names_the_tracker() {
        let mut announcer = Announcer::new(vec![
            vec!["udp://t.example:80".into()],
            vec!["https://s.example/a".into()],
        ]);
        let text = announcer.announce(&request()).unwrap_err().to_string();
        assert!(
            text.contains("udp://t.example:80") && text.contains("https://s.example/a"),
            "{text}"
        );
        assert!(text.contains("TLS"), "{text}");
    }
}
