//! Fast resume between real processes on 127.0.0.1: a downloading peer SIGKILLed at random
//! moments never leaves a record claiming a piece that is not on disk, and a restart with a
//! valid record seeds without hashing.

mod support;

use piecemeal::disk::resume::{self, ResumeError};
use piecemeal::metainfo::Metainfo;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Proc, assert_same_tree, create_torrent, noise_file, noise_torrent, peer, tracker};

const DOWNLOAD: Duration = Duration::from_secs(60);

/// The torrent's bytes as the folder `dir` holds them (missing bytes are absent, so a piece
/// over them cannot match).
fn on_disk(meta: &Metainfo, dir: &Path) -> Vec<Option<u8>> {
    let mut out = Vec::new();
    for entry in &meta.info.files {
        let bytes = std::fs::read(dir.join(meta.info.relative_path(entry))).unwrap_or_default();
        out.extend((0..entry.length as usize).map(|i| bytes.get(i).copied()));
    }
    out
}

/// Pieces the record claims whose bytes on disk do not match their hash.
fn claimed_but_wrong(
    meta: &Metainfo,
    dir: &Path,
    claimed: &piecemeal::bitfield::Bitfield,
) -> Vec<usize> {
    let disk = on_disk(meta, dir);
    let length = meta.info.piece_length as usize;
    claimed
        .ones()
        .filter(|&i| {
            let end = (i * length + length).min(disk.len());
            let piece: Option<Vec<u8>> = disk[i * length..end].iter().copied().collect();
            !piece.is_some_and(|p| piecemeal::disk::piece_matches(&meta.info, i, &p))
        })
        .collect()
}

/// `(from the record, hashed)` from a peer's `N/M pieces on disk (T from the resume record, H
/// hashed in S s)` log line.
fn start_figures(stderr: &str) -> Option<(usize, usize)> {
    let line = stderr
        .lines()
        .find(|l| l.contains("from the resume record"))?;
    let after = line.split_once(" (")?.1;
    let trusted = after.split(' ').next()?.parse().ok()?;
    let hashed = after.split(", ").nth(1)?.split(' ').next()?.parse().ok()?;
    Some((trusted, hashed))
}

/// `N` from the `N/M pieces on disk` log line.
fn on_disk_at_start(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.contains("pieces on disk"))
        .unwrap();
    let before = line.split('/').next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_record_claiming_a_missing_piece() {
    let work = tempfile::tempdir().unwrap();
    // 64 files: a restart finds some untouched since the record (their pieces are trusted)
    // and some written to since, or just before it (theirs are hashed again).
    let content = work.path().join("seed/kill");
    for i in 0..64 {
        noise_file(&content.join(format!("f{i:02}.bin")), 160 << 10, i);
    }
    let torrent = work.path().join("kill.torrent");
    create_torrent(&content, 1 << 15, &torrent);
    let meta = Metainfo::load(&torrent).unwrap();
    let (_tracker, url) = tracker();
    let mut seeder = peer(&work.path().join("seed"), &[&torrent], &["--tracker", &url]);
    seeder.wait_for("seeding", Duration::from_secs(20));

    let client = work.path().join("client");
    let record = resume::path_for(&client, &meta.info_hash);
    let seed = fastrand::u64(..);
    println!("kill moments from seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut claimed_before = 0;
    let mut partial_rechecks = 0;
    let mut saved_while_running = 0;
    for round in 0..6 {
        // Slow enough that each round ends mid-download: 10 MiB at 500 KiB/s is 20 s in all.
        let mut leecher = peer(
            &client,
            &[&torrent],
            &["--tracker", &url, "--max-download-rate", "500k"],
        );
        leecher.wait_listening("listening on");
        // Short rounds die around the first save; long ones after a save while pieces arrive.
        let alive = Duration::from_millis(match round % 2 {
            0 => rng.u64(150..1200),
            _ => rng.u64(3600..5000),
        });
        let until = Instant::now() + alive;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        leecher.child.kill().unwrap(); // SIGKILL
        leecher.child.wait().unwrap();
        let stderr = leecher.stderr();
        let (trusted, hashed) =
            start_figures(&stderr).unwrap_or_else(|| panic!("no start-up line:\n{stderr}"));
        if trusted > 0 && hashed < meta.info.piece_count() {
            partial_rechecks += 1;
        }
        let at_start = on_disk_at_start(&stderr);
        match resume::load(&record, &meta.info_hash, &meta.info) {
            Ok(rec) => {
                let wrong = claimed_but_wrong(&meta, &client, &rec.pieces);
                assert!(
                    wrong.is_empty(),
                    "round {round}: the record claims pieces not on disk: {wrong:?}"
                );
                assert!(
                    rec.pieces.count() >= claimed_before,
                    "round {round}: a restart lost verified pieces"
                );
                claimed_before = rec.pieces.count();
                if claimed_before > at_start {
                    saved_while_running += 1;
                }
                println!(
                    "round {round}: killed after {alive:?}, record claims {claimed_before} pieces"
                );
            }
            // Killed before the first save: allowed only then.
            Err(ResumeError::Unreadable(_)) if claimed_before == 0 => {}
            Err(e) => panic!("round {round}: {e}"),
        }
    }
    assert!(claimed_before > 0, "no record ever claimed a piece");
    assert!(
        saved_while_running > 0,
        "no record was saved during a download"
    );
    assert!(
        partial_rechecks > 0,
        "no restart took pieces from its record (only files written since were to be hashed)"
    );

    let mut leecher = peer(
        &client,
        &[&torrent],
        &["--tracker", &url, "--exit-when-done"],
    );
    leecher.wait_for("complete", DOWNLOAD);
    assert!(
        leecher.wait_exit(DOWNLOAD).success(),
        "{}",
        leecher.stderr()
    );
    assert_same_tree(&work.path().join("seed"), &client);
    let last = resume::load(&record, &meta.info_hash, &meta.info).unwrap();
    assert!(last.pieces.is_complete(), "the exit saved the whole set");
    assert!(claimed_but_wrong(&meta, &client, &last.pieces).is_empty());
}

/// Starts a seeder of `torrent` in `dir` and returns it with the time from spawn to its
/// `seeding` line.
fn time_to_seeding(dir: &Path, torrent: &Path, url: &str) -> (Proc, Duration) {
    let started = Instant::now();
    let mut seeder = peer(dir, &[torrent], &["--tracker", url]);
    seeder.wait_for("seeding", DOWNLOAD);
    (seeder, started.elapsed())
}

#[test]
fn a_restart_with_a_valid_record_seeds_at_once() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "big", 256 << 20, 1 << 18);
    let meta = Metainfo::load(&torrent).unwrap();
    let pieces = meta.info.piece_count();
    let (_tracker, url) = tracker();
    let dir = work.path().join("seed");
    // Files a seeder has held for a while: a file modified within 2 s of a record is hashed
    // again at start (its timestamp could hide a later write), and these were just made.
    for file in ["big/a.bin", "big/deep/b.bin"] {
        std::fs::File::options()
            .write(true)
            .open(dir.join(file))
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
            .unwrap();
    }

    let (mut first, full) = time_to_seeding(&dir, &torrent, &url);
    assert_eq!(
        start_figures(&first.stderr()),
        Some((0, pieces)),
        "no record: all hashed"
    );
    assert!(first.terminate().success());

    let mut best = Duration::MAX;
    for _ in 0..3 {
        let (mut again, took) = time_to_seeding(&dir, &torrent, &url);
        assert_eq!(
            start_figures(&again.stderr()),
            Some((pieces, 0)),
            "every piece from the record, none hashed:\n{}",
            again.stderr()
        );
        assert!(again.terminate().success());
        best = best.min(took);
    }
    println!(
        "256 MiB, {pieces} pieces: spawn to `seeding` {:.3} s with no record, {:.3} s with one (best of 3)",
        full.as_secs_f64(),
        best.as_secs_f64()
    );
    assert!(best < Duration::from_millis(200), "{best:?}");

    // A file touched since: only its pieces are hashed, and the torrent still seeds whole.
    let touched = dir.join("big/a.bin");
    let file = std::fs::File::options().write(true).open(&touched).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    let (mut again, _) = time_to_seeding(&dir, &torrent, &url);
    let (trusted, hashed) = start_figures(&again.stderr()).unwrap();
    assert!(
        hashed > 0 && hashed < pieces,
        "{trusted} trusted, {hashed} hashed"
    );
    assert_eq!(trusted + hashed, pieces, "{trusted} + {hashed}");
    assert!(again.terminate().success());
}
