//! The tracker server over real loopback sockets, and the announce client against it.

use piecemeal::bencode::{self, Value};
use piecemeal::metainfo::InfoHash;
use piecemeal::net::http::{self, Limits};
use piecemeal::tracker::client::{AnnounceError, Announcer, TrackerKind};
use piecemeal::tracker::protocol::{AnnounceRequest, Event, generate_peer_id};
use piecemeal::tracker::server::{self as tracker, TrackerConfig, TrackerError, TrackerHandle};
use serde_json::{Value as Json, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

fn start(config: TrackerConfig) -> TrackerHandle {
    tracker::start(TrackerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..config
    })
    .expect("tracker starts")
}

fn start_default() -> TrackerHandle {
    start(TrackerConfig::default())
}

fn announce_url(tracker: &TrackerHandle) -> String {
    format!("http://{}/announce", tracker.local_addr())
}

/// POSTs a JSON body and returns (status, parsed JSON reply).
fn post_json(tracker: &TrackerHandle, path: &str, body: &[u8]) -> (u16, Json) {
    let url = format!("http://{}{path}", tracker.local_addr());
    let reply = http::request(&url, "POST", Some(("application/json", body)), TIMEOUT).unwrap();
    let json = serde_json::from_slice(&reply.body).expect("JSON reply");
    (reply.status, json)
}

fn json_announce(tracker: &TrackerHandle, peer_id: &str, port: u16, event: &str) -> Json {
    let body = json!({
        "info_hash": "aa".repeat(20), "peer_id": peer_id, "port": port,
        "uploaded": 0, "downloaded": 0, "left": 10, "event": event,
    });
    let (status, reply) = post_json(tracker, "/announce", body.to_string().as_bytes());
    assert_eq!(status, 200, "{reply}");
    reply
}

/// `(ip, port)` of each peer in a JSON reply, sorted. Peers carry no id: the tracker keeps
/// only a digest of each.
fn json_peers(reply: &Json) -> Vec<(String, u64)> {
    let mut peers: Vec<_> = reply["peers"]
        .as_array()
        .expect("peers array")
        .iter()
        .map(|p| {
            assert!(p.get("peer_id").is_none_or(Json::is_null), "{p}");
            (
                p["ip"].as_str().unwrap().to_string(),
                p["port"].as_u64().unwrap(),
            )
        })
        .collect();
    peers.sort();
    peers
}

fn get_bencoded(tracker: &TrackerHandle, target: &str) -> Value {
    let url = format!("http://{}{target}", tracker.local_addr());
    let reply = http::request(&url, "GET", None, TIMEOUT).unwrap();
    assert_eq!(reply.status, 200);
    bencode::decode(&reply.body).expect("bencoded reply")
}

fn field<'a>(value: &'a Value, key: &str) -> &'a Value {
    value
        .as_dict()
        .and_then(|d| d.get(key.as_bytes()))
        .unwrap_or_else(|| panic!("no {key} in {value:?}"))
}

fn bep3_target(
    info_hash: &[u8; 20],
    peer_id: &[u8; 20],
    port: u16,
    left: u64,
    extra: &str,
) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}{extra}",
        http::percent_encode(info_hash),
        http::percent_encode(peer_id)
    )
}

const PEER_A: &str = "-PM0001-aaaaaaaaaaaa";
const PEER_B: &str = "-PM0001-bbbbbbbbbbbb";

#[test]
fn json_peers_see_each_other_and_stopped_removes() {
    let tracker = start_default();
    let first = json_announce(&tracker, PEER_A, 7001, "started");
    assert_eq!(first["interval"], 1800);
    assert!(json_peers(&first).is_empty());
    let second = json_announce(&tracker, PEER_B, 7002, "started");
    assert_eq!(json_peers(&second), [("127.0.0.1".into(), 7001)]);
    assert_eq!(second["incomplete"], 2);
    let again = json_announce(&tracker, PEER_A, 7001, "absent");
    assert_eq!(json_peers(&again), [("127.0.0.1".into(), 7002)]);

    let stopped = json_announce(&tracker, PEER_B, 7002, "stopped");
    assert!(json_peers(&stopped).is_empty());
    let alone = json_announce(&tracker, PEER_A, 7001, "absent");
    assert!(json_peers(&alone).is_empty(), "{alone}");
    assert_eq!(alone["incomplete"], 1);
    tracker.shutdown();
}

#[test]
fn malformed_requests_get_failure_reasons_and_server_keeps_serving() {
    let tracker = start_default();
    let cases: [(&str, &[u8], u16, &str); 5] = [
        ("/announce", b"{not json", 400, "invalid announce JSON"),
        (
            "/announce",
            br#"{"info_hash":"zz","peer_id":"x","port":1,"uploaded":0,"downloaded":0,"left":0}"#,
            400,
            "info_hash",
        ),
        ("/announce", br#"{"info_hash":"aa"}"#, 400, "missing field"),
        ("/nowhere", b"{}", 404, "no endpoint /nowhere"),
        ("/scrape", b"{}", 405, "POST is not allowed on /scrape"),
    ];
    for (path, body, status, needle) in cases {
        let (got, reply) = post_json(&tracker, path, body);
        assert_eq!(got, status, "{path} {reply}");
        let reason = reply["failure reason"].as_str().unwrap_or_default();
        assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
    }
    // An oversized body is refused with 413, not read into memory.
    let huge = vec![b' '; 100 * 1024];
    let url = announce_url(&tracker);
    let reply = http::request(&url, "POST", Some(("application/json", &huge)), TIMEOUT).unwrap();
    assert_eq!(reply.status, 413);
    // Plain garbage instead of HTTP.
    let mut raw = TcpStream::connect(tracker.local_addr()).unwrap();
    raw.write_all(b"\x16\x03\x01 hello\r\n\r\n").unwrap();
    let mut answer = String::new();
    raw.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = raw.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");

    let ok = json_announce(&tracker, PEER_A, 7001, "started");
    assert!(ok["peers"].is_array());
    tracker.shutdown();
}

#[test]
fn bep3_compact_and_dictionary_replies() {
    let tracker = start_default();
    let info_hash = [0x5a; 20];
    let first = get_bencoded(
        &tracker,
        &bep3_target(
            &info_hash,
            b"-XX0001-000000000001",
            6001,
            0,
            "&event=started",
        ),
    );
    assert_eq!(field(&first, "peers").as_bytes(), Some(&[][..]));
    assert_eq!(field(&first, "complete").as_int(), Some(1));

    let compact = get_bencoded(
        &tracker,
        &bep3_target(&info_hash, b"-XX0001-000000000002", 6002, 0, ""),
    );
    let mut expected = vec![127, 0, 0, 1];
    expected.extend_from_slice(&6001u16.to_be_bytes());
    assert_eq!(field(&compact, "peers").as_bytes(), Some(&expected[..]));
    assert_eq!(field(&compact, "interval").as_int(), Some(1800));

    let dict = get_bencoded(
        &tracker,
        &bep3_target(&info_hash, b"-XX0001-000000000002", 6002, 0, "&compact=0"),
    );
    let peers = field(&dict, "peers").as_list().unwrap();
    assert_eq!(peers.len(), 1);
    // The tracker keeps only a digest of each peer id, so the dictionary model has none.
    assert!(peers[0].as_dict().unwrap().get(&b"peer id"[..]).is_none());
    assert_eq!(field(&peers[0], "ip").as_str(), Some("127.0.0.1"));
    assert_eq!(field(&peers[0], "port").as_int(), Some(6001));

    let failure = get_bencoded(&tracker, "/announce?info_hash=short");
    assert!(
        field(&failure, "failure reason")
            .as_str()
            .unwrap()
            .contains("20 bytes")
    );
    tracker.shutdown();
}

#[test]
fn scrape_reports_counts_per_torrent() {
    let tracker = start_default();
    let (one, two, unknown) = ([1u8; 20], [2u8; 20], [3u8; 20]);
    // A download counts when a leecher the tracker knows completes, once however often it says so.
    get_bencoded(
        &tracker,
        &bep3_target(&one, b"-XX0001-000000000001", 6001, 9, "&event=started"),
    );
    for _ in 0..3 {
        get_bencoded(
            &tracker,
            &bep3_target(&one, b"-XX0001-000000000001", 6001, 0, "&event=completed"),
        );
    }
    get_bencoded(
        &tracker,
        &bep3_target(&one, b"-XX0001-000000000002", 6002, 9, ""),
    );
    get_bencoded(
        &tracker,
        &bep3_target(&two, b"-XX0001-000000000003", 6003, 0, ""),
    );
    let target = format!(
        "/scrape?info_hash={}&info_hash={}",
        http::percent_encode(&one),
        http::percent_encode(&unknown)
    );
    let scrape = get_bencoded(&tracker, &target);
    let files = field(&scrape, "files").as_dict().unwrap();
    assert_eq!(files.len(), 2);
    let stats = |hash: &[u8; 20], key: &str| {
        files[&hash.to_vec()].as_dict().unwrap()[key.as_bytes()].as_int()
    };
    assert_eq!(stats(&one, "complete"), Some(1));
    assert_eq!(stats(&one, "incomplete"), Some(1));
    assert_eq!(stats(&one, "downloaded"), Some(1));
    assert_eq!(stats(&unknown, "complete"), Some(0));
    tracker.shutdown();
}

#[test]
fn json_and_bep3_peers_share_a_swarm() {
    let tracker = start_default();
    let hash = [0xaa; 20];
    json_announce(&tracker, PEER_A, 7001, "started");
    let bep3 = get_bencoded(
        &tracker,
        &bep3_target(&hash, b"-XX0001-000000000009", 6009, 0, "&compact=0"),
    );
    let peers = field(&bep3, "peers").as_list().unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(field(&peers[0], "port").as_int(), Some(7001));
    let json = json_announce(&tracker, PEER_A, 7001, "absent");
    assert_eq!(json_peers(&json), [("127.0.0.1".into(), 6009)]);
    tracker.shutdown();
}

#[test]
fn port_in_use_names_the_address() {
    let first = start_default();
    let taken = first.local_addr();
    let err = match tracker::start(TrackerConfig {
        bind: taken,
        ..TrackerConfig::default()
    }) {
        Err(err) => err,
        Ok(_) => panic!("second tracker bound {taken}"),
    };
    assert!(matches!(err, TrackerError::Bind { .. }));
    let text = err.to_string();
    assert!(
        text.contains(&taken.to_string()) && !text.contains('\n'),
        "{text}"
    );
    first.shutdown();
}

#[test]
fn shutdown_stops_listening() {
    let tracker = start_default();
    let addr = tracker.local_addr();
    let started = Instant::now();
    tracker.shutdown();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

fn request(port: u16, event: Event) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: InfoHash([0x42; 20]),
        peer_id: generate_peer_id(),
        port,
        uploaded: 0,
        downloaded: 0,
        left: 100,
        event,
        numwant: None,
    }
}

#[test]
fn announcer_speaks_both_protocols_to_our_tracker() {
    let tracker = start_default();
    let url = announce_url(&tracker);
    let mut json = Announcer::new(vec![vec![url.clone()]]);
    json.set_kind(&url, TrackerKind::Json);
    let mut bep3 = Announcer::new(vec![vec![url.clone()]]);
    bep3.set_kind(&url, TrackerKind::Bep3);
    let (a, b) = (request(7001, Event::Started), request(7002, Event::Started));

    let first = json.announce(&a).unwrap();
    assert!(first.peers.is_empty());
    assert_eq!(first.interval, Duration::from_secs(1800));
    assert_eq!(first.min_interval, Some(Duration::from_secs(900)));
    let second = bep3.announce(&b).unwrap();
    assert_eq!(second.peers.len(), 1);
    assert_eq!(
        second.peers[0].addr,
        "127.0.0.1:7001".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(second.peers[0].peer_id, None, "compact peers carry no id");
    assert_eq!(second.incomplete, Some(2));
    let third = json
        .announce(&AnnounceRequest {
            event: Event::None,
            ..a.clone()
        })
        .unwrap();
    assert_eq!(third.peers.len(), 1);
    assert_eq!(
        third.peers[0].addr,
        "127.0.0.1:7002".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        third.peers[0].peer_id, None,
        "the tracker keeps no peer ids"
    );

    // Undetected: JSON is tried first and works, so it is remembered.
    let mut auto = Announcer::new(vec![vec![url.clone()]]);
    auto.announce(&request(7003, Event::Started)).unwrap();
    assert_eq!(auto.kind(&url), Some(TrackerKind::Json));

    // A refusal is an error naming the tracker, in either protocol.
    for kind in [TrackerKind::Json, TrackerKind::Bep3] {
        let mut announcer = Announcer::new(vec![vec![url.clone()]]);
        announcer.set_kind(&url, kind);
        match announcer.announce(&request(0, Event::Started)) {
            Err(AnnounceError::Refused { url: named, reason }) => {
                assert_eq!(named, url);
                assert!(reason.contains("port"), "{reason}");
            }
            other => panic!("{kind:?}: expected a refusal, got {other:?}"),
        }
    }
    tracker.shutdown();
}

/// A stand-in for a BEP 3-only tracker such as opentracker: answers a POST with `post_reply` (an
/// empty one closes the connection without a word) and a GET with a fixed bencoded reply in
/// HTTP/1.0 style (no length, then close). Serves `connections` connections, giving up after a
/// few seconds; returns the GET targets seen.
fn bep3_only_tracker(
    connections: usize,
    post_reply: &'static [u8],
) -> (String, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let give_up = Instant::now() + Duration::from_secs(10);
        let mut targets = Vec::new();
        let mut served = 0;
        while served < connections && Instant::now() < give_up {
            let mut stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(_) => {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            served += 1;
            stream.set_nonblocking(false).unwrap();
            let Ok(request) = http::read_request(&stream, &Limits::default()) else {
                continue;
            };
            if request.method == "POST" {
                let _ = stream.write_all(post_reply);
            } else {
                targets.push(request.target.clone());
                let _ = stream.write_all(
                    b"HTTP/1.0 200 OK\r\n\r\nd8:completei3e10:incompletei4e8:intervali1800e5:peers6:\x0a\x00\x00\x07\x1a\xe1e",
                );
            }
        }
        targets
    });
    (url, handle)
}

#[test]
fn announcer_falls_back_to_bep3_and_remembers() {
    let (url, server) =
        bep3_only_tracker(3, b"HTTP/1.0 404 Not Found\r\n\r\n<html>not found</html>");
    let mut announcer = Announcer::new(vec![vec![url.clone()]]);
    let req = request(6881, Event::Started);
    let reply = announcer.announce(&req).unwrap();
    assert_eq!(announcer.kind(&url), Some(TrackerKind::Bep3));
    assert_eq!(
        reply.peers[0].addr,
        "10.0.0.7:6881".parse::<SocketAddr>().unwrap()
    );
    assert_eq!((reply.complete, reply.incomplete), (Some(3), Some(4)));
    assert_eq!(reply.interval, Duration::from_secs(1800));
    // The second announce goes straight to GET: two GETs over three connections.
    announcer
        .announce(&AnnounceRequest {
            event: Event::None,
            ..req.clone()
        })
        .unwrap();
    let targets = server.join().unwrap();
    assert_eq!(targets.len(), 2);
    assert!(
        targets[0].contains(&format!(
            "info_hash={}",
            http::percent_encode(&req.info_hash.0)
        )),
        "{}",
        targets[0]
    );
    assert!(
        targets[0].contains("&compact=1&event=started"),
        "{}",
        targets[0]
    );
    assert!(!targets[1].contains("event="), "{}", targets[1]);
}

#[test]
fn announcer_moves_past_dead_trackers_and_prefers_the_one_that_answered() {
    let tracker = start_default();
    let live = announce_url(&tracker);
    // A port that was just free: nothing listens there.
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/announce", listener.local_addr().unwrap())
    };
    let mut announcer = Announcer::new(vec![vec![dead.clone(), live.clone()], vec![dead.clone()]]);
    announcer.announce(&request(7001, Event::Started)).unwrap();
    assert_eq!(announcer.tiers()[0][0], live);

    // Every tracker failing reports each one.
    let mut hopeless = Announcer::new(vec![
        vec![dead.clone()],
        vec!["https://secure.example/a".into()],
    ]);
    match hopeless.announce(&request(7001, Event::Started)) {
        Err(AnnounceError::AllFailed(errors)) => {
            assert_eq!(errors.len(), 2);
            assert!(errors[0].to_string().contains(&dead), "{}", errors[0]);
        }
        other => panic!("expected every tracker to fail, got {other:?}"),
    }
    tracker.shutdown();
}

#[test]
fn announcer_falls_back_when_post_is_answered_with_bencode_or_silence() {
    let replies: [&'static [u8]; 2] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 29\r\n\r\nd14:failure reason7:invalide",
        b"",
    ];
    for post_reply in replies {
        let (url, server) = bep3_only_tracker(2, post_reply);
        let mut announcer = Announcer::new(vec![vec![url.clone()]]);
        let reply = announcer.announce(&request(6881, Event::Started)).unwrap();
        assert_eq!(reply.peers.len(), 1);
        assert_eq!(announcer.kind(&url), Some(TrackerKind::Bep3));
        assert_eq!(server.join().unwrap().len(), 1);
    }
}

#[test]
fn silent_peers_expire_on_the_timer() {
    let tracker = start(TrackerConfig {
        peer_timeout: Duration::from_millis(200),
        expire_every: Duration::from_millis(50),
        ..TrackerConfig::default()
    });
    json_announce(&tracker, PEER_A, 7001, "started");
    let target = format!("/scrape?info_hash={}", http::percent_encode(&[0xaa; 20]));
    let leechers = |tracker: &TrackerHandle| {
        let scrape = get_bencoded(tracker, &target);
        let files = field(&scrape, "files").as_dict().unwrap();
        files[&vec![0xaa; 20]].as_dict().unwrap()[b"incomplete".as_slice()].as_int()
    };
    assert_eq!(leechers(&tracker), Some(1));
    let give_up = Instant::now() + Duration::from_secs(5);
    while leechers(&tracker) != Some(0) {
        assert!(Instant::now() < give_up, "peer never expired");
        thread::sleep(Duration::from_millis(50));
    }
    tracker.shutdown();
}

#[test]
fn dual_stack_tracker_splits_peers_and_peers6() {
    let tracker = match tracker::start(TrackerConfig {
        bind: "[::]:0".parse().unwrap(),
        ..TrackerConfig::default()
    }) {
        Ok(tracker) => tracker,
        Err(e) => {
            eprintln!("skipping: no IPv6 here ({e})");
            return;
        }
    };
    let port = tracker.local_addr().port();
    let hash = [0x66; 20];
    let via = |host: &str, peer_id: &[u8; 20], peer_port: u16| {
        let url = format!(
            "http://{host}:{port}{}",
            bep3_target(&hash, peer_id, peer_port, 0, "")
        );
        let reply = http::request(&url, "GET", None, TIMEOUT).unwrap();
        bencode::decode(&reply.body).unwrap()
    };
    // A v4 client on a dual-stack socket arrives as ::ffff:127.0.0.1 and must be listed as IPv4.
    via("127.0.0.1", b"-XX0001-00000000000a", 6001);
    via("[::1]", b"-XX0001-00000000000b", 6002);
    let reply = via("127.0.0.1", b"-XX0001-00000000000c", 6003);
    let mut v4 = vec![127, 0, 0, 1];
    v4.extend_from_slice(&6001u16.to_be_bytes());
    assert_eq!(field(&reply, "peers").as_bytes(), Some(&v4[..]));
    let mut v6 = std::net::Ipv6Addr::LOCALHOST.octets().to_vec();
    v6.extend_from_slice(&6002u16.to_be_bytes());
    assert_eq!(field(&reply, "peers6").as_bytes(), Some(&v6[..]));

    // The client side parses both into addresses.
    let mut announcer = Announcer::new(vec![vec![format!("http://127.0.0.1:{port}/announce")]]);
    announcer.set_kind(
        &format!("http://127.0.0.1:{port}/announce"),
        TrackerKind::Bep3,
    );
    let mut req = request(6004, Event::Started);
    req.info_hash = InfoHash(hash);
    let mut addrs: Vec<String> = announcer
        .announce(&req)
        .unwrap()
        .peers
        .iter()
        .map(|p| p.addr.to_string())
        .collect();
    addrs.sort();
    assert_eq!(addrs, ["127.0.0.1:6001", "127.0.0.1:6003", "[::1]:6002"]);
    tracker.shutdown();
}

/// Kills and reaps a child process when dropped, so a failing assertion cannot leak it.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Interoperability with a real BEP 3 tracker: Debian's opentracker (whitelist build). Skipped
/// when it is not installed.
#[test]
fn announcer_detects_and_uses_opentracker() {
    let dir = tempfile::tempdir().unwrap();
    let info_hash = InfoHash([0x3c; 20]);
    std::fs::write(
        dir.path().join("whitelist"),
        format!("{}\n", info_hash.hex()),
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spawned = std::process::Command::new("opentracker")
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            &port.to_string(),
        ])
        // opentracker chroots into -d, so the whitelist path is relative to it.
        .args(["-w", "/whitelist", "-d"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => ChildGuard(child),
        Err(e) => {
            eprintln!("skipping: cannot run opentracker ({e})");
            return;
        }
    };
    let give_up = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.0.try_wait().unwrap().is_none(), "opentracker exited");
        assert!(
            Instant::now() < give_up,
            "opentracker never listened on {port}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let url = format!("http://127.0.0.1:{port}/announce");
    let mut first = Announcer::new(vec![vec![url.clone()]]);
    let mut second = Announcer::new(vec![vec![url.clone()]]);
    let req = |port| AnnounceRequest {
        info_hash,
        ..request(port, Event::Started)
    };
    first.announce(&req(7101)).unwrap();
    let reply = second.announce(&req(7102)).unwrap();
    assert_eq!(second.kind(&url), Some(TrackerKind::Bep3));
    assert!(reply.interval > Duration::ZERO);
    let addrs: Vec<SocketAddr> = reply.peers.iter().map(|p| p.addr).collect();
    assert!(
        addrs.contains(&"127.0.0.1:7101".parse().unwrap()),
        "{addrs:?}"
    );

    // A torrent outside the whitelist: opentracker's failure reason comes back as a refusal.
    let unlisted = AnnounceRequest {
        info_hash: InfoHash([0x3d; 20]),
        ..req(7103)
    };
    match second.announce(&unlisted) {
        Err(AnnounceError::Refused { url: named, reason }) => {
            assert_eq!(named, url);
            assert!(!reason.is_empty());
        }
        other => panic!("expected opentracker to refuse, got {other:?}"),
    }
}
