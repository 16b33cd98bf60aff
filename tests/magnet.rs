//! Magnet links (BEP 9 over BEP 10) between processes on 127.0.0.1: piecemeal fetches a
//! torrent's metadata from a piecemeal seeder found through the link's tracker (or its `x.pe`),
//! saves it, and downloads; a link with nothing but the info hash finds the seeder through the
//! DHT; a restart finds the saved torrent; and scripted peers that answer
//! `ut_metadata` with wrong or oversized data cannot make it accept their metadata.

mod support;

use piecemeal::metainfo::Metainfo;
use piecemeal::wire::extended::{ExtHandshake, MetadataMessage, UT_METADATA};
use piecemeal::wire::{Handshake, Message, MessageReader, max_message_len, read_handshake};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::{Proc, assert_same_tree, closed_port, noise_torrent, peer, run_bounded, tracker};

const DOWNLOAD: Duration = Duration::from_secs(40);

fn magnet_of(meta: &Metainfo, extra: &str) -> String {
    format!(
        "magnet:?xt=urn:btih:{}&dn={}{extra}",
        meta.info_hash, meta.info.name
    )
}

/// A seeder of a fresh 2 MiB torrent named `name`, announcing to `tracker` when given.
fn seeder(work: &Path, name: &str, tracker: Option<&str>) -> (Proc, Metainfo, SocketAddr) {
    let torrent = noise_torrent(work, name, 2 << 20, 64 << 10);
    let meta = Metainfo::load(&torrent).unwrap();
    // Without a tracker, a peer that cannot connect keeps it running.
    let nobody = format!("127.0.0.1:{}", closed_port());
    let extra = match tracker {
        Some(url) => vec!["--tracker", url],
        None => vec!["--connect", &nobody],
    };
    let mut seed = peer(&work.join("seed"), &[&torrent], &extra);
    let addr = seed.wait_listening("listening on");
    seed.wait_for("seeding", DOWNLOAD);
    (seed, meta, addr)
}

#[test]
fn magnet_with_a_tracker_fetches_metadata_saves_it_and_downloads() {
    let work = tempfile::tempdir().unwrap();
    let (_tracker, url) = tracker();
    let (_seed, meta, _) = seeder(work.path(), "content", Some(&url));
    let client = work.path().join("client");
    let link = magnet_of(&meta, &format!("&tr={url}"));
    let mut leech = peer(&client, &[], &["--magnet", &link, "--exit-when-done"]);
    let line = leech.wait_for("metadata", DOWNLOAD);
    let saved = client.join("content.torrent");
    assert!(
        line.ends_with(&format!("saved={}", saved.display())),
        "{line}"
    );
    leech.wait_for("complete", DOWNLOAD);
    assert!(leech.wait_exit(DOWNLOAD).success());
    assert_same_tree(&work.path().join("seed/content"), &client.join("content"));
    let saved_meta = Metainfo::load(&saved).unwrap();
    assert_eq!(saved_meta.info_hash, meta.info_hash);
    assert_eq!(saved_meta.announce.as_deref(), Some(url.as_str()));

    // A restart with the same link finds the saved torrent: no metadata phase, no new file.
    let before = std::fs::read(&saved).unwrap();
    let mut again = peer(&client, &[], &["--magnet", &link, "--exit-when-done"]);
    let line = again.wait_for("metadata", DOWNLOAD);
    assert!(line.contains("secs=0.00"), "{line}");
    assert!(again.wait_exit(DOWNLOAD).success());
    assert_eq!(std::fs::read(&saved).unwrap(), before);
}

#[test]
fn magnet_with_only_a_peer_address_and_a_different_file_in_the_way() {
    let work = tempfile::tempdir().unwrap();
    let (_seed, meta, addr) = seeder(work.path(), "content", None);
    let client = work.path().join("client");
    // Another torrent of the same name is there already: it must stay as it is.
    std::fs::create_dir_all(&client).unwrap();
    std::fs::write(client.join("content.torrent"), b"not this one").unwrap();
    let link = magnet_of(&meta, &format!("&x.pe={addr}"));
    let mut leech = peer(&client, &[], &["--magnet", &link, "--exit-when-done"]);
    let line = leech.wait_for("metadata", DOWNLOAD);
    let short = &meta.info_hash.hex()[..8];
    assert!(
        line.ends_with(&format!("content-{short}.torrent")),
        "{line}"
    );
    leech.wait_for("complete", DOWNLOAD);
    assert_same_tree(&work.path().join("seed/content"), &client.join("content"));
    assert_eq!(
        std::fs::read(client.join("content.torrent")).unwrap(),
        b"not this one"
    );
}

#[test]
fn magnet_with_nothing_but_the_info_hash_finds_the_seeder_through_the_dht() {
    let work = tempfile::tempdir().unwrap();
    // No tracker anywhere; the seeder's only DHT contact is the leecher, once it asks.
    let (_seed, meta, addr) = seeder(work.path(), "content", None);
    let client = work.path().join("client");
    let link = format!("magnet:?xt=urn:btih:{}", meta.info_hash);
    let boot = addr.to_string();
    let args = [
        "--magnet",
        &link,
        "--dht-bootstrap",
        &boot,
        "--exit-when-done",
    ];
    let mut leech = peer(&client, &[], &args);
    let line = leech.wait_for("metadata", DOWNLOAD);
    assert!(
        line.starts_with(&format!("metadata {} content ", meta.info_hash)),
        "{line}"
    );
    leech.wait_for("complete", DOWNLOAD);
    assert!(leech.wait_exit(DOWNLOAD).success());
    assert_same_tree(&work.path().join("seed/content"), &client.join("content"));
    let saved = Metainfo::load(&client.join("content.torrent")).unwrap();
    assert_eq!(saved.info_hash, meta.info_hash);
    // The seeder was found by a lookup for the metadata, as no other source named it.
    assert!(
        (leech.stderr().lines()).any(|l| l.contains("DHT lists 1 peers for the metadata")),
        "{}",
        leech.stderr()
    );
}

/// How a scripted peer lies about the metadata.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// The right size, pieces of the right length, the wrong bytes.
    WrongBytes,
    /// A metadata size far over any bound.
    HugeSize,
    /// A piece longer than 16 KiB.
    OversizedPiece,
    /// A piece that was not asked for.
    UnaskedPiece,
}

/// A peer that claims the torrent `info_hash` and answers `ut_metadata` with `lie`; counts the
/// connections it gets.
fn liar(info_hash: [u8; 20], size: usize, lie: Lie) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || lie_to(stream, info_hash, size, lie));
        }
    });
    (addr, connections)
}

/// One connection of a [`liar`].
fn lie_to(mut stream: TcpStream, info_hash: [u8; 20], size: usize, lie: Lie) -> Option<()> {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .ok()?;
    let theirs = read_handshake(&mut stream).ok()?;
    assert_eq!(theirs.info_hash, info_hash);
    stream
        .write_all(&Handshake::new(info_hash, [b'L'; 20]).to_bytes())
        .ok()?;
    let claimed = match lie {
        Lie::HugeSize => 1 << 30,
        _ => size as u64,
    };
    let ours = ExtHandshake {
        m: BTreeMap::from([(UT_METADATA.to_string(), 3)]),
        metadata_size: Some(claimed),
        ..ExtHandshake::default()
    };
    let send = |stream: &mut TcpStream, id, payload| {
        stream.write_all(&Message::Extended { id, payload }.to_bytes())
    };
    send(&mut stream, 0, ours.encode()).ok()?;
    let mut reader = MessageReader::new(max_message_len(1 << 20));
    let mut their_id = None;
    loop {
        let Message::Extended { id, payload } = reader.read(&mut stream).ok()? else {
            continue;
        };
        if id == 0 {
            their_id = ExtHandshake::parse(&payload).ok()?.id_of(UT_METADATA);
            continue;
        }
        let Ok(MetadataMessage::Request(piece)) = MetadataMessage::parse(&payload) else {
            continue;
        };
        let len = (size - piece as usize * 16384).min(16384);
        let (piece, len) = match lie {
            Lie::OversizedPiece => (piece, 16385),
            Lie::UnaskedPiece => (piece + 100, len),
            _ => (piece, len),
        };
        let data = MetadataMessage::Data {
            piece,
            total_size: size as u64,
            data: vec![0xab; len],
        };
        send(&mut stream, their_id?, data.encode()).ok()?;
    }
}

#[test]
fn peers_with_wrong_or_oversized_metadata_are_banned_and_nothing_is_accepted() {
    let work = tempfile::tempdir().unwrap();
    // 1024 pieces: 20 KiB of hashes, two metadata pieces.
    let torrent = noise_torrent(work.path(), "content", 16 << 20, 16 << 10);
    let meta = Metainfo::load(&torrent).unwrap();
    let size = meta.info_bytes.0.len();
    assert!(size > 16384, "several metadata pieces: {size}");
    let lies = [
        Lie::WrongBytes,
        Lie::HugeSize,
        Lie::OversizedPiece,
        Lie::UnaskedPiece,
    ];
    let liars: Vec<_> = lies
        .iter()
        .map(|&lie| liar(meta.info_hash.0, size, lie))
        .collect();
    let peers: String = liars.iter().map(|(a, _)| format!("&x.pe={a}")).collect();
    let client = work.path().join("client");
    let mut leech = peer(&client, &[], &["--magnet", &magnet_of(&meta, &peers)]);
    // Wait until every liar has been judged (bounded), then a little past the retry delay
    // for a peer that was not banned.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let judged = |err: &str| {
        liars
            .iter()
            .all(|(a, _)| err.contains(&format!("{a} sent bad metadata, banned")))
    };
    while !judged(&leech.stderr()) {
        assert!(std::time::Instant::now() < deadline, "{}", leech.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Through the delay after which a peer that was not banned is asked again, no liar is
    // asked a second time and nothing is accepted.
    let watch_until = std::time::Instant::now() + Duration::from_secs(11);
    while std::time::Instant::now() < watch_until {
        for ((addr, connections), lie) in liars.iter().zip(lies) {
            let n = connections.load(Ordering::SeqCst);
            assert_eq!(n, 1, "{lie:?} peer {addr} was asked again after its ban");
        }
        assert!(
            !leech.stderr().contains("bytes) from"),
            "{}",
            leech.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let saved: Vec<_> = std::fs::read_dir(&client)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        saved
            .iter()
            .all(|p| p.extension() != Some("torrent".as_ref())),
        "{saved:?}"
    );
    leech.terminate();
}

#[test]
fn bad_magnet_links_are_usage_errors_naming_the_problem() {
    for (uri, needle) in [
        ("http://example.com/a.torrent", "not a magnet link"),
        ("magnet:?dn=x", "without a BitTorrent info hash"),
        ("magnet:?xt=urn:btih:1234", "neither 40 hex nor 32 base32"),
        ("magnet:?xt=urn:btih:%zz", "not valid percent-encoded"),
    ] {
        let (code, out, err) = run_bounded(
            &["peer", "--dir", "unused", "--magnet", uri],
            Duration::from_secs(20),
        );
        assert_eq!(code, 2, "{uri}: {err}");
        assert!(out.is_empty() && err.contains(needle), "{uri}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (code, _, err) = run_bounded(&["peer", "--dir", "unused"], Duration::from_secs(20));
    assert_eq!(code, 2);
    assert!(
        err.contains("--torrent") && err.contains("--magnet"),
        "{err}"
    );
    assert!(!Path::new("unused").exists());
}
