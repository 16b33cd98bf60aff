//! Flow control between a real `piecemeal peer` and a scripted remote peer on 127.0.0.1: a
//! connection keeps reading while its writes are stuck (two peers serving each other must not
//! freeze), and a `cancel` takes back a block that was queued but not yet sent.

mod support;

use piecemeal::bitfield::Bitfield;
use piecemeal::metainfo::Metainfo;
use piecemeal::wire::{Handshake, MAX_BLOCK, Message, MessageReader, WireError, max_message_len};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{Proc, assert_same_tree, noise_file};

/// 32 pieces of 256 KiB.
const PIECE: usize = 256 * 1024;
const PIECES: usize = 32;
/// Requests the remote leaves unread: 400 blocks of 128 KiB, 50 MiB, far more than the socket
/// buffers of both ends hold, and fewer than piecemeal queues per peer.
const GREEDY: u32 = 400;
/// How long the remote's writes may take while it does not read.
const WRITES_BOUND: Duration = Duration::from_secs(10);
const ANSWER: Duration = Duration::from_secs(10);

/// A torrent of noise, its bytes, and where piecemeal listens.
struct Setup {
    work: tempfile::TempDir,
    meta: Metainfo,
    content: Vec<u8>,
    addr: SocketAddr,
}

/// The processes a test runs: piecemeal and the tracker it announces to.
struct Running {
    piecemeal: Proc,
    _tracker: Proc,
}

impl Setup {
    /// Starts piecemeal on a copy holding `piecemeal_has`; returns it too.
    fn start(piecemeal_has: std::ops::Range<usize>) -> (Setup, Running) {
        let work = tempfile::tempdir().unwrap();
        let seed = work.path().join("seed/data.bin");
        noise_file(&seed, PIECE * PIECES, 7);
        let torrent = work.path().join("data.torrent");
        support::create_torrent(&seed, PIECE as u64, &torrent);
        let meta = Metainfo::load(&torrent).unwrap();
        let content = std::fs::read(&seed).unwrap();
        let mut ours = vec![0u8; content.len()];
        let held = piecemeal_has.start * PIECE..piecemeal_has.end * PIECE;
        ours[held.clone()].copy_from_slice(&content[held]);
        let dir = work.path().join("piecemeal");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data.bin"), ours).unwrap();
        let (tracker, url) = support::tracker();
        let mut piecemeal = support::peer(&dir, &[&torrent], &["--tracker", &url]);
        let addr = piecemeal.wait_listening("listening on");
        let setup = Setup {
            work,
            meta,
            content,
            addr,
        };
        let running = Running {
            piecemeal,
            _tracker: tracker,
        };
        (setup, running)
    }

    fn dir(&self) -> PathBuf {
        self.work.path().join("piecemeal")
    }

    fn block(&self, index: u32, begin: u32, length: u32) -> &[u8] {
        let start = index as usize * PIECE + begin as usize;
        &self.content[start..start + length as usize]
    }

    /// A remote peer holding `has`, connected, interested and unchoking; returns once
    /// piecemeal has unchoked it.
    fn remote(&self, has: std::ops::Range<usize>) -> Remote {
        let mut stream = TcpStream::connect_timeout(&self.addr, ANSWER).unwrap();
        stream.set_write_timeout(Some(WRITES_BOUND)).unwrap();
        stream.set_read_timeout(Some(ANSWER)).unwrap();
        let id = *b"-FL0001-remote-peer1";
        stream
            .write_all(&Handshake::new(self.meta.info_hash.0, id).to_bytes())
            .unwrap();
        piecemeal::wire::read_handshake(&mut stream).unwrap();
        let mut remote = Remote {
            stream,
            reader: MessageReader::new(max_message_len(PIECES)),
        };
        let mut bitfield = Bitfield::new(PIECES);
        has.for_each(|i| {
            bitfield.set(i);
        });
        remote.send(&Message::Bitfield(bitfield.as_bytes().to_vec()));
        remote.send(&Message::Interested);
        // piecemeal's unchoke comes from its peer manager a moment later; ours goes after it,
        // so that none of piecemeal's requests is read (and dropped) while waiting for it.
        remote.wait_for("unchoke", |m| (m == Message::Unchoke).then_some(()));
        remote.send(&Message::Unchoke);
        remote
    }
}

/// The scripted remote end.
struct Remote {
    stream: TcpStream,
    reader: MessageReader,
}

impl Remote {
    fn send(&mut self, message: &Message) {
        self.stream.write_all(&message.to_bytes()).unwrap();
    }

    /// The next message, `None` when nothing came within `limit`.
    fn next(&mut self, limit: Duration) -> Option<Message> {
        let deadline = Instant::now() + limit;
        self.stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        loop {
            match self.reader.read(&mut self.stream) {
                Ok(message) => return Some(message),
                Err(e) if e.is_timeout() && Instant::now() < deadline => {}
                Err(e) if e.is_timeout() => return None,
                Err(WireError::Closed) => panic!("piecemeal closed the connection"),
                Err(e) => panic!("connection failed: {e}"),
            }
        }
    }

    fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(Message) -> Option<T>) -> T {
        let deadline = Instant::now() + ANSWER;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).map(&mut pick) {
                Some(Some(found)) => return found,
                Some(None) => {}
                None => panic!("no {what} within {ANSWER:?}"),
            }
        }
    }

    /// Requests [`GREEDY`] blocks of 128 KiB from pieces `0..pieces`, all at once.
    fn greedy_requests(&mut self, pieces: u32) -> Vec<Message> {
        let requests: Vec<Message> = (0..GREEDY)
            .map(|i| Message::Request {
                index: i % pieces,
                begin: (i / pieces % 2) * MAX_BLOCK,
                length: MAX_BLOCK,
            })
            .collect();
        let bytes: Vec<u8> = requests.iter().flat_map(Message::to_bytes).collect();
        self.stream.write_all(&bytes).unwrap();
        requests
    }
}

/// Checks a piece message against the torrent; returns its length.
fn check_block(s: &Setup, message: &Message) -> Option<usize> {
    let Message::Piece { index, begin, data } = message else {
        return None;
    };
    assert!(
        data == s.block(*index, *begin, data.len() as u32),
        "wrong bytes for piece {index} at {begin}"
    );
    Some(data.len())
}

#[test]
fn a_peer_that_stops_reading_while_both_send_does_not_freeze_the_connection() {
    // piecemeal holds the first half and the remote the second: each serves the other.
    let (s, mut running) = Setup::start(0..PIECES / 2);
    let mut remote = s.remote(PIECES / 2..PIECES);
    remote.wait_for("a request from piecemeal", |m| {
        matches!(m, Message::Request { .. }).then_some(())
    });

    // From here the remote does not read: it asks for 50 MiB and sends its whole half four
    // times over (32 MiB; piecemeal takes the blocks it asked for and ignores the rest).
    remote.greedy_requests(PIECES as u32 / 2);
    let started = Instant::now();
    let mut blocks = Vec::new();
    for _ in 0..4 {
        for index in PIECES / 2..PIECES {
            for begin in (0..PIECE).step_by(16 * 1024) {
                let (index, begin) = (index as u32, begin as u32);
                let data = s.block(index, begin, 16 * 1024).to_vec();
                Message::Piece { index, begin, data }.encode_into(&mut blocks);
            }
        }
    }
    if let Err(e) = remote.stream.write_all(&blocks) {
        panic!(
            "piecemeal stopped reading while its own writes were stuck: the remote's writes \
             failed after {:?}: {e}",
            started.elapsed()
        );
    }
    assert!(started.elapsed() < WRITES_BOUND);

    // The remote reads again: every block it asked for arrives, and it serves piecemeal's
    // requests until piecemeal has the whole torrent.
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let serving = scope.spawn(|| {
            let mut received = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            while received < GREEDY || !done.load(Ordering::SeqCst) {
                assert!(Instant::now() < deadline, "{received} blocks arrived");
                match remote.next(Duration::from_millis(200)) {
                    Some(Message::Request {
                        index,
                        begin,
                        length,
                    }) => {
                        let data = s.block(index, begin, length).to_vec();
                        remote.send(&Message::Piece { index, begin, data });
                    }
                    Some(m) => {
                        if let Some(len) = check_block(&s, &m) {
                            assert_eq!(len, MAX_BLOCK as usize);
                            received += 1;
                        }
                    }
                    None => {}
                }
            }
            received
        });
        running
            .piecemeal
            .wait_for("complete", Duration::from_secs(60));
        done.store(true, Ordering::SeqCst);
        assert_eq!(serving.join().unwrap(), GREEDY);
    });
    assert_same_tree(&s.work.path().join("seed"), &s.dir());
}

#[test]
fn cancelled_requests_still_queued_are_not_sent() {
    let (s, _running) = Setup::start(0..PIECES);
    let mut remote = s.remote(0..0);
    // 50 MiB asked for and not read: most of it waits in piecemeal's queue...
    let requests = remote.greedy_requests(PIECES as u32);
    // ...until the remote takes it all back.
    let cancels: Vec<u8> = requests
        .iter()
        .flat_map(|r| match *r {
            Message::Request {
                index,
                begin,
                length,
            } => Message::Cancel {
                index,
                begin,
                length,
            }
            .to_bytes(),
            _ => unreachable!(),
        })
        .collect();
    remote.stream.write_all(&cancels).unwrap();
    // What was written before the cancels arrived still comes; then nothing more.
    let mut received = 0;
    while let Some(m) = remote.next(Duration::from_secs(2)) {
        received += check_block(&s, &m).is_some() as u32;
    }
    assert!(
        received < GREEDY / 4,
        "{received} of {GREEDY} cancelled blocks were sent anyway"
    );
    // The connection still serves.
    remote.send(&Message::Request {
        index: 3,
        begin: 0,
        length: 16 * 1024,
    });
    let got = remote.wait_for("the block asked for after the cancels", |m| {
        check_block(&s, &m)
    });
    assert_eq!(got, 16 * 1024);
}
