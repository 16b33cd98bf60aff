//! The tracker under hostile and heavy use, over real loopback sockets: idle, trickling and
//! keep-alive clients, forged and proxied addresses, floods from one address, access lists
//! and the status page.

mod support;

use piecemeal::bencode::{self, Value};
use piecemeal::net::http::{self, Limits};
use piecemeal::tracker::server::{self as tracker, TrackerConfig, TrackerHandle};
use serde_json::Value as Json;
use socket2::{Domain, Socket, Type};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};
use support::Proc;

const TIMEOUT: Duration = Duration::from_secs(10);

fn start(config: TrackerConfig) -> TrackerHandle {
    tracker::start(TrackerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..config
    })
    .expect("tracker starts")
}

/// A BEP 3 announce target for torrent `hash` by peer `id` on `port`, with `extra` appended.
fn announce(hash: &[u8; 20], id: &[u8; 20], port: u16, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left=5{extra}",
        http::percent_encode(hash),
        http::percent_encode(id)
    )
}

/// Sends one GET with `headers` over `stream` (kept open) and reads the reply: status, body.
fn exchange(stream: &mut TcpStream, target: &str, headers: &str) -> (u16, Vec<u8>) {
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    // One write: a request in pieces would wait on Nagle and delayed acknowledgements.
    let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(&*stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {line:?}"));
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, body)
}

/// One GET on a fresh connection from `from` (any loopback address), decoded as bencode.
fn get_from(tracker: SocketAddr, from: IpAddr, target: &str, headers: &str) -> Value {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(from, 0).into()).unwrap();
    socket.connect_timeout(&tracker.into(), TIMEOUT).unwrap();
    let (status, body) = exchange(&mut socket.into(), target, headers);
    assert_eq!(status, 200);
    bencode::decode(&body).expect("bencoded reply")
}

fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_dict().and_then(|d| d.get(key.as_bytes()))
}

fn failure(value: &Value) -> String {
    field(value, "failure reason")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `(ip, port)` of the peers of a dictionary-model reply, sorted.
fn listed(reply: &Value) -> Vec<(String, i64)> {
    let mut peers: Vec<_> = field(reply, "peers")
        .and_then(Value::as_list)
        .unwrap_or_else(|| panic!("no peer list in {reply:?}"))
        .iter()
        .map(|p| {
            let ip = field(p, "ip").and_then(Value::as_str).unwrap().to_string();
            (ip, field(p, "port").and_then(Value::as_int).unwrap())
        })
        .collect();
    peers.sort();
    peers
}

fn stats(addr: SocketAddr) -> Json {
    let reply = http::request(&format!("http://{addr}/stats"), "GET", None, TIMEOUT).unwrap();
    assert_eq!(reply.status, 200);
    serde_json::from_slice(&reply.body).expect("JSON status")
}

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[test]
fn thousand_idle_and_trickling_connections_leave_announces_answered_within_a_second() {
    let tracker = start(TrackerConfig {
        workers: 2,
        ..TrackerConfig::default()
    });
    let addr = tracker.local_addr();
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    // Twenty clients sending a request one byte every 50 ms.
    let trickling: Vec<_> = (0..20)
        .map(|_| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                for b in b"GET /announce?info_hash=x HTTP/1.1\r\n".iter() {
                    if s.write_all(&[*b]).is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    for n in 0..18u8 {
        let started = Instant::now();
        let reply = get_from(addr, LOCAL, &announce(&[7; 20], &[n; 20], 6000, ""), "");
        let waited = started.elapsed();
        assert!(field(&reply, "peers").is_some(), "{reply:?}");
        assert!(
            waited < Duration::from_secs(1),
            "announce {n} took {waited:?}"
        );
    }
    for t in trickling {
        t.join().unwrap();
    }
    drop(idle);
    tracker.shutdown();
}

#[test]
fn keep_alive_clients_hold_no_worker_and_many_at_once_get_no_503() {
    let tracker = start(TrackerConfig {
        workers: 1,
        ..TrackerConfig::default()
    });
    let addr = tracker.local_addr();
    // One client keeps its connection open after a reply; with a single worker, another
    // client's request must still be answered at once.
    let mut held = TcpStream::connect(addr).unwrap();
    assert_eq!(exchange(&mut held, "/stats", "").0, 200);
    let started = Instant::now();
    assert_eq!(
        exchange(&mut TcpStream::connect(addr).unwrap(), "/stats", "").0,
        200
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // 200 keep-alive clients at once, three requests each on their connection: all answered.
    let clients: Vec<_> = (0..200u16)
        .map(|n| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let id = [n as u8; 20];
                (0..3)
                    .map(|_| exchange(&mut s, &announce(&[9; 20], &id, 1000 + n, ""), "").0)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), [200, 200, 200]);
    }
    // The first connection is still usable.
    assert_eq!(exchange(&mut held, "/stats", "").0, 200);
    tracker.shutdown();
}

#[test]
fn connection_cap_closes_the_longest_idle_so_new_clients_get_in() {
    let tracker = start(TrackerConfig {
        max_open: 50,
        limits: Limits {
            deadline: Duration::from_secs(30),
            ..Limits::default()
        },
        ..TrackerConfig::default()
    });
    let addr = tracker.local_addr();
    let mut idle: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let started = Instant::now();
    let reply = get_from(addr, LOCAL, &announce(&[3; 20], &[1; 20], 6001, ""), "");
    assert!(field(&reply, "peers").is_some());
    assert!(started.elapsed() < Duration::from_secs(2));
    // The oldest idle connections were closed by the tracker (end of stream, no reply).
    let first = &mut idle[0];
    first.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(first.read(&mut [0; 16]).unwrap_or(0), 0);
    tracker.shutdown();
}

#[test]
fn strangers_cannot_evict_or_move_a_peer_and_ip_is_ignored_unless_from_a_trusted_proxy() {
    let proxy: IpAddr = "127.0.0.9".parse().unwrap();
    let tracker = start(TrackerConfig {
        trusted_proxies: vec![proxy],
        ..TrackerConfig::default()
    });
    let addr = tracker.local_addr();
    let hash = [0x11; 20];
    let victim = *b"-XX0001-victimvictim";
    get_from(addr, LOCAL, &announce(&hash, &victim, 6001, ""), "");
    // Another address sends `stopped` and a new address for the victim's id, and `ip=`.
    let stranger: IpAddr = "127.0.0.2".parse().unwrap();
    get_from(
        addr,
        stranger,
        &announce(&hash, &victim, 6001, "&event=stopped"),
        "",
    );
    get_from(
        addr,
        stranger,
        &announce(&hash, &[2; 20], 6002, "&ip=192.0.2.66"),
        "X-Forwarded-For: 192.0.2.77\r\n",
    );
    // Through the trusted proxy, the forwarded client address is used.
    get_from(
        addr,
        proxy,
        &announce(&hash, &[3; 20], 6003, ""),
        "X-Forwarded-For: 10.9.9.9, 192.0.2.5\r\n",
    );
    let observer = "127.0.0.3".parse().unwrap();
    let reply = get_from(
        addr,
        observer,
        &announce(&hash, &[4; 20], 6004, "&compact=0"),
        "",
    );
    assert_eq!(
        listed(&reply),
        [
            ("127.0.0.1".into(), 6001),
            ("127.0.0.2".into(), 6002),
            ("192.0.2.5".into(), 6003)
        ]
    );
    tracker.shutdown();
}

#[test]
fn a_flood_of_info_hashes_from_one_address_stays_within_the_caps() {
    let (max_swarms, per_ip) = (500, 3000);
    let mut t = Proc::start(&[
        "tracker",
        "--bind",
        "127.0.0.1:0",
        "--max-swarms",
        &max_swarms.to_string(),
        "--max-announces-per-ip",
        &per_ip.to_string(),
    ]);
    let addr = t.wait_listening("tracker listening on");
    let rss_before = stats(addr)["rss_bytes"].as_u64().unwrap();
    let mut conn = TcpStream::connect(addr).unwrap();
    let (mut ok, mut full, mut limited) = (0, 0, 0);
    for n in 0..5000u32 {
        let mut hash = [0u8; 20];
        hash[..4].copy_from_slice(&n.to_be_bytes());
        let (status, body) = exchange(&mut conn, &announce(&hash, &[1; 20], 6000, ""), "");
        assert_eq!(status, 200);
        let reason = failure(&bencode::decode(&body).unwrap());
        match reason.as_str() {
            "" => ok += 1,
            r if r.contains("tracker full") => full += 1,
            r if r.contains("too many announces") => limited += 1,
            r => panic!("unexpected failure {r:?}"),
        }
    }
    assert_eq!(
        (ok, full, limited),
        (max_swarms, per_ip - max_swarms, 5000 - per_ip)
    );
    let status = stats(addr);
    assert_eq!(status["torrents"], max_swarms);
    assert_eq!(status["http"]["announces"], 5000);
    // 500 one-peer swarms are well under a megabyte; allow for allocator slack.
    let grown = status["rss_bytes"]
        .as_u64()
        .unwrap()
        .saturating_sub(rss_before);
    assert!(grown < 16 << 20, "memory grew by {grown} bytes");
    t.terminate();
}

#[test]
fn whitelist_refuses_unlisted_torrents_and_reloads_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("whitelist");
    let (listed_hash, other) = ([0xab; 20], [0xcd; 20]);
    std::fs::write(&list, format!("# served\n{}\n", "ab".repeat(20))).unwrap();
    let mut t = Proc::start(&[
        "tracker",
        "--bind",
        "127.0.0.1:0",
        "--whitelist",
        list.to_str().unwrap(),
    ]);
    let addr = t.wait_listening("tracker listening on");
    let ok = get_from(addr, LOCAL, &announce(&listed_hash, &[1; 20], 6001, ""), "");
    assert_eq!(failure(&ok), "");
    let refused = get_from(addr, LOCAL, &announce(&other, &[1; 20], 6001, ""), "");
    assert!(failure(&refused).contains("whitelist"), "{refused:?}");

    std::fs::write(&list, format!("{}\n", "cd".repeat(20))).unwrap();
    let pid = t.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let give_up = Instant::now() + TIMEOUT;
    while failure(&get_from(
        addr,
        LOCAL,
        &announce(&other, &[1; 20], 6001, ""),
        "",
    )) != ""
    {
        assert!(Instant::now() < give_up, "the new list was never loaded");
        thread::sleep(Duration::from_millis(50));
    }
    let now_refused = get_from(addr, LOCAL, &announce(&listed_hash, &[1; 20], 6001, ""), "");
    assert!(failure(&now_refused).contains("whitelist"));
    // The process survived SIGHUP (it used to mean "stop") and still answers.
    assert!(stats(addr)["uptime_seconds"].is_u64());
    t.terminate();
}

#[test]
fn stats_page_as_json_and_html() {
    let tracker = start(TrackerConfig::default());
    let addr = tracker.local_addr();
    get_from(addr, LOCAL, &announce(&[5; 20], &[1; 20], 6001, ""), "");
    get_from(addr, LOCAL, &announce(&[5; 20], &[2; 20], 6002, ""), "");
    let json = stats(addr);
    assert_eq!(
        (json["torrents"].as_u64(), json["leechers"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(json["http"]["announces"], 2);
    assert_eq!(json["udp"]["announces"], 0);
    assert!(json["rss_bytes"].as_u64().unwrap() > 1 << 20);
    let mut conn = TcpStream::connect(addr).unwrap();
    let (status, page) = exchange(&mut conn, "/stats", "Accept: text/html\r\n");
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("<table>") && page.contains("1 torrents"),
        "{page}"
    );
    tracker.shutdown();
}

#[test]
fn unreadable_or_bad_access_list_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "# fine\nnot-a-hash\n").unwrap();
    for (path, needle) in [
        (&missing, "cannot read access list"),
        (&bad, ":2: expected"),
    ] {
        let (code, _, err) = support::run_bounded(
            &[
                "tracker",
                "--bind",
                "127.0.0.1:0",
                "--blacklist",
                path.to_str().unwrap(),
            ],
            TIMEOUT,
        );
        assert_ne!(code, 0);
        support::assert_one_error_line(&err, &[needle]);
    }
}
