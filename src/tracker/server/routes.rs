//! Routing: which handler answers which method and path, and the reply each handler builds,
//! JSON for the JSON API and bencoded for the BEP 3 endpoints.

use super::access_list::AccessList;
use super::bep3::bep3_announce;
use super::json_api::json_announce;
use super::lifecycle::TrackerConfig;
use super::params::Origin;
use super::scrape::scrape;
pub(super) use super::service::Service;
use super::status_page::{stats_html, stats_json};
use crate::bencode::{self, Value};
use crate::net::http::Request;
use std::net::IpAddr;
use std::time::Instant;

/// An HTTP reply before it is written.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    pub(super) body: Vec<u8>,
    /// Why the request was refused, for the log.
    pub(super) failure: Option<String>,
}

impl Reply {
    /// A JSON body with `status`.
    pub(super) fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body,
            failure: None,
        }
    }

    /// A JSON refusal: `{"failure reason": reason}` with `status`.
    pub(super) fn json_failure(status: u16, reason: &str) -> Reply {
        Reply {
            failure: Some(reason.to_string()),
            ..Reply::json(status, json_failure(reason))
        }
    }

    /// A bencoded body, always with status 200 as BEP 3 clients expect.
    pub(super) fn bencoded(value: &Value) -> Reply {
        Reply {
            status: 200,
            content_type: "text/plain",
            body: bencode::encode(value),
            failure: None,
        }
    }

    /// A bencoded refusal: `failure reason` in a dictionary, with status 200.
    pub(super) fn bencoded_failure(reason: &str) -> Reply {
        Reply {
            failure: Some(reason.to_string()),
            ..Reply::bencoded(&dict([("failure reason", bytes(reason.as_bytes()))]))
        }
    }
}

/// The JSON API's error body, `{"failure reason": reason}`.
pub(super) fn json_failure(reason: &str) -> Vec<u8> {
    serde_json::json!({ "failure reason": reason })
        .to_string()
        .into_bytes()
}

/// Sends a request to the handler for its method and path; `remote` is the address the request
/// came from and `now` the time of the announce.
pub(super) fn route(request: &Request, remote: IpAddr, service: &Service, now: Instant) -> Reply {
    let origin = || Origin::of(request, remote, service);
    match (request.method.as_str(), request.path()) {
        ("POST", "/announce") => json_announce(&request.body, &origin(), service, now),
        ("GET", "/announce") => match bep3_announce(request.query(), &origin(), service, now) {
            Ok(reply) => reply,
            Err(reason) => Reply::bencoded_failure(&reason),
        },
        ("GET", "/scrape") => match scrape(request.query(), service) {
            Ok(reply) => reply,
            Err(reason) => Reply::bencoded_failure(&reason),
        },
        ("GET", "/stats") if wants_html(request) => stats_html(service, now),
        ("GET", "/stats") => stats_json(service, now),
        ("GET", "/stats.html") => stats_html(service, now),
        (method, path @ ("/announce" | "/scrape" | "/stats" | "/stats.html")) => {
            Reply::json_failure(405, &format!("{method} is not allowed on {path}"))
        }
        (_, path) => Reply::json_failure(
            404,
            &format!(
                "no endpoint {path}; use POST /announce, GET /announce, GET /scrape or GET /stats"
            ),
        ),
    }
}

/// Whether a browser asks: `Accept` names `text/html` (curl and scripts send `*/*`).
fn wants_html(request: &Request) -> bool {
    request
        .header("accept")
        .is_some_and(|v| v.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

/// Answers `request` from `remote` as a freshly started tracker with default settings would
/// (for the fuzzer, which needs each input to be replayable on its own): the status and body.
#[doc(hidden)]
pub fn answer_fresh(request: &Request, remote: IpAddr) -> (u16, Vec<u8>) {
    let service = Service::new(&TrackerConfig::default(), AccessList::open());
    let reply = route(request, remote, &service, Instant::now());
    (reply.status, reply.body)
}

/// A bencoded dictionary from text keys.
pub(super) fn dict<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

/// A bencoded byte string.
pub(super) fn bytes(data: &[u8]) -> Value {
    Value::Bytes(data.to_vec())
}

/// A bencoded integer; counts past `i64::MAX` are clamped.
pub(super) fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::server::testing::{announce_target, field, get, service};

    #[test]
    fn bep3_errors_are_bencoded_failure_reasons() {
        let service = service();
        let remote = IpAddr::from([127, 0, 0, 1]);
        let cases = [
            ("/announce?peer_id=x", "missing info_hash"),
            (
                "/announce?info_hash=abc&peer_id=x",
                "info_hash must be 20 bytes",
            ),
            (&announce_target(1, 0, "")[..], "port must be"),
            (&announce_target(1, 1, "&event=paused")[..], "event must be"),
            (&announce_target(1, 1, "&numwant=-3")[..], "numwant"),
            ("/announce?info_hash=%zz", "percent"),
            ("/scrape", "at least one info_hash"),
            ("/scrape?info_hash=short", "20 bytes"),
        ];
        for (target, needle) in cases {
            let reply = get(&service, target, remote);
            let reason = field(&reply, "failure reason")
                .and_then(Value::as_str)
                .unwrap_or_default();
            assert!(
                reason.contains(needle),
                "{target}: {reason:?} lacks {needle:?}"
            );
        }
        assert_eq!(service.swarms.torrent_count(), 0);
    }
}
