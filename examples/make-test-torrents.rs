//! Writes testdata/file.torrent and testdata/folder.torrent from the demo content in
//! testdata/peer1 (see scripts/gen-testdata.py). Run from the repository root:
//! `cargo run --example make-test-torrents`. tests/metainfo.rs checks the committed files still
//! match what this produces.

use std::path::Path;
use std::process::ExitCode;

use piecemeal::metainfo::{self, CreateOptions};

fn main() -> ExitCode {
    let opts = CreateOptions {
        announce: vec!["http://127.0.0.1:6969/announce".to_string()],
        piece_length: Some(32768),
        // No version number, so a version bump does not change the committed torrents.
        created_by: "piecemeal".to_string(),
        ..CreateOptions::default()
    };
    for (content, out) in [
        ("testdata/peer1/novel.txt", "testdata/file.torrent"),
        ("testdata/peer1/album", "testdata/folder.torrent"),
    ] {
        let written = match metainfo::create(Path::new(content), &opts) {
            Ok(bytes) => std::fs::write(out, bytes).map_err(|e| format!("{out}: {e}")),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = written {
            eprintln!("make-test-torrents: {e}");
            return ExitCode::FAILURE;
        }
        println!("wrote {out}");
    }
    ExitCode::SUCCESS
}
