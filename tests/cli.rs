//! The `piecemeal` command as a user meets it: bad input files, taken ports, an unreachable
//! tracker and `--help` all end in one clear line (or a usage text), never a panic.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;
use support::{assert_one_error_line, closed_port, run_bounded, testdata};

const QUICK: Duration = Duration::from_secs(30);

fn bad_torrents() -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(testdata().join("bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 8,
        "testdata/bad holds the malformed samples: {paths:?}"
    );
    paths
}

/// Runs `piecemeal ARGS`, which must fail with nothing on stdout and exactly one error line
/// on stderr containing every one of `needles`.
fn assert_refused(args: &[&str], needles: &[&str]) {
    let (code, out, err) = run_bounded(args, QUICK);
    assert_ne!(code, 0, "{args:?} succeeded:\n{out}");
    assert!(out.is_empty(), "{args:?} printed:\n{out}");
    assert_one_error_line(&err, needles);
}

#[test]
fn show_rejects_every_malformed_torrent_with_one_line() {
    for path in bad_torrents() {
        let p = path.to_str().unwrap();
        assert_refused(&["show", p], &[p]);
    }
}

#[test]
fn peer_rejects_every_malformed_torrent_before_touching_the_folder() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("dl");
    let dir_s = dir.to_str().unwrap();
    for path in bad_torrents() {
        let p = path.to_str().unwrap();
        assert_refused(
            &[
                "peer",
                "--dir",
                dir_s,
                "--torrent",
                p,
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
            ],
            &[p],
        );
        assert!(
            !dir.exists(),
            "peer created {dir_s} for a torrent it rejected ({p})"
        );
    }
}

#[test]
fn a_missing_torrent_file_is_named() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("nowhere.torrent");
    let m = missing.to_str().unwrap();
    assert_refused(&["show", m], &[m, "No such file"]);
    let dir = work.path().join("dl");
    assert_refused(
        &[
            "peer",
            "--dir",
            dir.to_str().unwrap(),
            "--torrent",
            m,
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
        ],
        &[m, "No such file"],
    );
}

#[test]
fn peer_port_in_use_names_the_address() {
    let work = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let torrent = testdata().join("file.torrent");
    assert_refused(
        &[
            "peer",
            "--dir",
            work.path().join("dl").to_str().unwrap(),
            "--torrent",
            torrent.to_str().unwrap(),
            "--port",
            &addr.port().to_string(),
            "--bind",
            "127.0.0.1",
        ],
        &[&addr.to_string(), "in use"],
    );
}

#[test]
fn tracker_port_in_use_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_refused(&["tracker", "--bind", &addr], &[&addr, "in use"]);
}

#[test]
fn unreachable_tracker_is_one_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let torrent = testdata().join("file.torrent");
    let url = format!("http://127.0.0.1:{}/announce", closed_port());
    let (code, out, err) = run_bounded(
        &[
            "peer",
            "--dir",
            work.path().join("dl").to_str().unwrap(),
            "--torrent",
            torrent.to_str().unwrap(),
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--tracker",
            &url,
            // With the DHT on, a dead tracker is not fatal (see tests/dht.rs).
            "--no-dht",
        ],
        QUICK,
    );
    assert_ne!(code, 0, "{out}");
    assert!(out.lines().all(|l| l.starts_with("listening on")), "{out}");
    assert_one_error_line(&err, &[&url, "novel.txt"]);
}

#[test]
fn help_works_for_every_subcommand() {
    let cases: [(&[&str], &[&str]); 5] = [
        (&["--help"], &["tracker", "peer", "create", "show"]),
        (
            &["tracker", "--help"],
            &[
                "--bind",
                "--interval",
                "--peer-timeout",
                "--workers",
                "--trusted-proxy",
                "--max-swarms",
                "--whitelist",
            ],
        ),
        (
            &["peer", "--help"],
            &[
                "--dir",
                "--torrent",
                "--bind",
                "--port",
                "--tracker",
                "--connect",
                "--exit-when-done",
            ],
        ),
        (
            &["create", "--help"],
            &[
                "--announce",
                "--output",
                "--piece-length",
                "--comment",
                "--private",
            ],
        ),
        (&["show", "--help"], &["<TORRENT>"]),
    ];
    for (args, flags) in cases {
        let (code, out, err) = run_bounded(args, QUICK);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            out.starts_with(|c: char| c.is_alphabetic()) && out.contains("Usage:"),
            "{args:?}:\n{out}"
        );
        for flag in flags {
            assert!(out.contains(flag), "{args:?} help lacks {flag}:\n{out}");
        }
    }
    // A mistyped command is refused with a usage hint, not run.
    let (code, out, err) = run_bounded(&["seed"], QUICK);
    assert_ne!(code, 0);
    assert!(out.is_empty() && err.contains("Usage:"), "{err}");
}

/// SHA-1 of the bytes of the top-level `info` value, found by hand: `create` sorts keys, and
/// no key after `info` is written, so the value runs from after `4:info` to the final `e`.
fn info_hash_by_hand(torrent: &[u8]) -> String {
    let key = b"4:info";
    let at = torrent
        .windows(key.len())
        .position(|w| w == key)
        .expect("an info key")
        + key.len();
    assert_eq!(torrent.last(), Some(&b'e'));
    sha1_smol::Sha1::from(&torrent[at..torrent.len() - 1])
        .digest()
        .to_string()
}

#[test]
fn create_then_show_round_trip() {
    let work = tempfile::tempdir().unwrap();
    let content = work.path().join("bundle");
    std::fs::create_dir_all(content.join("inner")).unwrap();
    std::fs::write(content.join("one.txt"), b"first file\n".repeat(5000)).unwrap();
    std::fs::write(content.join("inner/two.bin"), vec![7u8; 70_001]).unwrap();
    let out_path = work.path().join("bundle.torrent");
    let url = "http://127.0.0.1:6969/announce";
    let (code, out, err) = run_bounded(
        &[
            "create",
            content.to_str().unwrap(),
            "--announce",
            url,
            "--piece-length",
            "16384",
            "--comment",
            "round trip",
            "--output",
            out_path.to_str().unwrap(),
        ],
        QUICK,
    );
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&out_path).unwrap();
    let hash = info_hash_by_hand(&bytes);
    assert!(
        out.contains(&hash),
        "create reports the info hash {hash}: {out}"
    );

    let (code, shown, err) = run_bounded(&["show", out_path.to_str().unwrap()], QUICK);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    let total = 5000 * 11 + 70_001;
    for line in [
        "Name: bundle".to_string(),
        format!("Hash: {hash}"),
        "Comment: round trip".into(),
        format!("Piece Count: {}", (total as u64).div_ceil(16384)),
        "Privacy: Public torrent".into(),
        format!("  {url}"),
    ] {
        assert!(
            shown.lines().any(|l| l == line),
            "show lacks {line:?}:\n{shown}"
        );
    }
    assert!(shown.contains(&format!("{total} bytes")), "{shown}");
    for file in [Path::new("one.txt"), Path::new("inner/two.bin")] {
        assert!(
            shown.contains(file.to_str().unwrap()),
            "show lacks {file:?}:\n{shown}"
        );
    }
}

#[test]
fn odd_torrent_paths_and_folders_are_refused_in_one_line() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("dl");
    let dir_s = dir.to_str().unwrap();
    let folder = work.path().to_str().unwrap();
    let torrent = testdata().join("file.torrent");
    let torrent = torrent.to_str().unwrap();
    // An endless file is refused after a bounded read, a folder by the OS.
    for (path, needle) in [("/dev/zero", "larger than"), (folder, "directory")] {
        assert_refused(&["show", path], &[path, needle]);
    }
    let (code, out, err) = run_bounded(
        &[
            "peer",
            "--dir",
            dir_s,
            "--torrent",
            torrent,
            "--torrent",
            torrent,
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
        ],
        QUICK,
    );
    assert_ne!(code, 0, "{out}");
    assert_one_error_line(&err, &[torrent, "twice"]);
    // A download folder that is a file.
    let file = work.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let file_s = file.to_str().unwrap();
    assert_refused(
        &[
            "peer",
            "--dir",
            file_s,
            "--torrent",
            torrent,
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
        ],
        &[file_s],
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"x",
        "the file was left alone"
    );
}

#[test]
fn create_refuses_bad_input_in_one_line_and_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let content = work.path().join("content");
    std::fs::create_dir_all(content.join("empty-folder")).unwrap();
    std::fs::write(content.join("empty.txt"), b"").unwrap();
    let empty = content.to_str().unwrap();
    let missing = work.path().join("missing");
    let missing = missing.to_str().unwrap();
    std::fs::write(work.path().join("data.bin"), vec![1u8; 50_000]).unwrap();
    let data = work.path().join("data.bin");
    let data = data.to_str().unwrap();
    let output = work.path().join("out.torrent");
    let out_s = output.to_str().unwrap();
    let nowhere = work.path().join("no/such/folder/out.torrent");
    let nowhere = nowhere.to_str().unwrap();
    let url = "http://127.0.0.1:6969/announce";
    let cases: [(&[&str], &[&str]); 4] = [
        (&[missing, "--output", out_s], &[missing]),
        (&[empty, "--output", out_s], &[empty, "no data"]),
        (
            &[data, "--piece-length", "1000", "--output", out_s],
            &["1000", "power of two"],
        ),
        (&[data, "--output", nowhere], &[nowhere]),
    ];
    for (args, needles) in cases {
        let mut all = vec!["create", "--announce", url];
        all.extend(args);
        assert_refused(&all, needles);
        assert!(!output.exists(), "{all:?} wrote {out_s}");
    }
}
