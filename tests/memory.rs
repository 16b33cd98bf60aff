//! The memory pieces in flight may hold is bounded whatever their size: blocks go to disk as
//! they arrive and pieces are hashed from there (see `src/peer/piece_sink.rs`), so a leecher
//! fetching 16 MiB pieces from several seeders at once holds none of them in memory.

mod support;

use std::time::Duration;
use support::{assert_same_tree, noise_torrent, peer, tracker};

/// Peak resident memory of a running process, in MiB (`VmHWM`: the high-water mark so far).
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib / 1024.0
}

const PIECE: u64 = 16 << 20;
const SEEDERS: usize = 4;
/// Whole-piece buffers would need one 16 MiB piece per connection (64 MiB for four), plus
/// endgame copies; the leecher's own needs are a few MiB.
const BOUND_MIB: f64 = 40.0;

#[test]
fn a_leecher_fetching_16_mib_pieces_from_four_seeders_stays_small() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "big", 8 * PIECE as usize, PIECE);
    let seed = work.path().join("seed");
    let (_tracker, url) = tracker();
    // Uploads capped so every seeder's connection holds a piece for seconds, all at once.
    let mut seeders: Vec<_> = (0..SEEDERS)
        .map(|_| {
            let args = ["--tracker", &url, "--max-upload-rate", "8M"];
            peer(&seed, &[&torrent], &args)
        })
        .collect();
    let addrs: Vec<String> = seeders
        .iter_mut()
        .map(|s| s.wait_listening("listening on").to_string())
        .collect();
    let client_dir = work.path().join("client");
    let mut extra = vec!["--tracker", url.as_str()];
    for addr in &addrs {
        extra.extend(["--connect", addr.as_str()]);
    }
    let mut client = peer(&client_dir, &[&torrent], &extra);
    let line = client.wait_for("complete", Duration::from_secs(120));
    let peak = peak_rss_mib(client.child.id());
    eprintln!("leecher peak RSS: {peak:.1} MiB");
    let sources = support::field(&line, "peers").split(',').count();
    assert!(
        sources >= 2,
        "pieces came from {sources} seeder(s), not several at once: {line}"
    );
    assert!(
        peak < BOUND_MIB,
        "leecher peak RSS {peak:.1} MiB with {SEEDERS} connections of 16 MiB pieces (bound {BOUND_MIB} MiB)"
    );
    assert_same_tree(&seed, &client_dir);
    drop(seeders);
}
