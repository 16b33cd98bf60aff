//! From a request to a reply: the `Host` and token checks, then method and path to a
//! [`Control`] call, with JSON in and out. The table of endpoints is in the README
//! ("Driving a running peer"); errors are `{"error": "..."}` with the status the README gives.

use super::auth::{TOKEN_HEADER, Token, host_allowed};
use super::control::{AddSource, Control, ControlError, Limits};
use super::web;
use crate::net::http::{Request, parse_query};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What every request is checked against before it is routed.
pub(super) struct Gate {
    pub(super) token: Token,
    /// The port when bound to a loopback address (then `Host` must name it), else `None`.
    pub(super) loopback_port: Option<u16>,
}

/// A reply to send.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    pub(super) body: Vec<u8>,
    /// The methods the resource takes (`Allow`, which a 405 must carry).
    pub(super) allow: Option<String>,
}

impl Reply {
    fn json(status: u16, value: &impl Serialize) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply {
                status,
                content_type: "application/json",
                body,
                allow: None,
            },
            Err(e) => Reply::error(500, &format!("cannot encode the reply: {e}")),
        }
    }

    /// `{"error": message}` with `status`.
    pub(super) fn error(status: u16, message: &str) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: serde_json::json!({ "error": message })
                .to_string()
                .into_bytes(),
            allow: None,
        }
    }

    fn ok() -> Reply {
        Reply::json(200, &serde_json::json!({ "ok": true }))
    }
}

/// Answers one request.
pub(super) fn answer(request: &Request, gate: &Gate, control: &dyn Control) -> Reply {
    if let Some(port) = gate.loopback_port
        && !host_allowed(request.header("host"), port)
    {
        return Reply::error(
            403,
            &format!(
                "the Host header must be 127.0.0.1:{port}, localhost:{port} or [::1]:{port} \
                 (this API only answers requests addressed to it by a loopback name)"
            ),
        );
    }
    let path = request.path();
    // The web page's static files need no token: they hold none, and the page asks for it.
    let Some(rest) = path.strip_prefix("/api/") else {
        return match web::asset(path) {
            Some(_) if request.method != "GET" => Reply {
                allow: Some("GET".into()),
                ..Reply::error(405, &format!("{path} takes GET only"))
            },
            Some((content_type, body)) => Reply {
                status: 200,
                content_type,
                body: body.to_vec(),
                allow: None,
            },
            None => Reply::error(404, &format!("no such page: {path}")),
        };
    };
    if !request
        .header(TOKEN_HEADER)
        .is_some_and(|given| gate.token.matches(given))
    {
        return Reply::error(
            401,
            &format!(
                "missing or wrong {TOKEN_HEADER} header (the token is printed at the peer's \
                 first start and kept in DIR/.piecemeal/rpc-token)"
            ),
        );
    }
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match api(request, &segments, control) {
        Ok(reply) => reply,
        Err(e) => Reply {
            allow: e.allowed(),
            ..Reply::error(e.status(), &e.message())
        },
    }
}

/// Why an API request failed.
enum Failure {
    Control(ControlError),
    BadRequest(String),
    NotFound(String),
    Method { allowed: &'static str },
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Failure {
        Failure::Control(e)
    }
}

impl Failure {
    fn status(&self) -> u16 {
        match self {
            Failure::Control(e) => control_status(e),
            Failure::BadRequest(_) => 400,
            Failure::NotFound(_) => 404,
            Failure::Method { .. } => 405,
        }
    }

    /// The `Allow` header of a 405: "GET or POST" becomes "GET, POST".
    fn allowed(&self) -> Option<String> {
        match self {
            Failure::Method { allowed } => Some(allowed.replace(" or ", ", ")),
            _ => None,
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Control(e) => e.to_string(),
            Failure::BadRequest(why) => why.clone(),
            Failure::NotFound(path) => format!("no such API endpoint: {path}"),
            Failure::Method { allowed } => format!("method not allowed here (use {allowed})"),
        }
    }
}

/// The HTTP status of a refused operation.
fn control_status(e: &ControlError) -> u16 {
    match e {
        ControlError::UnknownTorrent(_) => 404,
        ControlError::AmbiguousId(_)
        | ControlError::BadTorrent(_)
        | ControlError::BadMagnet(_)
        | ControlError::BadFile { .. } => 400,
        ControlError::AlreadyAdded(_) | ControlError::NotNow(_) => 409,
        ControlError::Failed(_) => 500,
    }
}

/// Routes `/api/SEGMENTS` by method.
fn api(request: &Request, segments: &[&str], control: &dyn Control) -> Result<Reply, Failure> {
    let method = request.method.as_str();
    let only = |allowed: &'static str| -> Result<(), Failure> {
        if method == allowed {
            Ok(())
        } else {
            Err(Failure::Method { allowed })
        }
    };
    match segments {
        ["session"] => only("GET").map(|()| Reply::json(200, &control.session())),
        ["limits"] => {
            only("PUT")?;
            control.set_limits(limits(request)?)?;
            Ok(Reply::ok())
        }
        ["torrents"] => match method {
            "GET" => Ok(Reply::json(200, &control.list())),
            "POST" => {
                let (source, paused) = add_source(request)?;
                Ok(Reply::json(201, &control.add(source, paused)?))
            }
            _ => Err(Failure::Method {
                allowed: "GET or POST",
            }),
        },
        ["torrents", id] => match method {
            "GET" => Ok(Reply::json(200, &control.detail(id)?)),
            "DELETE" => {
                control.remove(id, flag(request, "delete_data")?)?;
                Ok(Reply::ok())
            }
            _ => Err(Failure::Method {
                allowed: "GET or DELETE",
            }),
        },
        ["torrents", id, action @ ("pause" | "resume" | "verify")] => {
            only("POST")?;
            match *action {
                "pause" => control.pause(id)?,
                "resume" => control.resume(id)?,
                _ => control.verify(id)?,
            }
            Ok(Reply::ok())
        }
        ["torrents", id, "files"] => {
            only("PUT")?;
            let wanted: Vec<usize> = Fields::parse(request, &["wanted"])?.required("wanted")?;
            control.choose_files(id, &wanted)?;
            Ok(Reply::ok())
        }
        ["torrents", id, "limits"] => {
            only("PUT")?;
            control.set_torrent_limits(id, limits(request)?)?;
            Ok(Reply::ok())
        }
        _ => Err(Failure::NotFound(request.path().to_string())),
    }
}

/// What `POST /api/torrents` asks to add: `.torrent` bytes or a JSON magnet link.
fn add_source(request: &Request) -> Result<(AddSource, bool), Failure> {
    let content_type = request
        .header("content-type")
        .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let paused = flag(request, "paused")?;
    match media {
        "application/x-bittorrent" => Ok((AddSource::Torrent(request.body.clone()), paused)),
        "application/json" => {
            let body = Fields::parse(request, &["magnet", "paused"])?;
            let magnet = body.required("magnet")?;
            let paused = body.optional("paused")?.unwrap_or(false) || paused;
            Ok((AddSource::Magnet(magnet), paused))
        }
        _ => Err(Failure::BadRequest(format!(
            "send a .torrent with Content-Type: application/x-bittorrent, or \
             {{\"magnet\": \"magnet:?...\"}} with Content-Type: application/json (got {:?})",
            media
        ))),
    }
}

/// `{"upload": N, "download": N}`.
fn limits(request: &Request) -> Result<Limits, Failure> {
    let body = Fields::parse(request, &["upload", "download"])?;
    Ok(Limits {
        upload: body.required("upload")?,
        download: body.required("download")?,
    })
}

/// A JSON object body read field by field, so that an error names the field at fault.
struct Fields(serde_json::Map<String, Value>);

impl Fields {
    /// The body as an object holding no field but `allowed`.
    fn parse(request: &Request, allowed: &[&str]) -> Result<Fields, Failure> {
        let bad = |why: String| Failure::BadRequest(format!("bad JSON body: {why}"));
        let value: Value = serde_json::from_slice(&request.body).map_err(|e| bad(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(bad(format!(
                "expected an object with {}",
                allowed.join(", ")
            )));
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(format!(
                "unknown field `{unknown}` (expected {})",
                allowed.join(", ")
            )));
        }
        Ok(Fields(map))
    }

    fn required<T: DeserializeOwned>(&self, name: &str) -> Result<T, Failure> {
        self.optional(name)?
            .ok_or_else(|| Failure::BadRequest(format!("bad JSON body: missing field `{name}`")))
    }

    fn optional<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Failure> {
        self.0
            .get(name)
            .map(|value| {
                T::deserialize(value)
                    .map_err(|e| Failure::BadRequest(format!("bad JSON body: field `{name}`: {e}")))
            })
            .transpose()
    }
}

/// A `true`/`false` query parameter (absent is false).
fn flag(request: &Request, name: &str) -> Result<bool, Failure> {
    let pairs = parse_query(request.query())
        .map_err(|e| Failure::BadRequest(format!("bad query string: {e}")))?;
    match pairs.iter().find(|(k, _)| k == name).map(|(_, v)| &v[..]) {
        None | Some(b"false") | Some(b"0") => Ok(false),
        Some(b"true") | Some(b"1") | Some(b"") => Ok(true),
        Some(other) => Err(Failure::BadRequest(format!(
            "query parameter {name} must be true or false, not {:?}",
            String::from_utf8_lossy(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{FakeControl, request};
    use super::*;

    fn gate() -> Gate {
        Gate {
            token: Token::new("secret").unwrap(),
            loopback_port: Some(9091),
        }
    }

    /// Sends `method path` with the right Host and token, and `body` as `content_type`.
    fn call(fake: &FakeControl, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let headers = [
            ("Host", "127.0.0.1:9091"),
            (TOKEN_HEADER, "secret"),
            ("Content-Type", "application/json"),
        ];
        send(fake, &request(method, path, &headers, body))
    }

    fn send(fake: &FakeControl, req: &Request) -> (u16, serde_json::Value) {
        let reply = answer(req, &gate(), fake);
        assert_eq!(reply.content_type, "application/json");
        let value = serde_json::from_slice(&reply.body).expect("JSON reply");
        (reply.status, value)
    }

    #[test]
    fn every_endpoint_reaches_its_control_call() {
        let fake = FakeControl::sample();
        let id = fake.first_id();
        let (status, v) = call(&fake, "GET", "/api/session", b"");
        assert_eq!((status, v["torrents"].as_u64()), (200, Some(2)));
        let (status, v) = call(&fake, "GET", "/api/torrents", b"");
        assert_eq!((status, v[0]["id"].as_str()), (200, Some(&id[..])));
        let (status, v) = call(&fake, "GET", &format!("/api/torrents/{}", &id[..6]), b"");
        assert_eq!((status, v["files"][0]["index"].as_u64()), (200, Some(0)));
        for action in ["pause", "resume", "verify"] {
            let (status, v) = call(&fake, "POST", &format!("/api/torrents/{id}/{action}"), b"");
            assert_eq!(
                (status, v),
                (200, serde_json::json!({"ok": true})),
                "{action}"
            );
        }
        let (status, _) = call(
            &fake,
            "PUT",
            &format!("/api/torrents/{id}/files"),
            br#"{"wanted": [0]}"#,
        );
        assert_eq!(status, 200);
        let limits = br#"{"upload": 5, "download": 7}"#;
        let (status, _) = call(&fake, "PUT", &format!("/api/torrents/{id}/limits"), limits);
        assert_eq!(status, 200);
        let (status, _) = call(&fake, "PUT", "/api/limits", limits);
        assert_eq!(status, 200);
        let (status, v) = call(
            &fake,
            "POST",
            "/api/torrents?paused=true",
            br#"{"magnet": "magnet:?xt=urn:btih:0123456789012345678901234567890123456789"}"#,
        );
        assert_eq!((status, v["status"].as_str()), (201, Some("paused")));
        let (status, _) = call(
            &fake,
            "DELETE",
            &format!("/api/torrents/{id}?delete_data=true"),
            b"",
        );
        assert_eq!(status, 200);
        assert_eq!(
            fake.calls(),
            [
                format!("pause {}", id),
                format!("resume {id}"),
                format!("verify {id}"),
                format!("files {id} [0]"),
                format!("torrent-limits {id} 5/7"),
                "limits 5/7".to_string(),
                "add magnet paused=true".to_string(),
                format!("remove {id} delete_data=true"),
            ]
        );
    }

    #[test]
    fn torrent_bytes_are_added_as_bytes() {
        let fake = FakeControl::default();
        let headers = [
            ("Host", "localhost:9091"),
            (TOKEN_HEADER, "secret"),
            ("Content-Type", "application/x-bittorrent"),
        ];
        let (status, v) = send(
            &fake,
            &request("POST", "/api/torrents", &headers, b"d4:infod"),
        );
        assert_eq!(status, 400, "{v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("not a valid .torrent")
        );
        assert_eq!(fake.calls(), ["add torrent 8 bytes paused=false"]);
    }

    #[test]
    fn control_errors_map_to_their_status() {
        let fake = FakeControl::sample();
        let cases: [(&str, &str, &[u8], u16, &str); 6] = [
            (
                "GET",
                "/api/torrents/ffff",
                b"",
                404,
                "no torrent with id ffff",
            ),
            (
                "POST",
                "/api/torrents/aaaa/pause",
                b"",
                400,
                "matches several",
            ),
            (
                "PUT",
                "/api/torrents/aaaa0/files",
                br#"{"wanted": [9]}"#,
                400,
                "no file 9",
            ),
            (
                "POST",
                "/api/torrents",
                br#"{"magnet": "nope"}"#,
                400,
                "not a valid magnet",
            ),
            (
                "POST",
                "/api/torrents/aaaa1/verify",
                b"",
                409,
                "still checking",
            ),
            (
                "PUT",
                "/api/limits",
                br#"{"upload": 13, "download": 0}"#,
                500,
                "disk",
            ),
        ];
        for (method, path, body, status, needle) in cases {
            let (got, v) = call(&fake, method, path, body);
            let message = v["error"].as_str().unwrap_or_default();
            assert_eq!(got, status, "{method} {path}: {v}");
            assert!(message.contains(needle), "{method} {path}: {message}");
        }
        let dup = br#"{"magnet": "magnet:?xt=urn:btih:aaaa000000000000000000000000000000000000"}"#;
        let (got, v) = call(&fake, "POST", "/api/torrents", dup);
        assert_eq!(got, 409, "{v}");
    }

    #[test]
    fn bad_json_names_the_field_and_changes_nothing() {
        let fake = FakeControl::sample();
        for (path, body, needle) in [
            ("/api/limits", &br#"{"upload": 1}"#[..], "download"),
            ("/api/limits", br#"{"upload": -1, "download": 0}"#, "-1"),
            (
                "/api/limits",
                br#"{"upload": "fast", "download": 0}"#,
                "field `upload`",
            ),
            ("/api/limits", br#"[1, 2]"#, "expected an object"),
            (
                "/api/torrents/aaaa0/files",
                br#"{"wanted": "all"}"#,
                "sequence",
            ),
            ("/api/torrents/aaaa0/limits", b"{not json", "key"),
        ] {
            let (status, v) = call(&fake, "PUT", path, body);
            let message = v["error"].as_str().unwrap();
            assert_eq!(status, 400, "{path}: {message}");
            assert!(message.starts_with("bad JSON body"), "{message}");
            assert!(message.contains(needle), "{message}");
        }
        let (status, v) = call(&fake, "POST", "/api/torrents", br#"{"magnt": "x"}"#);
        assert_eq!(status, 400);
        assert!(v["error"].as_str().unwrap().contains("magnt"), "{v}");
        let (status, _) = call(
            &fake,
            "DELETE",
            "/api/torrents/aaaa0?delete_data=maybe",
            b"",
        );
        assert_eq!(status, 400);
        assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    }

    #[test]
    fn unknown_paths_and_methods() {
        let fake = FakeControl::sample();
        for (method, path, status) in [
            ("GET", "/api/nothing", 404),
            ("GET", "/api/torrents/aaaa0/pause/x", 404),
            ("GET", "/index.htm", 404),
            ("GET", "/app.json", 404),
            ("POST", "/", 405),
            ("DELETE", "/api/session", 405),
            ("GET", "/api/torrents/aaaa0/pause", 405),
            ("PUT", "/api/torrents", 405),
            ("POST", "/api/torrents/aaaa0", 405),
            ("GET", "/api/limits", 405),
        ] {
            let (got, v) = call(&fake, method, path, b"");
            assert_eq!(got, status, "{method} {path}: {v}");
            assert!(v["error"].is_string());
        }
        // A 405 says what the resource takes (RFC 9110: Allow is required there).
        for (method, path, allow) in [
            ("POST", "/", "GET"),
            ("PUT", "/api/torrents", "GET, POST"),
            ("POST", "/api/torrents/aaaa0", "GET, DELETE"),
            ("GET", "/api/limits", "PUT"),
        ] {
            let headers = [("Host", "127.0.0.1:9091"), (TOKEN_HEADER, "secret")];
            let reply = answer(&request(method, path, &headers, b""), &gate(), &fake);
            assert_eq!(reply.allow.as_deref(), Some(allow), "{method} {path}");
        }
        let headers = [("Host", "127.0.0.1:9091"), (TOKEN_HEADER, "secret")];
        let found = answer(
            &request("GET", "/api/session", &headers, b""),
            &gate(),
            &fake,
        );
        assert_eq!(found.allow, None);
        let (status, v) = call(&fake, "POST", "/api/torrents", b"x");
        assert_eq!(status, 400);
        assert!(v["error"].as_str().unwrap().starts_with("bad JSON body"));
        let plain = request(
            "POST",
            "/api/torrents",
            &[("Host", "[::1]:9091"), (TOKEN_HEADER, "secret")],
            b"x",
        );
        let (status, v) = send(&fake, &plain);
        assert_eq!(status, 400);
        assert!(v["error"].as_str().unwrap().contains("x-bittorrent"), "{v}");
    }

    #[test]
    fn the_web_page_needs_no_token_but_the_right_host() {
        let fake = FakeControl::sample();
        for (path, content_type) in [
            ("/", "text/html; charset=utf-8"),
            ("/app.js", "text/javascript; charset=utf-8"),
            ("/style.css", "text/css; charset=utf-8"),
        ] {
            let req = request("GET", path, &[("Host", "localhost:9091")], b"");
            let reply = answer(&req, &gate(), &fake);
            assert_eq!(
                (reply.status, reply.content_type),
                (200, content_type),
                "{path}"
            );
            assert_eq!(reply.body, web::asset(path).unwrap().1);
            let rebound = request("GET", path, &[("Host", "evil.example:9091")], b"");
            assert_eq!(answer(&rebound, &gate(), &fake).status, 403, "{path}");
        }
        assert!(fake.calls().is_empty());
    }

    #[test]
    fn token_and_host_are_checked_first() {
        let fake = FakeControl::sample();
        for headers in [
            &[("Host", "127.0.0.1:9091")][..],
            &[("Host", "127.0.0.1:9091"), (TOKEN_HEADER, "secreT")],
            &[("Host", "127.0.0.1:9091"), (TOKEN_HEADER, "")],
            &[
                ("Host", "127.0.0.1:9091"),
                ("Cookie", "X-Piecemeal-Token=secret"),
            ],
        ] {
            for (method, path) in [
                ("GET", "/api/torrents"),
                ("POST", "/api/torrents/aaaa0/pause"),
            ] {
                let (status, v) = send(&fake, &request(method, path, headers, b""));
                assert_eq!(status, 401, "{headers:?} {method} {path}");
                assert!(v["error"].as_str().unwrap().contains(TOKEN_HEADER));
            }
        }
        for host in [&[("Host", "evil.example:9091")][..], &[]] {
            let mut headers = host.to_vec();
            headers.push((TOKEN_HEADER, "secret"));
            let (status, v) = send(&fake, &request("GET", "/api/torrents", &headers, b""));
            assert_eq!(status, 403, "{v}");
        }
        assert!(fake.calls().is_empty());
        // Bound to another address, any Host is fine (the token still guards the API).
        let open = Gate {
            token: Token::new("secret").unwrap(),
            loopback_port: None,
        };
        let req = request(
            "GET",
            "/api/session",
            &[("Host", "nas.lan:9091"), (TOKEN_HEADER, "secret")],
            b"",
        );
        assert_eq!(answer(&req, &open, &fake).status, 200);
    }
}
