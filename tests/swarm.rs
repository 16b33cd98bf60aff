//! End-to-end runs of real `piecemeal` processes on 127.0.0.1: a tracker, seeders and clients.

mod support;

use piecemeal::metainfo::Metainfo;
use piecemeal::wire::{
    Handshake, Message, MessageReader, max_message_len, read_handshake, write_handshake,
};
use std::net::TcpListener;
use std::time::Duration;
use support::{
    Proc, assert_same_tree, closed_port, copy_tree, field, noise_torrent, peer, testdata, tracker,
};

const DOWNLOAD: Duration = Duration::from_secs(60);

#[test]
fn client_fetches_both_torrents_from_two_seeders_then_seeds_them() {
    let work = tempfile::tempdir().unwrap();
    let (mut tracker, url) = tracker();
    let file = testdata().join("file.torrent");
    let folder = testdata().join("folder.torrent");
    let torrents = [file.as_path(), folder.as_path()];
    let mut seeders = Vec::new();
    for name in ["peer1", "peer2"] {
        let dir = work.path().join(name);
        copy_tree(&testdata().join(name), &dir);
        let mut s = peer(&dir, &torrents, &["--tracker", &url]);
        s.wait_listening("listening on");
        s.wait_for("seeding", Duration::from_secs(20));
        s.wait_for("seeding", Duration::from_secs(20));
        seeders.push(s);
    }
    let client_dir = work.path().join("client");
    let mut client = peer(&client_dir, &torrents, &["--tracker", &url]);
    let client_addr = client.wait_listening("listening on");
    for _ in 0..2 {
        let line = client.wait_for("complete", DOWNLOAD);
        let credited: u64 = field(&line, "peers")
            .split(',')
            .map(|p| p.rsplit('=').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(
            credited.to_string(),
            field(&line, "bytes"),
            "bytes credited to seeders: {line}"
        );
    }
    assert_same_tree(&testdata().join("peer1"), &client_dir);

    // The client now seeds: a second client gets everything from it alone.
    for s in &mut seeders {
        assert!(s.terminate().success());
    }
    let second_dir = work.path().join("second");
    let mut second = peer(
        &second_dir,
        &torrents,
        &["--tracker", &url, "--exit-when-done"],
    );
    second.wait_for("complete", DOWNLOAD);
    let line = second.wait_for("complete", DOWNLOAD);
    assert!(
        field(&line, "peers").starts_with(&client_addr.to_string()),
        "{line}"
    );
    assert!(second.wait_exit(DOWNLOAD).success());
    assert_same_tree(&testdata().join("peer1"), &second_dir);
    assert!(client.terminate().success(), "Ctrl-C/SIGTERM exits cleanly");
    assert!(tracker.terminate().success());
}

#[test]
fn pieces_are_combined_from_two_partial_seeders() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "split", 2 << 20, 1 << 15);
    // Seeder A has only the first file; seeder B has the second file and a first file whose
    // first half is zeroed. Only together do they hold every piece.
    let a = work.path().join("a");
    let b = work.path().join("b");
    copy_tree(&work.path().join("seed"), &a);
    copy_tree(&work.path().join("seed"), &b);
    std::fs::remove_file(a.join("split/deep/b.bin")).unwrap();
    let first = b.join("split/a.bin");
    let mut bytes = std::fs::read(&first).unwrap();
    let half = bytes.len() / 2;
    bytes[..half].fill(0);
    std::fs::write(&first, bytes).unwrap();

    // Each seeder announces to a tracker of its own, so the two never meet: together they would
    // complete each other before the client connects, and one of them could then serve it all.
    // The client finds A through A's tracker and dials B directly.
    let (_tracker_a, url_a) = tracker();
    let (_tracker_b, url_b) = tracker();
    let mut seeder_a = peer(&a, &[&torrent], &["--tracker", &url_a]);
    seeder_a.wait_listening("listening on");
    let mut seeder_b = peer(&b, &[&torrent], &["--tracker", &url_b]);
    let b_addr = seeder_b.wait_listening("listening on").to_string();
    let client_dir = work.path().join("client");
    let mut client = peer(
        &client_dir,
        &[&torrent],
        &[
            "--tracker",
            &url_a,
            "--connect",
            &b_addr,
            "--exit-when-done",
        ],
    );
    let line = client.wait_for("complete", DOWNLOAD);
    assert!(client.wait_exit(DOWNLOAD).success());
    assert_same_tree(&work.path().join("seed"), &client_dir);
    // Completing at all proves both served (neither holds every piece); the credits agree.
    let sources = field(&line, "pieces")
        .split(',')
        .filter(|p| !p.ends_with("=0"))
        .count();
    assert_eq!(sources, 2, "{line}");
}

#[test]
fn a_killed_client_resumes_without_fetching_again() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "resume", 3 << 20, 1 << 16);
    let meta = Metainfo::load(&torrent).unwrap();
    let total = meta.info.total_length();
    // A partial seeder has only the first file, about a third of the torrent.
    let partial = work.path().join("partial/resume");
    copy_tree(&work.path().join("seed/resume"), &partial);
    std::fs::remove_file(partial.join("deep/b.bin")).unwrap();
    let (_tracker, url) = tracker();
    let mut half = peer(
        &work.path().join("partial"),
        &[&torrent],
        &["--tracker", &url],
    );
    half.wait_listening("listening on");
    let client_dir = work.path().join("client");
    let mut client = peer(&client_dir, &[&torrent], &["--tracker", &url]);
    client.wait_listening("listening on");
    let first = client_dir.join("resume/a.bin");
    let want = std::fs::read(work.path().join("seed/resume/a.bin")).unwrap();
    let deadline = std::time::Instant::now() + DOWNLOAD;
    while std::fs::read(&first).unwrap_or_default() != want {
        assert!(
            std::time::Instant::now() < deadline,
            "client never got the first file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    client.child.kill().unwrap(); // SIGKILL: no chance to clean up
    client.child.wait().unwrap();
    drop(half);

    let mut seeder = peer(&work.path().join("seed"), &[&torrent], &["--tracker", &url]);
    seeder.wait_listening("listening on");
    let mut again = peer(
        &client_dir,
        &[&torrent],
        &["--tracker", &url, "--exit-when-done"],
    );
    let line = again.wait_for("complete", DOWNLOAD);
    let fetched: u64 = field(&line, "bytes").parse().unwrap();
    assert!(
        fetched < total * 3 / 4,
        "fetched {fetched} of {total}: resume started over"
    );
    assert!(again.wait_exit(DOWNLOAD).success());
    assert_same_tree(&work.path().join("seed"), &client_dir);
}

/// A fake seeder that claims every piece and answers every request with garbage.
fn lying_seeder(meta: &Metainfo) -> (std::net::SocketAddr, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let pieces = meta.info.piece_count();
    let info_hash = meta.info_hash.0;
    let handle = std::thread::spawn(move || {
        let mut stream = support::accept_plaintext(&listener, Duration::from_secs(30));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let theirs = read_handshake(&mut stream).unwrap();
        assert_eq!(theirs.info_hash, info_hash);
        write_handshake(
            &mut stream,
            &Handshake::new(info_hash, *b"-XX0000-liarliarliar"),
        )
        .unwrap();
        let mut out = Vec::new();
        Message::Bitfield(
            piecemeal::bitfield::Bitfield::full(pieces)
                .as_bytes()
                .to_vec(),
        )
        .encode_into(&mut out);
        Message::Unchoke.encode_into(&mut out);
        std::io::Write::write_all(&mut stream, &out).unwrap();
        let mut reader = MessageReader::new(max_message_len(pieces));
        let mut served = 0;
        // Serve garbage until the client hangs up on us.
        while let Ok(message) = reader.read(&mut stream) {
            if let Message::Request {
                index,
                begin,
                length,
            } = message
            {
                let piece = Message::Piece {
                    index,
                    begin,
                    data: vec![0xAB; length as usize],
                };
                if std::io::Write::write_all(&mut stream, &piece.to_bytes()).is_err() {
                    break;
                }
                served += 1;
            }
        }
        served
    });
    (addr, handle)
}

#[test]
fn corrupt_blocks_from_one_seeder_do_not_spoil_the_download() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "honest", 2 << 20, 1 << 15);
    let meta = Metainfo::load(&torrent).unwrap();
    let (liar, liar_thread) = lying_seeder(&meta);
    let (_tracker, url) = tracker();
    // The honest seeder is capped, so the download lasts long enough for the liar (reached
    // only after the client's encrypted attempt fails) to be asked for blocks.
    let mut honest = peer(
        &work.path().join("seed"),
        &[&torrent],
        &["--tracker", &url, "--max-upload-rate", "1M"],
    );
    let honest_addr = honest.wait_listening("listening on");
    let client_dir = work.path().join("client");
    let liar_s = liar.to_string();
    let honest_s = honest_addr.to_string();
    let mut client = peer(
        &client_dir,
        &[&torrent],
        &[
            "--connect",
            &liar_s,
            "--connect",
            &honest_s,
            "--exit-when-done",
        ],
    );
    let line = client.wait_for("complete", DOWNLOAD);
    assert!(client.wait_exit(DOWNLOAD).success());
    assert_same_tree(&work.path().join("seed"), &client_dir);
    assert!(
        !field(&line, "peers").contains(&liar_s),
        "no piece credited to the liar: {line}"
    );
    let served = liar_thread.join().unwrap();
    assert!(served > 0, "the liar was asked for blocks");
    assert!(
        client.stderr().contains("failed its hash"),
        "{}",
        client.stderr()
    );
}

#[test]
fn a_connect_peer_that_comes_up_later_is_dialled_again() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "late", 1 << 20, 1 << 15);
    let port = closed_port();
    let seeder_addr = format!("127.0.0.1:{port}");
    // The torrent's own tracker is unreachable: the client runs on --connect alone.
    let client_dir = work.path().join("client");
    let mut client = peer(
        &client_dir,
        &[&torrent],
        &["--connect", &seeder_addr, "--exit-when-done"],
    );
    client.wait_listening("listening on");
    std::thread::sleep(Duration::from_secs(2));
    let (_tracker, url) = tracker();
    let seed_dir = work.path().join("seed");
    let port = port.to_string();
    let mut args = vec!["peer", "--dir", seed_dir.to_str().unwrap(), "--port", &port];
    args.extend(["--bind", "127.0.0.1"]);
    args.extend(["--torrent", torrent.to_str().unwrap(), "--tracker", &url]);
    let mut seeder = Proc::start(&args);
    seeder.wait_listening("listening on");
    let line = client.wait_for("complete", DOWNLOAD);
    assert!(field(&line, "peers").starts_with(&seeder_addr), "{line}");
    assert!(client.wait_exit(DOWNLOAD).success());
    assert_same_tree(&seed_dir, &client_dir);
}
