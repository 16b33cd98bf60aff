//! The committed torrents in testdata/ against their content, and against independent tools
//! (mktorrent made some of them; transmission-show recorded the expected info hashes).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use piecemeal::metainfo::{self, CreateOptions, InfoHash, Metainfo, MetainfoError};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

/// The hash recorded for `name` in an `expected-hash.txt` (lines of `<file> <40 hex>`).
fn expected_hash(list: &str, name: &str) -> InfoHash {
    let text = fs::read_to_string(testdata(list)).unwrap();
    let hex = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} not listed in {list}"));
    InfoHash::from_hex(hex.trim()).unwrap()
}

/// Hashes every piece of the content under `dir` (laid out as the torrent says) independently of
/// the library's own hashing, and checks each against the torrent.
fn assert_pieces_match(m: &Metainfo, dir: &Path) {
    let info = &m.info;
    let mut data = Vec::new();
    for file in &info.files {
        let path = dir.join(info.relative_path(file));
        let mut f = fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let before = data.len();
        f.read_to_end(&mut data).unwrap();
        assert_eq!(
            (data.len() - before) as u64,
            file.length,
            "{}",
            path.display()
        );
    }
    let chunks: Vec<&[u8]> = data.chunks(info.piece_length as usize).collect();
    assert_eq!(chunks.len(), info.piece_count());
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.len() as u64, info.piece_size(i), "piece {i} size");
        let hash = sha1_smol::Sha1::from(chunk).digest().bytes();
        assert_eq!(hash, info.pieces[i], "piece {i} of {}", info.name);
    }
}

/// The options examples/make-test-torrents.rs uses.
fn demo_options() -> CreateOptions {
    CreateOptions {
        announce: vec!["http://127.0.0.1:6969/announce".to_string()],
        piece_length: Some(32768),
        created_by: "piecemeal".to_string(),
        ..CreateOptions::default()
    }
}

#[test]
fn demo_torrents_match_content_and_transmission() {
    for (torrent, content, multi_file) in [
        ("file.torrent", "novel.txt", false),
        ("folder.torrent", "album", true),
    ] {
        let m = Metainfo::load(&testdata(torrent)).unwrap();
        assert_eq!(m.info_hash, expected_hash("expected-hash.txt", torrent));
        assert_eq!(m.info.name, content);
        assert_eq!(m.info.multi_file, multi_file);
        assert_eq!(m.info.piece_length, 32768);
        assert_eq!(
            m.tracker_tiers(),
            vec![vec!["http://127.0.0.1:6969/announce".to_string()]]
        );
        // Pieces must span file boundaries for the demo to exercise that path.
        assert!(
            m.info.files.iter().all(|f| f.length % 32768 != 0),
            "{torrent}"
        );
        for peer in ["peer1", "peer2"] {
            assert_pieces_match(&m, &testdata(peer));
        }
        // The committed file is exactly what `create` makes today (regenerate with
        // `cargo run --example make-test-torrents` if this fails on purpose).
        let made = metainfo::create(&testdata("peer1").join(content), &demo_options()).unwrap();
        assert_eq!(made, fs::read(testdata(torrent)).unwrap(), "{torrent}");
    }
}

#[test]
fn folder_torrent_layout() {
    let m = Metainfo::load(&testdata("folder.torrent")).unwrap();
    let paths: Vec<String> = m.info.files.iter().map(|f| f.path.join("/")).collect();
    assert_eq!(
        paths,
        [
            "art/cover.ppm",
            "readme.txt",
            "tracks/01-intro.dat",
            "tracks/02-theme.dat"
        ]
    );
    let text = m.describe();
    assert!(text.contains("  3: album/tracks/02-theme.dat ("), "{text}");
    assert!(
        text.lines().any(|l| l
            == format!(
                "Hash: {}",
                expected_hash("expected-hash.txt", "folder.torrent")
            )),
        "{text}"
    );
}

#[test]
fn mktorrent_torrents_parse_with_transmission_hash() {
    for (torrent, content) in [("multi.torrent", "mkdemo"), ("single.torrent", "solo.txt")] {
        let m = Metainfo::load(&testdata("mktorrent").join(torrent)).unwrap();
        assert_eq!(
            m.info_hash,
            expected_hash("mktorrent/expected-hash.txt", torrent)
        );
        assert_eq!(m.info.name, content);
        assert_eq!(m.comment.as_deref(), Some("made by mktorrent"));
        assert!(m.created_by.as_deref().unwrap().starts_with("mktorrent"));
        assert_eq!(m.creation_date, None);
        let content_root = testdata("mktorrent/content");
        assert_pieces_match(&m, &content_root);

        // An independent implementation and ours agree byte for byte on the info dictionary.
        let mine = metainfo::create(&content_root.join(content), &demo_options()).unwrap();
        assert_eq!(Metainfo::from_bytes(&mine).unwrap().info_hash, m.info_hash);
    }
}

#[test]
fn malformed_torrents_are_rejected_with_the_file_name() {
    for (name, expected) in [
        ("traversal.torrent", "info.files[0].path[0] is `.` or `..`"),
        (
            "absolute-name.torrent",
            "info.name contains a path separator",
        ),
        ("piece-count.torrent", "info.pieces holds 1 hashes but"),
        ("zero-piece-length.torrent", "info.piece length is zero"),
        ("truncated.torrent", "invalid bencode at byte"),
        ("deep.torrent", "nested deeper than"),
        ("huge-int.torrent", "malformed integer"),
        ("trailing.torrent", "unexpected data after the value"),
    ] {
        let path = testdata("bad").join(name);
        let err = Metainfo::load(&path).unwrap_err();
        assert!(
            matches!(err, MetainfoError::InFile { .. }),
            "{name}: {err:?}"
        );
        let msg = err.to_string();
        let prefix = format!("{}: ", path.display());
        assert!(
            msg.starts_with(&prefix) && msg.contains(expected),
            "{name}: {msg}"
        );
    }
}
