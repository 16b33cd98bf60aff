//! Snubbing against a real `piecemeal` client: a scripted peer claims every piece, unchokes,
//! and never answers a request. With the snub time-out shortened to 3 s, the client cancels
//! all its requests to that peer once the time-out passes, keeps at most one request out to
//! it afterwards, drops it after a second time-out, and finishes the download from an honest
//! (upload-limited) seeder within a bounded time.

mod support;

use piecemeal::bitfield::Bitfield;
use piecemeal::metainfo::Metainfo;
use piecemeal::wire::{Handshake, Message, MessageReader, max_message_len};
use std::collections::HashSet;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Proc, assert_same_tree, field, noise_torrent, peer, tracker};

const SNUB_TIMEOUT: Duration = Duration::from_secs(3);
/// The whole download must be done by then (about 10 s at the seeder's limit).
const BOUND: Duration = Duration::from_secs(60);

/// What the snubbing peer saw.
#[derive(Debug)]
struct Seen {
    /// From its first request to the first cancel.
    until_cancels: Duration,
    /// Requests outstanding when the first cancel came, and how many of them were cancelled
    /// within a second.
    outstanding_then: usize,
    cancelled_then: usize,
    /// The most requests outstanding at once after those cancels.
    most_after: usize,
    /// From its first request to the client closing the connection.
    until_closed: Option<Duration>,
}

/// A peer that has everything, unchokes, and answers nothing (keep-alives only).
fn snubber(meta: &Metainfo) -> (SocketAddr, std::thread::JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (info_hash, pieces) = (meta.info_hash.0, meta.info.piece_count());
    let thread = std::thread::spawn(move || {
        let mut stream = support::accept_plaintext(&listener, Duration::from_secs(30));
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        piecemeal::wire::read_handshake(&mut stream).unwrap();
        let ours = Handshake::new(info_hash, *b"-SN0001-snubsnubsnub");
        stream.write_all(&ours.to_bytes()).unwrap();
        let full = Message::Bitfield(Bitfield::full(pieces).as_bytes().to_vec());
        stream
            .write_all(&[full.to_bytes(), Message::Unchoke.to_bytes()].concat())
            .unwrap();
        let mut reader = MessageReader::new(max_message_len(pieces));
        let mut outstanding = HashSet::new();
        let mut first_request = None;
        let mut first_cancel: Option<(Instant, usize)> = None;
        let mut cancelled_then = 0;
        let mut most_after = 0;
        let start = Instant::now();
        let until_closed = loop {
            if start.elapsed() > BOUND {
                break None;
            }
            match reader.read(&mut stream) {
                Ok(Message::Request {
                    index,
                    begin,
                    length,
                }) => {
                    first_request.get_or_insert_with(Instant::now);
                    outstanding.insert((index, begin, length));
                }
                Ok(Message::Cancel {
                    index,
                    begin,
                    length,
                }) => {
                    let (at, _) = *first_cancel.get_or_insert((Instant::now(), outstanding.len()));
                    if outstanding.remove(&(index, begin, length)) && at.elapsed() < SECOND {
                        cancelled_then += 1;
                    }
                }
                Ok(_) => {}
                Err(e) if e.is_timeout() => {
                    if stream.write_all(&Message::KeepAlive.to_bytes()).is_err() {
                        break first_request.map(|t| t.elapsed());
                    }
                }
                Err(_) => break first_request.map(|t| t.elapsed()),
            }
            if first_cancel.is_some_and(|(at, _)| at.elapsed() >= SECOND) {
                most_after = most_after.max(outstanding.len());
            }
        };
        let first_request = first_request.expect("the client asked for something");
        let (cancel_at, outstanding_then) = first_cancel.expect("the client cancelled");
        Seen {
            until_cancels: cancel_at - first_request,
            outstanding_then,
            cancelled_then,
            most_after,
            until_closed,
        }
    });
    (addr, thread)
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn a_peer_that_unchokes_and_never_answers_loses_its_pieces_to_an_honest_one() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "target", 2 << 20, 1 << 15);
    let meta = Metainfo::load(&torrent).unwrap();
    let (_tracker, url) = tracker();
    let seed_dir = work.path().join("seed");
    let mut seeder = peer(
        &seed_dir,
        &[&torrent],
        &["--tracker", &url, "--max-upload-rate", "200k"],
    );
    let seeder_addr = seeder.wait_listening("listening on");
    let (snubber_addr, snubber) = snubber(&meta);

    let dir = work.path().join("client");
    let mut command = Command::new(env!("CARGO_BIN_EXE_piecemeal"));
    command.args(["peer", "--dir", dir.to_str().unwrap(), "--port", "0"]);
    command.args([
        "--bind",
        "127.0.0.1",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    command.args(["--tracker", &url, "--exit-when-done"]);
    command.args(["--connect", &snubber_addr.to_string()]);
    command.args(["--connect", &seeder_addr.to_string()]);
    command.env("PIECEMEAL_SNUB_TIMEOUT", SNUB_TIMEOUT.as_secs().to_string());
    let started = Instant::now();
    let mut client = Proc::spawn(command);
    let line = client.wait_for("complete", BOUND);
    let took = started.elapsed();
    assert!(client.wait_exit(BOUND).success(), "{}", client.stderr());
    assert_same_tree(&seed_dir, &dir);
    // Every byte came from the honest seeder, on one connection: the client's to it, or the
    // seeder's to the client (it dials the peers the tracker lists), which then carries the
    // seeder's outgoing port. Never from the snubbing peer, which the client dials.
    let peers = field(&line, "peers");
    let (from, bytes) = peers.split_once('=').expect("one peer");
    assert_eq!(bytes, meta.info.total_length().to_string(), "{line}");
    let from: std::net::SocketAddr = from.parse().expect("an address");
    assert!(
        from == seeder_addr || (from.ip() == seeder_addr.ip() && from != snubber_addr),
        "{line}"
    );
    let seen = snubber.join().unwrap();
    println!("download took {took:?}; the snubbing peer saw {seen:?}");
    assert!(
        seen.until_cancels >= SNUB_TIMEOUT - Duration::from_millis(300)
            && seen.until_cancels < SNUB_TIMEOUT + Duration::from_secs(3),
        "cancels came {:?} after the first request",
        seen.until_cancels
    );
    assert!(seen.outstanding_then > 1, "{seen:?}");
    assert_eq!(
        seen.cancelled_then, seen.outstanding_then,
        "every outstanding request was cancelled"
    );
    assert!(
        seen.most_after <= 1,
        "a snubbing peer holds one request: {seen:?}"
    );
    if let Some(closed) = seen.until_closed {
        // Dropped for snubbing (two time-outs), or when the client finished and exited.
        assert!(
            closed >= 2 * SNUB_TIMEOUT - Duration::from_millis(300),
            "{seen:?}"
        );
    }
}
