//! The DHT node of a running peer (BEP 5), from outside: two piecemeal peers find each other
//! through the DHT alone (their torrent's tracker is unreachable), the routing table is saved
//! at exit and reused at the next start, and a flood of malformed and valid queries from
//! several loopback addresses leaves the node answering, rate-limited and bounded.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{Proc, assert_same_tree, noise_torrent, peer};

/// The saved routing table of the peer in `dir`: (our id, node addresses).
fn saved_table(dir: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(dir.join(".piecemeal/dht.json")).expect("table saved");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let nodes = v["nodes"].as_array().unwrap();
    let addrs = nodes.iter().map(|n| n["addr"].as_str().unwrap().to_owned());
    (v["id"].as_str().unwrap().to_owned(), addrs.collect())
}

#[test]
fn two_peers_meet_through_the_dht_alone_and_the_table_outlives_a_restart() {
    let work = tempfile::tempdir().unwrap();
    // The torrent's tracker is a closed port: without the DHT neither peer would start.
    let torrent = noise_torrent(work.path(), "dht-data", 700_000, 32 * 1024);
    let mut seeder = peer(&work.path().join("seed"), &[&torrent], &[]);
    let addr = seeder.wait_listening("listening on");
    let dl = work.path().join("dl");
    let boot = addr.to_string();
    let mut leecher = peer(
        &dl,
        &[&torrent],
        &["--dht-bootstrap", &boot, "--exit-when-done"],
    );
    let line = leecher.wait_for("complete ", Duration::from_secs(60));
    // Either side may dial: each learns the other's address from the DHT (whoever announced
    // first), so the connection's address is not checked, only the bytes.
    assert!(line.contains("bytes=700000"), "{line}");
    assert!(leecher.wait_exit(Duration::from_secs(20)).success());
    assert_same_tree(&work.path().join("seed/dht-data"), &dl.join("dht-data"));
    // The leecher saved its table on the way out, with the seeder's node in it.
    let (id, nodes) = saved_table(&dl);
    assert!(nodes.contains(&boot), "{nodes:?}");
    // Restarted with no bootstrap node (and bound to loopback, so no public router), it
    // finds the seeder's node from the saved table, under the same id.
    let mut again = peer(&dl, &[&torrent], &[]);
    wait_stderr_line(&again, Duration::from_secs(30), |l| {
        l.contains("DHT lists") && !l.contains("(0 nodes answered")
    });
    assert!(again.terminate().success());
    assert_eq!(saved_table(&dl).0, id, "same node id after a restart");
    assert!(seeder.terminate().success());
}

/// Waits until a line of the process's stderr satisfies `pred`.
fn wait_stderr_line(p: &Proc, timeout: Duration, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + timeout;
    while !p.stderr().lines().any(&pred) {
        assert!(
            Instant::now() < deadline,
            "no such line on stderr within {timeout:?}:\n{}",
            p.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long the flood lasts.
const FLOOD: Duration = Duration::from_secs(3);
/// Flooding addresses (127.0.0.2 up), so the per-IP limit does not hide what the node can do.
const FLOOD_IPS: u8 = 64;
/// Threads sending the flood, each over its share of the addresses.
const FLOOD_THREADS: usize = 4;

/// CPU time (user + system) of a process so far, in clock ticks of 10 ms.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// A `/proc/PID/status` field in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// One flood packet of kind `i % 7`: garbage, oversized, truncated, or a valid query.
fn flood_packet(i: u64, rng: &mut fastrand::Rng) -> Vec<u8> {
    use piecemeal::dht::krpc::{Body, Message, Query};
    use piecemeal::dht::node_id::NodeId;
    let mut id = [0u8; 20];
    id.iter_mut().for_each(|b| *b = rng.u8(..));
    let query = match i % 7 {
        0 => return (0..rng.usize(1..200)).map(|_| rng.u8(..)).collect(),
        1 => return vec![b'd'; 2000],
        2 => return b"d1:ad2:id20:".to_vec(),
        3 => Query::Ping,
        4 => Query::FindNode { target: NodeId(id) },
        5 => Query::GetPeers {
            info_hash: NodeId(id),
        },
        _ => Query::AnnouncePeer {
            info_hash: NodeId(id),
            port: 1,
            implied_port: false,
            token: b"forged".to_vec(),
        },
    };
    Message {
        tid: i.to_be_bytes()[6..].to_vec(),
        body: Body::Query {
            id: NodeId(id),
            query,
        },
    }
    .encode()
}

/// Reads what the node sends to one flooding socket: counts answers and answers its pings
/// (as a node with a fixed id would), so the flooders try to fill the routing table too.
fn flood_reader(socket: UdpSocket, stop: Arc<AtomicBool>, answers: Arc<AtomicU64>) {
    use piecemeal::dht::krpc::{Body, Message, Query, Response, decode};
    use piecemeal::dht::node_id::NodeId;
    let own = NodeId::random();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        match decode(&buf[..n]).map(|m| (m.tid, m.body)) {
            Ok((
                tid,
                Body::Query {
                    query: Query::Ping, ..
                },
            )) => {
                let pong = Message {
                    tid,
                    body: Body::Response {
                        id: own,
                        response: Response::default(),
                    },
                };
                let _ = socket.send_to(&pong.encode(), from);
            }
            Ok(_) => {
                answers.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => panic!("the node sent something malformed: {e}"),
        }
    }
}

#[test]
fn a_flood_from_loopback_leaves_the_node_answering_and_bounded() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "flood-data", 100_000, 32 * 1024);
    let dir = work.path().join("seed");
    let mut node = peer(&dir, &[&torrent], &[]);
    let target: SocketAddr = node.wait_listening("listening on");
    let pid = node.child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let mut sockets = Vec::new();
    let mut readers = Vec::new();
    let mut answers = Vec::new();
    for ip in 2..2 + FLOOD_IPS {
        let socket = UdpSocket::bind(("127.0.0.".to_owned() + &ip.to_string(), 0)).unwrap();
        let count = Arc::new(AtomicU64::new(0));
        let (reader, stop) = (socket.try_clone().unwrap(), stop.clone());
        let c = count.clone();
        readers.push(std::thread::spawn(move || flood_reader(reader, stop, c)));
        answers.push(count);
        sockets.push(socket);
    }
    let sent = Arc::new(AtomicU64::new(0));
    let (cpu_before, started) = (cpu_ticks(pid), Instant::now());
    let per_thread = sockets.len() / FLOOD_THREADS;
    let senders: Vec<_> = (0..FLOOD_THREADS)
        .map(|t| {
            let mine: Vec<UdpSocket> = sockets[t * per_thread..(t + 1) * per_thread]
                .iter()
                .map(|s| s.try_clone().unwrap())
                .collect();
            let sent = sent.clone();
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t as u64);
                let mut i = 0u64;
                while started.elapsed() < FLOOD {
                    let packet = flood_packet(i, &mut rng);
                    let _ = mine[i as usize % mine.len()].send_to(&packet, target);
                    i += 1;
                }
                sent.fetch_add(i, Ordering::Relaxed);
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid) - cpu_before) as f64 / 100.0;
    // Answers still in the socket buffers arrive within a moment.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let (rss, peak) = (status_kb(pid, "VmRSS:"), status_kb(pid, "VmHWM:"));

    // The node still answers a newcomer at once.
    let probe = UdpSocket::bind("127.0.0.200:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut rng = fastrand::Rng::with_seed(99);
    let ping = flood_packet(3, &mut rng);
    let answered = (0..10).any(|_| {
        probe.send_to(&ping, target).unwrap();
        let mut buf = [0u8; 1500];
        probe.recv_from(&mut buf).is_ok()
    });
    assert!(answered, "the node stopped answering after the flood");

    assert!(node.terminate().success());
    let (_, table) = saved_table(&dir);
    let per_ip: Vec<u64> = answers.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    let total: u64 = per_ip.iter().sum();
    let sent = sent.load(Ordering::Relaxed);
    println!(
        "dht flood: {sent} packets in {secs:.1} s from {FLOOD_IPS} loopback IPs ({:.0}/s, 3 of 7 \
         malformed or oversized); {total} answered ({:.0}/s, at most {:.0} per IP); routing table \
         {} nodes; node CPU {:.0}% of one core, RSS {} MB (peak {} MB); machine shared, figures noisy",
        sent as f64 / secs,
        total as f64 / secs,
        *per_ip.iter().max().unwrap() as f64 / secs,
        table.len(),
        100.0 * cpu / secs,
        rss / 1024,
        peak / 1024,
    );
    assert!(total > 0, "nothing answered");
    // The per-IP limit: a burst of 400 and 200/s after it (loose, for timing).
    let limit = 400.0 + 200.0 * (secs + 0.5) * 1.2;
    assert!(
        per_ip.iter().all(|n| (*n as f64) <= limit),
        "{per_ip:?} > {limit}"
    );
    // One table entry per address at most, whatever ids the flooders claim.
    assert!(table.len() <= FLOOD_IPS as usize, "{table:?}");
    assert!(peak < 256 * 1024, "peak RSS {peak} kB");
}
