//! Client side of the tracker protocols: announcing to a piecemeal JSON tracker, a standard
//! BEP 3 HTTP tracker or a UDP tracker (BEP 15, `udp://` URLs), with BEP 12 tiers.
//!
//! Protocol detection needs no configuration: a tracker URL is first sent piecemeal's JSON
//! announce (`POST`); when the reply is not a JSON object the same URL is tried as a BEP 3
//! tracker (`GET` with `compact=1`), and the protocol that worked is remembered per URL.
//!
//! This file holds the announcer (tiers, detection, errors); `json.rs` and `bep3.rs` each build
//! one protocol's request and read its reply, and `udp.rs` runs BEP 15's exchanges.

use crate::net::http::{self, HttpError};
use crate::tracker::protocol::{AnnounceRequest, AnnounceResponse};
use bep3::{bep3_url, parse_bep3_reply};
use json::{json_request, parse_json_reply};
use log::{debug, info};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use udp::UdpTrackers;

mod bep3;
mod json;
pub mod status;
mod udp;

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

/// Reads a tracker's reply body as the client does, as JSON and as BEP 3 (for the fuzzer):
/// whether either reading understood it (as peers or as a refusal).
#[doc(hidden)]
pub fn parse_reply_body(body: &[u8]) -> bool {
    let understood = |r: &Result<_, _>| !matches!(r, Err(ReplyError::Invalid(_)));
    let json = parse_json_reply(body).is_some_and(|r| understood(&r));
    understood(&parse_bep3_reply(body)) || json
}

/// Default bound on one tracker exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Announces to a torrent's trackers following BEP 12, detecting each tracker's protocol.
#[derive(Debug)]
pub struct Announcer {
    tiers: Vec<Vec<String>>,
    kinds: HashMap<String, TrackerKind>,
    timeout: Duration,
    /// Bound on one UDP tracker exchange: BEP 15's retransmission schedule unless set shorter.
    udp_timeout: Duration,
    udp: UdpTrackers,
    /// Each tracker's last outcome, for display.
    status: Arc<status::TrackerStatus>,
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
            status: Arc::new(status::TrackerStatus::new(&tiers)),
            tiers,
            kinds: HashMap::new(),
            timeout: DEFAULT_TIMEOUT,
            udp_timeout: udp::SCHEDULE,
            udp: UdpTrackers::new(),
        }
    }

    /// Bounds each exchange with one tracker (connect, and then the whole request; for a UDP
    /// tracker, every retransmission of BEP 15's schedule).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        self.udp_timeout = timeout;
    }

    /// Fixes the protocol of a tracker URL instead of detecting it.
    pub fn set_kind(&mut self, url: &str, kind: TrackerKind) {
        self.kinds.insert(url.to_string(), kind);
    }

    /// The protocol detected (or set) for a tracker URL so far.
    pub fn kind(&self, url: &str) -> Option<TrackerKind> {
        self.kinds.get(url).copied()
    }

    /// Each tracker's last outcome, shared with whoever shows it.
    pub fn status(&self) -> Arc<status::TrackerStatus> {
        self.status.clone()
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
                        self.status.replied(&url, response.peers.len());
                        let url = self.tiers[tier].remove(position);
                        self.tiers[tier].insert(0, url);
                        return Ok(response);
                    }
                    Err(error) => {
                        // Not a warning: every failure is in the returned error if all fail.
                        info!("{error}");
                        self.status.failed(&url, error.to_string());
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

    /// One tracker: UDP for `udp://` URLs, else its known protocol, or JSON first with a
    /// fallback to BEP 3 when the reply is not a JSON object.
    fn announce_to(
        &mut self,
        url: &str,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, AnnounceError> {
        if udp::is_udp(url) {
            return self
                .udp
                .announce(url, req, self.udp_timeout)
                .map_err(|e| e.at(url));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::InfoHash;
    use crate::tracker::protocol::Event;

    /// An announce with every field set, for the tests of both protocols.
    pub(super) fn request() -> AnnounceRequest {
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
            vec!["ftp://t.example:80".into()],
            vec!["https://s.example/a".into()],
        ]);
        let text = announcer.announce(&request()).unwrap_err().to_string();
        assert!(
            text.contains("ftp://t.example:80") && text.contains("https://s.example/a"),
            "{text}"
        );
        assert!(text.contains("TLS"), "{text}");
    }
}
