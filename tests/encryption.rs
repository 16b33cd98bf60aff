//! Message stream encryption between real `piecemeal` processes: two peers that require it
//! exchange a torrent over RC4, a peer that requires it refuses plaintext, and a peer that
//! accepts it drops a stranger who never finds the handshake's marker after a bounded read.

mod support;

use piecemeal::wire::Handshake;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::{assert_same_tree, noise_torrent, peer, tracker};

/// How long a refused or dropped connection may take to be closed by the peer.
const DROP_BOUND: Duration = Duration::from_secs(5);

/// Reads until the peer closes; how many bytes it sent first. Panics if it stays open.
fn read_until_closed(mut stream: TcpStream) -> usize {
    stream.set_read_timeout(Some(DROP_BOUND)).unwrap();
    let started = Instant::now();
    let mut got = 0;
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("still open after {:?}: {e}", started.elapsed()),
        }
    }
}

#[test]
fn two_peers_requiring_encryption_exchange_a_torrent_over_rc4() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "secret", 600_000, 1 << 15);
    let seed = work.path().join("seed");
    let (_tracker, url) = tracker();
    let mut seeder = peer(
        &seed,
        &[&torrent],
        &["--encryption", "require", "--tracker", &url],
    );
    let addr = seeder.wait_listening("listening on");
    let leech = work.path().join("leech");
    let mut leecher = peer(
        &leech,
        &[&torrent],
        &[
            "--encryption",
            "require",
            "--connect",
            &addr.to_string(),
            "--exit-when-done",
        ],
    );
    leecher.wait_for("complete", Duration::from_secs(60));
    assert!(leecher.wait_exit(Duration::from_secs(20)).success());
    assert_same_tree(&seed.join("secret"), &leech.join("secret"));
    assert!(
        leecher
            .stderr()
            .contains(&format!("connected to {addr} (RC4)")),
        "{}",
        leecher.stderr()
    );
    assert!(seeder.stderr().contains("(RC4)"), "{}", seeder.stderr());
    seeder.terminate();
}

/// A seeder of a small torrent (and its tracker); its address and the torrent's info hash.
fn seeder(
    work: &std::path::Path,
    encryption: &str,
) -> ((support::Proc, support::Proc), SocketAddr, [u8; 20]) {
    let torrent = noise_torrent(work, "t", 40_000, 1 << 15);
    let meta = piecemeal::metainfo::Metainfo::load(&torrent).unwrap();
    let (tracker, url) = tracker();
    let mut seeder = peer(
        &work.join("seed"),
        &[&torrent],
        &["--encryption", encryption, "--tracker", &url],
    );
    let addr = seeder.wait_listening("listening on");
    seeder.wait_for("seeding", Duration::from_secs(20));
    ((seeder, tracker), addr, meta.info_hash.0)
}

#[test]
fn a_peer_requiring_encryption_refuses_a_plaintext_handshake() {
    let work = tempfile::tempdir().unwrap();
    let ((seeder, _tracker), addr, info_hash) = seeder(work.path(), "require");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(&Handshake::new(info_hash, [9; 20]).to_bytes())
        .unwrap();
    assert_eq!(read_until_closed(stream), 0, "no handshake back");
    let deadline = Instant::now() + DROP_BOUND;
    while !seeder.stderr().contains("plaintext handshake refused") {
        assert!(Instant::now() < deadline, "{}", seeder.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stranger_that_never_sends_the_marker_is_dropped_after_a_bounded_read() {
    let work = tempfile::tempdir().unwrap();
    let (_seeder, addr, _) = seeder(work.path(), "prefer");
    let mut stream = TcpStream::connect(addr).unwrap();
    // A plausible public key, then garbage where the req1 hash should be, and more of it
    // than the padding may take.
    let mut key = [0x42u8; 96];
    key[0] = 0x11;
    stream.write_all(&key).unwrap();
    stream.write_all(&[0x17; 2000]).unwrap();
    let got = read_until_closed(stream);
    assert!(
        (96..=96 + 512).contains(&got),
        "its key and padding, then the close: {got}"
    );
}
