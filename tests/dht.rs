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
