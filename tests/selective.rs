//! Selective download (`piecemeal peer --only SPEC`) between real processes on 127.0.0.1.

mod support;

use piecemeal::metainfo::Metainfo;
use std::path::Path;
use std::time::Duration;
use support::{
    assert_one_error_line, create_torrent, field, noise_file, peer, run, run_bounded, tracker,
};

const DOWNLOAD: Duration = Duration::from_secs(60);
const PIECE: u64 = 1 << 15;

/// Five files whose boundaries fall inside pieces; returns the .torrent.
fn five_files(work: &Path) -> std::path::PathBuf {
    let content = work.join("seed/five");
    for (i, len) in [300_000, 100_000, 150_000, 90_000, 400_000]
        .iter()
        .enumerate()
    {
        noise_file(&content.join(format!("f{i}.bin")), *len, i as u64 + 10);
    }
    let torrent = work.join("five.torrent");
    create_torrent(&content, PIECE, &torrent);
    torrent
}

#[test]
fn only_the_middle_file_is_fetched_and_the_download_ends() {
    let work = tempfile::tempdir().unwrap();
    let torrent = five_files(work.path());
    let meta = Metainfo::load(&torrent).unwrap();
    let names: Vec<String> = meta.info.files.iter().map(|f| f.path.join("/")).collect();
    let index = names.iter().position(|n| n == "f2.bin").unwrap();
    // `show` numbers the files the way `--only` reads them.
    let (code, shown, _) = run(&["show", torrent.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        shown.contains(&format!("  {index}: five/f2.bin (")),
        "{shown}"
    );

    // The byte ranges of every file, and the pieces the middle one touches.
    let mut ranges = Vec::new();
    let mut offset = 0;
    for f in &meta.info.files {
        ranges.push((offset, offset + f.length));
        offset += f.length;
    }
    let total = offset;
    let (start, end) = ranges[index];
    let (first, last) = (start / PIECE, (end - 1) / PIECE);
    let wanted_bytes = (first..=last)
        .map(|i| meta.info.piece_size(i as usize))
        .sum::<u64>();

    let (mut tracker, url) = tracker();
    let mut seeder = peer(&work.path().join("seed"), &[&torrent], &["--tracker", &url]);
    seeder.wait_for("seeding", Duration::from_secs(20));
    let client_dir = work.path().join("client");
    let mut client = peer(
        &client_dir,
        &[&torrent],
        &[
            "--tracker",
            &url,
            "--exit-when-done",
            "--only",
            &index.to_string(),
        ],
    );
    let line = client.wait_for("complete", DOWNLOAD);
    assert!(client.wait_exit(DOWNLOAD).success(), "{}", client.stderr());

    assert_eq!(
        std::fs::read(client_dir.join("five/f2.bin")).unwrap(),
        std::fs::read(work.path().join("seed/five/f2.bin")).unwrap(),
        "the chosen file is byte-identical"
    );
    let piece_range = (first * PIECE, (last + 1) * PIECE);
    let mut absent = 0;
    for (name, &(from, to)) in names.iter().zip(&ranges) {
        let outside = to <= piece_range.0 || from >= piece_range.1;
        if outside {
            absent += 1;
            assert!(
                !client_dir.join("five").join(name).exists(),
                "{name} shares no piece with the chosen file, yet exists"
            );
        }
    }
    assert_eq!(absent, 2, "the layout leaves f0 and f4 outside the pieces");
    let bytes: u64 = field(&line, "bytes").parse().unwrap();
    assert_eq!(bytes, wanted_bytes, "only the wanted pieces: {line}");
    assert!(bytes * 5 < total, "{bytes} of {total} bytes: {line}");
    assert!(seeder.terminate().success());
    assert!(tracker.terminate().success());
}

#[test]
fn a_selection_that_does_not_fit_is_one_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let torrent = five_files(work.path());
    let dir = work.path().join("client");
    for (spec, needles) in [
        ("5", &["five", "file index 5", "5 files"][..]),
        ("*.mkv", &["five", "selects no file"][..]),
    ] {
        let (code, _, err) = run_bounded(
            &[
                "peer",
                "--dir",
                dir.to_str().unwrap(),
                "--torrent",
                torrent.to_str().unwrap(),
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--connect",
                "127.0.0.1:1",
                "--only",
                spec,
            ],
            Duration::from_secs(20),
        );
        assert_ne!(code, 0, "--only {spec}");
        assert_one_error_line(&err, needles);
        assert!(
            !dir.join("five").exists(),
            "nothing created for --only {spec}"
        );
    }
    let (code, _, err) = run_bounded(
        &["peer", "--dir", "x", "--torrent", "y", "--only", "3-1"],
        Duration::from_secs(20),
    );
    assert_eq!(code, 2, "a usage error");
    assert!(err.contains("bad file selection \"3-1\""), "{err}");
}
