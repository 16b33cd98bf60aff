//! The JSON API of a running peer (`piecemeal peer --rpc`) and `piecemeal remote`, against the
//! real binary: every call, the token and Host checks, bad input that changes nothing, and
//! torrents added at run time that download from a seeder.

mod support;

use piecemeal::net::http;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{Proc, assert_one_error_line, assert_same_tree, noise_torrent, peer, run_bounded};

const TOKEN_HEADER: &str = "X-Piecemeal-Token";

/// A peer's API: where it listens and its token.
struct Api {
    addr: SocketAddr,
    token: String,
}

impl Api {
    /// `method path` with the token; returns the status and the JSON reply.
    fn call(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> (u16, Value) {
        self.call_as(&self.token, method, path, body)
    }

    fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> (u16, Value) {
        let headers: &[(&str, &str)] = if token.is_empty() {
            &[]
        } else {
            &[(TOKEN_HEADER, token)]
        };
        let reply = http::request_with_headers(
            &format!("http://{}{path}", self.addr),
            method,
            headers,
            body,
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let value = serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: not JSON ({e}): {:?}",
                String::from_utf8_lossy(&reply.body)
            )
        });
        (reply.status, value)
    }

    fn get(&self, path: &str) -> Value {
        let (status, value) = self.call("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {value}");
        value
    }

    fn json(&self, method: &str, path: &str, value: Value) -> (u16, Value) {
        let body = value.to_string().into_bytes();
        self.call(method, path, Some(("application/json", &body)))
    }

    /// Polls torrent `id` until `done` holds for its detail; panics with the last one and the
    /// logs of `procs` after `timeout`.
    fn wait_torrent(
        &self,
        id: &str,
        timeout: Duration,
        what: &str,
        procs: &[&Proc],
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let detail = self.get(&format!("/api/torrents/{id}"));
            if done(&detail) {
                return detail;
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = procs.iter().map(|p| p.stderr()).collect();
                panic!(
                    "{what}: not within {timeout:?}: {detail}\nlogs:\n{}",
                    logs.join("\n----\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Starts a peer with the API on a free loopback port; returns it, its API, and whether it
/// printed a newly made token.
fn rpc_peer(dir: &Path, extra: &[&str]) -> (Proc, Api, bool) {
    let mut args = vec!["--rpc", "127.0.0.1:0", "--no-dht"];
    args.extend(extra);
    let mut p = peer(dir, &[], &args);
    let line = p.wait_for("rpc listening on http://", Duration::from_secs(20));
    let addr = line
        .trim_start_matches("rpc listening on http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let printed = p.seen.iter().any(|l| l.starts_with("rpc token "));
    let token = match extra.iter().position(|a| *a == "--rpc-token") {
        Some(i) => extra[i + 1].to_string(),
        None => std::fs::read_to_string(dir.join(".piecemeal/rpc-token"))
            .unwrap()
            .trim()
            .to_string(),
    };
    (p, Api { addr, token }, printed)
}

/// Sends a request with the given `Host` header over a raw socket; returns the status.
fn status_with_host(addr: SocketAddr, host: &str, token: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request =
        format!("GET /api/torrents HTTP/1.1\r\nHost: {host}\r\n{TOKEN_HEADER}: {token}\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(
        reply.contains(r#"{"error":"#) || reply.contains("HTTP/1.1 200"),
        "{reply}"
    );
    reply[9..12].parse().unwrap()
}

/// A seeder of a fresh 3 MiB torrent and a tracker; returns (work dir, tracker, seeder,
/// torrent path, tracker URL).
fn swarm(name: &str) -> (tempfile::TempDir, Proc, Proc, PathBuf, String) {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), name, 3 * 1024 * 1024 + 777, 64 * 1024);
    let (tracker, url) = support::tracker();
    let mut seeder = peer(
        &work.path().join("seed"),
        &[&torrent],
        &["--tracker", &url, "--no-dht"],
    );
    seeder.wait_for("seeding ", Duration::from_secs(30));
    (work, tracker, seeder, torrent, url)
}

#[test]
fn every_api_call_with_bad_input_changing_nothing() {
    let (work, _tracker, seeder, torrent, url) = swarm("api");
    let dir = work.path().join("client");
    let (mut client, api, printed) = rpc_peer(&dir, &["--tracker", &url]);
    assert!(
        printed,
        "the first start prints the token: {:?}",
        client.seen
    );

    let session = api.get("/api/session");
    assert_eq!(session["torrents"], 0, "{session}");
    assert!(session["version"].is_string() && session["listen"].is_string());
    assert_eq!(api.get("/api/torrents"), json!([]));

    // No token, a wrong one, a bad Host: refused, reads and writes alike.
    let bytes = std::fs::read(&torrent).unwrap();
    let upload = Some(("application/x-bittorrent", &bytes[..]));
    for token in ["", "wrong", &api.token[..api.token.len() - 1]] {
        for (method, path, body) in [
            ("GET", "/api/torrents", None),
            ("GET", "/api/session", None),
            ("POST", "/api/torrents", upload),
            (
                "PUT",
                "/api/limits",
                Some(("application/json", &br#"{"upload":1,"download":1}"#[..])),
            ),
        ] {
            let (status, v) = api.call_as(token, method, path, body);
            assert_eq!(status, 401, "{method} {path} with {token:?}: {v}");
            assert!(v["error"].as_str().unwrap().contains(TOKEN_HEADER), "{v}");
        }
    }
    let port = api.addr.port();
    assert_eq!(
        status_with_host(api.addr, &format!("evil.example:{port}"), &api.token),
        403
    );
    assert_eq!(
        status_with_host(api.addr, &format!("localhost:{port}"), &api.token),
        200
    );

    // Bad input: a clear error, and the session as it was.
    let cases: Vec<(&str, String, Option<(&str, Vec<u8>)>, u16, &str)> = vec![
        (
            "POST",
            "/api/torrents".into(),
            Some((
                "application/x-bittorrent",
                bytes[..bytes.len() / 2].to_vec(),
            )),
            400,
            "torrent",
        ),
        (
            "POST",
            "/api/torrents".into(),
            Some(("application/x-bittorrent", b"not bencode".to_vec())),
            400,
            "torrent",
        ),
        (
            "POST",
            "/api/torrents".into(),
            Some((
                "application/json",
                br#"{"magnet": "magnet:?xt=urn:btih:nothex"}"#.to_vec(),
            )),
            400,
            "magnet",
        ),
        (
            "POST",
            "/api/torrents".into(),
            Some(("application/json", br#"{"magnet": "http://x"}"#.to_vec())),
            400,
            "magnet",
        ),
        (
            "POST",
            "/api/torrents".into(),
            Some(("application/json", br#"{"magnet": 5}"#.to_vec())),
            400,
            "magnet",
        ),
        (
            "GET",
            "/api/torrents/abcdef12".into(),
            None,
            404,
            "abcdef12",
        ),
        (
            "POST",
            "/api/torrents/abcdef12/pause".into(),
            None,
            404,
            "abcdef12",
        ),
        (
            "DELETE",
            "/api/torrents/abcdef12".into(),
            None,
            404,
            "abcdef12",
        ),
        (
            "PUT",
            "/api/torrents/abcdef12/files".into(),
            Some(("application/json", br#"{"wanted": [0]}"#.to_vec())),
            404,
            "abcdef12",
        ),
        (
            "PUT",
            "/api/limits".into(),
            Some(("application/json", br#"{"upload": "fast"}"#.to_vec())),
            400,
            "upload",
        ),
        ("GET", "/api/nothing".into(), None, 404, "/api/nothing"),
        ("DELETE", "/api/torrents".into(), None, 405, "GET or POST"),
    ];
    for (method, path, body, status, needle) in &cases {
        let body = body.as_ref().map(|(t, b)| (*t, &b[..]));
        let (got, v) = api.call(method, path, body);
        let message = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: {v}"));
        assert_eq!(got, *status, "{method} {path}: {message}");
        assert!(
            message.contains(needle),
            "{method} {path}: {message:?} lacks {needle:?}"
        );
        assert_eq!(api.get("/api/torrents"), json!([]), "after {method} {path}");
    }

    // Add the .torrent, see it reach 100% from the seeder.
    let (status, added) = api.call("POST", "/api/torrents", upload);
    assert_eq!(status, 201, "{added}");
    let id = added["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 40);
    assert_eq!(added["name"], "api");
    let (status, v) = api.call("POST", "/api/torrents", upload);
    assert_eq!(status, 409, "added twice: {v}");
    let short = &id[..6];
    let done = api.wait_torrent(
        short,
        Duration::from_secs(60),
        "download",
        &[&client, &seeder],
        |d| d["progress"] == 1.0 && d["status"] == "seeding",
    );
    assert_same_tree(&work.path().join("seed"), &dir);
    assert_eq!(done["files"].as_array().unwrap().len(), 2, "{done}");
    assert_eq!(done["piece_count"], 49);
    assert!(done["magnet"].as_str().unwrap().contains(&id));
    assert_eq!(done["size"], 3 * 1024 * 1024 + 777);
    let list = api.get("/api/torrents");
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());

    // Pause, resume, verify, files, limits.
    let ok = json!({"ok": true});
    assert_eq!(
        api.call("POST", &format!("/api/torrents/{short}/pause"), None),
        (200, ok.clone())
    );
    api.wait_torrent(
        short,
        Duration::from_secs(20),
        "pause",
        &[&client, &seeder],
        |d| d["status"] == "paused" && d["peer_list"] == json!([]),
    );
    assert_eq!(
        api.call("POST", &format!("/api/torrents/{short}/resume"), None),
        (200, ok.clone())
    );
    api.wait_torrent(
        short,
        Duration::from_secs(30),
        "resume",
        &[&client, &seeder],
        |d| d["status"] == "seeding",
    );
    assert_eq!(
        api.call("POST", &format!("/api/torrents/{short}/verify"), None),
        (200, ok.clone())
    );
    api.wait_torrent(
        short,
        Duration::from_secs(30),
        "verify",
        &[&client, &seeder],
        |d| d["status"] == "seeding" && d["progress"] == 1.0,
    );
    assert_eq!(
        api.json(
            "PUT",
            &format!("/api/torrents/{short}/files"),
            json!({"wanted": [1]})
        ),
        (200, ok.clone())
    );
    let detail = api.get(&format!("/api/torrents/{short}"));
    let wanted: Vec<&Value> = detail["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["wanted"])
        .collect();
    assert_eq!(wanted, [&json!(false), &json!(true)], "{detail}");
    let (status, v) = api.json(
        "PUT",
        &format!("/api/torrents/{short}/files"),
        json!({"wanted": [2]}),
    );
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("no file 2"), "{v}");
    let limits = json!({"upload": 1024, "download": 2048});
    assert_eq!(
        api.json(
            "PUT",
            &format!("/api/torrents/{short}/limits"),
            limits.clone()
        ),
        (200, ok.clone())
    );
    assert_eq!(api.get(&format!("/api/torrents/{short}"))["limits"], limits);
    let global = json!({"upload": 0, "download": 4096});
    assert_eq!(
        api.json("PUT", "/api/limits", global.clone()),
        (200, ok.clone())
    );
    assert_eq!(api.get("/api/session")["limits"], global);
    assert_eq!(
        api.json("PUT", "/api/limits", json!({"upload": 0, "download": 0}))
            .0,
        200
    );

    // Remove without, then with, its data.
    assert_eq!(
        api.call("DELETE", &format!("/api/torrents/{short}"), None),
        (200, ok.clone())
    );
    assert_eq!(api.get("/api/torrents"), json!([]));
    assert!(dir.join("api/a.bin").exists(), "data kept");
    let (status, v) = api.call("POST", "/api/torrents?paused=true", upload);
    assert_eq!((status, v["status"].as_str()), (201, Some("paused")), "{v}");
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/api/torrents/{short}?delete_data=true"),
            None
        ),
        (200, ok)
    );
    // The files go once the torrent's threads have let go of them.
    let deadline = Instant::now() + Duration::from_secs(20);
    while dir.join("api/a.bin").exists() || dir.join("api/deep/b.bin").exists() {
        assert!(Instant::now() < deadline, "data not deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(api.get("/api/torrents"), json!([]));
    assert!(work.path().join("seed/api/a.bin").exists());

    // The same torrent again, as a magnet link naming the tracker: metadata, then the data.
    let magnet = format!(
        "magnet:?xt=urn:btih:{id}&dn=api&tr={}",
        piecemeal::net::http::percent_encode(url.as_bytes())
    );
    let (status, v) = api.json("POST", "/api/torrents", json!({ "magnet": magnet }));
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["id"], id.as_str());
    api.wait_torrent(
        &id,
        Duration::from_secs(60),
        "magnet download",
        &[&client, &seeder],
        |d| d["progress"] == 1.0 && d["status"] == "seeding",
    );
    assert_same_tree(&work.path().join("seed"), &dir);
    assert!(
        client.child.try_wait().unwrap().is_none(),
        "still running: {}",
        client.stderr()
    );
}

#[test]
fn the_token_is_made_once_and_a_public_address_needs_one() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("p");
    let (mut first, api, printed) = rpc_peer(&dir, &[]);
    assert!(printed);
    let path = dir.join(".piecemeal/rpc-token");
    let line = first
        .seen
        .iter()
        .find(|l| l.starts_with("rpc token "))
        .unwrap()
        .clone();
    assert_eq!(
        line,
        format!("rpc token {} (saved in {})", api.token, path.display())
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    first.terminate();
    let (second, again, printed) = rpc_peer(&dir, &[]);
    assert!(!printed, "printed once only: {:?}", second.seen);
    assert_eq!(again.token, api.token);
    assert_eq!(again.call("GET", "/api/session", None).0, 200);
    drop(second);
    // A token flag wins over the file.
    let (_third, flagged, _) = rpc_peer(&dir, &["--rpc-token", "sesame"]);
    assert_eq!(flagged.call("GET", "/api/session", None).0, 200);
    assert_eq!(
        flagged.call_as(&api.token, "GET", "/api/session", None).0,
        401
    );

    // Another address without a token: refused before anything listens.
    let fresh = work.path().join("fresh");
    let (code, _, err) = run_bounded(
        &[
            "peer",
            "--dir",
            fresh.to_str().unwrap(),
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--rpc",
            "0.0.0.0:0",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(code, 1, "{err}");
    assert_one_error_line(&err, &["non-loopback", "--rpc-token"]);
    assert!(!fresh.join(".piecemeal/rpc-token").exists());
}

/// Runs `piecemeal remote ARGS` against `api`; returns (exit code, stdout, stderr).
fn remote(api: &Api, args: &[&str]) -> (i32, String, String) {
    let addr = api.addr.to_string();
    let mut all = vec!["remote", "--rpc", &addr, "--token", &api.token];
    all.extend(args);
    run_bounded(&all, Duration::from_secs(30))
}

#[test]
fn remote_command_drives_the_peer() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "rem", 300 * 1024, 16 * 1024);
    let dir = work.path().join("client");
    let (_tracker, url) = support::tracker();
    let (client, api, _) = rpc_peer(&dir, &["--tracker", &url]);

    let (code, out, err) = remote(&api, &["list"]);
    assert_eq!((code, out.as_str()), (0, "no torrents\n"), "{err}");
    let (code, out, err) = remote(&api, &["add", torrent.to_str().unwrap(), "--paused"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("added ") && out.trim_end().ends_with(" rem (paused)"),
        "{out}"
    );
    let id = out.split(' ').nth(1).unwrap().to_string();

    let (code, out, _) = remote(&api, &["list"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("STATUS") && lines[0].contains("ETA"));
    assert!(
        lines[1].starts_with(&id[..8]) && lines[1].contains("rem") && lines[1].contains("paused"),
        "{out}"
    );
    // Columns line up: every header starts where its cells do (left-aligned ones).
    assert_eq!(lines[0].find("NAME"), lines[1].find("rem"), "{out}");

    let (code, out, _) = remote(&api, &["--json", "list"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "paused");

    let short = &id[..6];
    assert_eq!(
        remote(&api, &["resume", short]).1,
        format!("resumed {short}\n")
    );
    api.wait_torrent(short, Duration::from_secs(20), "resume", &[&client], |d| {
        d["status"] != "paused"
    });
    assert_eq!(
        remote(&api, &["pause", short]).1,
        format!("paused {short}\n")
    );
    api.wait_torrent(short, Duration::from_secs(20), "pause", &[&client], |d| {
        d["status"] == "paused"
    });

    let (code, out, err) = remote(&api, &["files", short, "--only", "*b.bin"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("no") && out.contains("yes") && out.contains("rem/deep/b.bin"),
        "{out}"
    );
    let detail = api.get(&format!("/api/torrents/{short}"));
    assert_eq!(detail["files"][0]["wanted"], false, "{detail}");
    assert_eq!(detail["files"][1]["wanted"], true, "{detail}");

    let (code, out, _) = remote(&api, &["limit", "--down", "2M"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "every torrent: upload unlimited, download 2.0 MiB/s\n")
    );
    assert_eq!(
        api.get("/api/session")["limits"]["download"],
        2 * 1024 * 1024
    );
    let (code, out, _) = remote(&api, &["limit", short, "--up", "500k"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("upload 500.0 KiB/s, download unlimited"),
        "{out}"
    );
    let (code, out, _) = remote(&api, &["show", short]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&id) && out.contains("files") && out.contains("magnet:?xt=urn:btih:"),
        "{out}"
    );

    // Errors: the API's message on one line, exit 1.
    let (code, _, err) = remote(&api, &["pause", "ffff"]);
    assert_eq!(code, 1);
    assert_one_error_line(&err, &["no torrent with id ffff"]);
    let broken = work.path().join("broken.torrent");
    std::fs::write(&broken, b"d4:infoi3ee").unwrap();
    let (code, _, err) = remote(&api, &["add", broken.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_one_error_line(&err, &["not a valid .torrent"]);
    let wrong = Api {
        addr: api.addr,
        token: "nope".into(),
    };
    let (code, _, err) = remote(&wrong, &["list"]);
    assert_eq!(code, 1);
    assert_one_error_line(&err, &[TOKEN_HEADER]);
    let closed = Api {
        addr: format!("127.0.0.1:{}", support::closed_port())
            .parse()
            .unwrap(),
        token: "x".into(),
    };
    let (code, _, err) = remote(&closed, &["list"]);
    assert_eq!(code, 1);
    assert_one_error_line(&err, &["cannot reach", "refused"]);
    let (code, _, err) = run_bounded(
        &["remote", "--rpc", &api.addr.to_string(), "list"],
        Duration::from_secs(20),
    );
    assert_eq!(code, 1);
    assert_one_error_line(&err, &["no API token"]);
    // --dir reads the peer's token file.
    let (code, out, err) = run_bounded(
        &[
            "remote",
            "--rpc",
            &api.addr.to_string(),
            "--dir",
            dir.to_str().unwrap(),
            "remove",
            short,
        ],
        Duration::from_secs(20),
    );
    assert_eq!((code, out), (0, format!("removed {short}\n")), "{err}");
    assert_eq!(api.get("/api/torrents"), json!([]));
}
