//! What a running `piecemeal peer` tells its tracker, checked through the tracker's own scrape:
//! a leecher that finishes is counted as a seeder.

mod support;

use piecemeal::bencode;
use piecemeal::metainfo::Metainfo;
use piecemeal::net::http;
use std::time::{Duration, Instant};
use support::{assert_same_tree, field, noise_torrent, peer, tracker};

const DOWNLOAD: Duration = Duration::from_secs(60);

/// `(complete, incomplete, downloaded)` of one torrent in the tracker's scrape.
fn scrape(announce_url: &str, meta: &Metainfo) -> (i64, i64, i64) {
    let url = format!(
        "{}?info_hash={}",
        announce_url.replace("/announce", "/scrape"),
        http::percent_encode(&meta.info_hash.0)
    );
    let reply = http::request(&url, "GET", None, Duration::from_secs(5)).unwrap();
    assert_eq!(reply.status, 200);
    let body = bencode::decode(&reply.body).unwrap();
    let files = body.as_dict().unwrap()[&b"files"[..]].as_dict().unwrap();
    let stats = files[&meta.info_hash.0.to_vec()].as_dict().unwrap();
    let count = |key: &str| stats[key.as_bytes()].as_int().unwrap();
    (count("complete"), count("incomplete"), count("downloaded"))
}

/// Polls the scrape until it reads `want`; panics with the last figures after `timeout`.
fn wait_scrape(url: &str, meta: &Metainfo, want: (i64, i64, i64), timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = scrape(url, meta);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "scrape (complete, incomplete, downloaded) is {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_leecher_that_completes_is_counted_as_a_seeder() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "counted", 3 << 20, 1 << 16);
    let meta = Metainfo::load(&torrent).unwrap();
    let (mut tracker, url) = tracker();
    let mut seeder = peer(&work.path().join("seed"), &[&torrent], &["--tracker", &url]);
    seeder.wait_for("seeding", DOWNLOAD);
    wait_scrape(&url, &meta, (1, 0, 0), DOWNLOAD);

    let client_dir = work.path().join("client");
    let mut client = peer(&client_dir, &[&torrent], &["--tracker", &url]);
    let line = client.wait_for("complete", DOWNLOAD);
    assert_eq!(field(&line, "bytes"), meta.info.total_length().to_string());
    assert_same_tree(&work.path().join("seed"), &client_dir);
    // The `completed` announce says left=0: two seeders, no leecher, one download. Before the
    // fix every announce carried the starting `left`, and this stayed (1, 1, 1) for good.
    wait_scrape(&url, &meta, (2, 0, 1), Duration::from_secs(10));

    // A second leecher that fetches only from the first one (the seeder has left) is counted
    // the same way: the figures are right for whoever served.
    assert!(seeder.terminate().success());
    wait_scrape(&url, &meta, (1, 0, 1), Duration::from_secs(10));
    let second_dir = work.path().join("second");
    let mut second = peer(&second_dir, &[&torrent], &["--tracker", &url]);
    second.wait_for("complete", DOWNLOAD);
    wait_scrape(&url, &meta, (2, 0, 2), Duration::from_secs(10));
    assert!(second.terminate().success());
    assert!(client.terminate().success());
    assert!(tracker.terminate().success());
}
