//! Rate limits on real `piecemeal` processes over 127.0.0.1: a capped seeder, and a capped
//! leecher, each hold their cap within 10% over a window of several seconds (loopback peers
//! are limited like any other).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};
use support::{field, noise_torrent, peer, run_bounded, tracker};

/// The cap, as given on the command line and in bytes per second (M = 1024²).
const CAP: &str = "2M";
const CAP_BYTES: f64 = 2.0 * 1024.0 * 1024.0;
/// About 10 s at the cap.
const SIZE: usize = 20 << 20;
const PIECE: u64 = 1 << 18;

/// The download's rate: over a window from when it is under way to the leecher's `complete`
/// line, and over the whole run as that line reports it.
struct Measured {
    window: f64,
    window_secs: f64,
    overall: f64,
}

/// Runs a seeder with `seeder_flags` and a leecher with `leecher_flags` on a 20 MiB torrent
/// and measures the download.
fn transfer(seeder_flags: &[&str], leecher_flags: &[&str]) -> Measured {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "capped", SIZE, PIECE);
    let (_tracker, url) = tracker();
    let mut seeder = peer(
        &work.path().join("seed"),
        &[&torrent],
        &[&["--tracker", &url], seeder_flags].concat(),
    );
    let seeder_addr = seeder.wait_listening("listening on");
    seeder.wait_for("seeding", Duration::from_secs(20));
    let addr = seeder_addr.to_string();
    let mut leecher = peer(
        &work.path().join("leech"),
        &[&torrent],
        &[
            &["--tracker", &url, "--connect", &addr, "--exit-when-done"],
            leecher_flags,
        ]
        .concat(),
    );
    // The window opens once the transfer runs (the first MiB is on disk) and closes at the
    // `complete` line. Written bytes are counted in the leecher's files, which start as
    // zeros: a 16 KiB chunk of noise that is all zeros does not happen.
    let leech = work.path().join("leech/capped");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (window_start, written) = loop {
        let now = Instant::now();
        let written = written_bytes(&leech);
        if written >= 1 << 20 {
            break (now, written);
        }
        assert!(now < deadline, "the download did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let line = leecher.wait_for("complete", Duration::from_secs(30));
    let window_secs = window_start.elapsed().as_secs_f64();
    assert!(leecher.wait_exit(Duration::from_secs(20)).success());
    let bytes: f64 = field(&line, "bytes").parse().unwrap();
    assert_eq!(bytes, SIZE as f64, "{line}");
    let secs: f64 = field(&line, "secs").parse().unwrap();
    Measured {
        window: (SIZE - written) as f64 / window_secs,
        window_secs,
        overall: bytes / secs,
    }
}

/// Bytes below `dir` in 16 KiB chunks that are not all zeros.
fn written_bytes(dir: &Path) -> usize {
    const CHUNK: usize = 16 << 10;
    ["a.bin", "deep/b.bin"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap_or_default())
        .map(|data| {
            data.chunks(CHUNK)
                .filter(|c| c.iter().any(|&b| b != 0))
                .map(<[u8]>::len)
                .sum::<usize>()
        })
        .sum()
}

fn assert_near_cap(m: &Measured, what: &str) {
    eprintln!(
        "{what}: cap {CAP_BYTES:.0} B/s; window {:.0} B/s over {:.1} s ({:+.1}%), overall {:.0} B/s ({:+.1}%)",
        m.window,
        m.window_secs,
        (m.window / CAP_BYTES - 1.0) * 100.0,
        m.overall,
        (m.overall / CAP_BYTES - 1.0) * 100.0
    );
    assert!(
        m.window_secs > 3.0,
        "{what}: the window is too short to judge"
    );
    for rate in [m.window, m.overall] {
        assert!(
            (rate - CAP_BYTES).abs() < CAP_BYTES * 0.1,
            "{what}: {rate:.0} B/s is not within 10% of {CAP_BYTES:.0} B/s"
        );
    }
}

#[test]
fn a_seeder_with_an_upload_cap_serves_at_the_cap() {
    let m = transfer(&["--max-upload-rate", CAP], &[]);
    assert_near_cap(&m, "upload cap");
}

#[test]
fn a_leecher_with_a_download_cap_fetches_at_the_cap() {
    let m = transfer(&[], &["--max-download-rate", CAP]);
    assert_near_cap(&m, "download cap");
}

#[test]
fn a_bad_rate_is_refused_with_the_reason() {
    for (flag, value, reason) in [
        ("--max-upload-rate", "fast", "unknown unit"),
        ("--max-download-rate", "1.2.3M", "not a rate"),
    ] {
        let (code, out, err) = run_bounded(
            &["peer", "--dir", ".", "--torrent", "x.torrent", flag, value],
            Duration::from_secs(20),
        );
        assert_eq!(code, 2, "{err}");
        assert!(out.is_empty());
        let first = err.lines().next().unwrap_or_default();
        for needle in [flag, value, reason] {
            assert!(first.contains(needle), "{first:?} lacks {needle:?}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    let (code, out, _) = run_bounded(&["peer", "--help"], Duration::from_secs(20));
    assert_eq!(code, 0);
    assert!(out.contains("--max-upload-rate <RATE>") && out.contains("k = 1024"));
}
