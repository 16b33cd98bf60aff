//! Faults and hostile input around real `piecemeal` processes: a seeder facing raw sockets that
//! speak the wire protocol badly or strangely, many downloaders at once and peers that never
//! read; a client facing fake seeders, a tracker that never answers, SIGTERM mid-download, a
//! stale file in its folder and a disk that fills up; a tracker fed garbage. Each case checks
//! the offender is dropped (or tolerated) and honest peers are still served.

mod support;

use piecemeal::disk::Storage;
use piecemeal::metainfo::Metainfo;
use piecemeal::wire::{Handshake, MAX_BLOCK, Message, MessageReader, WireError, max_message_len};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use support::{Proc, assert_same_tree, field, noise_torrent, tracker, wait_output};

const DOWNLOAD: Duration = Duration::from_secs(90);
/// How long a dropped connection may take to be closed by the peer.
const DROP_BOUND: Duration = Duration::from_secs(5);
/// How long to wait for one answer from the peer.
const ANSWER: Duration = Duration::from_secs(10);

/// What raw clients need to know about the seeder; shared with their threads.
struct Target {
    addr: SocketAddr,
    meta: Metainfo,
    /// The torrent's bytes, files concatenated in order.
    content: Vec<u8>,
}

impl Target {
    fn connect(&self) -> Raw {
        Raw::connect(self.addr, &self.meta, [0; 8])
    }

    fn block(&self, index: u32, begin: u32, length: u32) -> &[u8] {
        let start = index as usize * self.meta.info.piece_length as usize + begin as usize;
        &self.content[start..start + length as usize]
    }
}

/// A tracker and a peer seeding a freshly made torrent.
struct Seeding {
    work: tempfile::TempDir,
    torrent: PathBuf,
    url: String,
    target: Arc<Target>,
    _seeder: Proc,
    _tracker: Proc,
}

impl std::ops::Deref for Seeding {
    type Target = Target;
    fn deref(&self) -> &Target {
        &self.target
    }
}

impl Seeding {
    /// `len` bytes in pieces of 32 KiB: two blocks per piece.
    fn start(len: usize) -> Seeding {
        let work = tempfile::tempdir().unwrap();
        let torrent = noise_torrent(work.path(), "target", len, 1 << 15);
        let meta = Metainfo::load(&torrent).unwrap();
        let seed = work.path().join("seed");
        let content = meta
            .info
            .files
            .iter()
            .flat_map(|f| std::fs::read(seed.join(meta.info.relative_path(f))).unwrap())
            .collect();
        let (tracker, url) = tracker();
        let mut seeder = peer(&seed, &torrent, &["--tracker", &url]);
        let addr = seeder.wait_listening("listening on");
        seeder.wait_for("seeding", Duration::from_secs(20));
        let target = Arc::new(Target {
            addr,
            meta,
            content,
        });
        Seeding {
            work,
            torrent,
            url,
            target,
            _seeder: seeder,
            _tracker: tracker,
        }
    }

    /// A real `piecemeal peer` downloads the whole torrent from the seeder and exits.
    fn assert_real_client_downloads(&self, name: &str) {
        let dir = self.work.path().join(name);
        let mut client = peer(
            &dir,
            &self.torrent,
            &["--tracker", &self.url, "--exit-when-done"],
        );
        let line = client.wait_for("complete", DOWNLOAD);
        assert!(client.wait_exit(DOWNLOAD).success(), "{}", client.stderr());
        assert!(
            field(&line, "peers").contains(&self.addr.to_string()),
            "{line}"
        );
        assert_same_tree(&self.work.path().join("seed"), &dir);
    }
}

/// A peer on one torrent.
fn peer(dir: &Path, torrent: &Path, extra: &[&str]) -> Proc {
    support::peer(dir, &[torrent], extra)
}

/// A hand-driven remote peer.
struct Raw {
    stream: TcpStream,
    reader: MessageReader,
}

/// How a read on a raw connection ended.
#[derive(Debug)]
enum Got {
    Message(Message),
    /// Nothing within the time allowed.
    Nothing,
    /// The peer closed (or reset) the connection.
    Closed(String),
}

impl Raw {
    /// Connects and completes the handshake with the given reserved (extension) bytes.
    fn connect(addr: SocketAddr, meta: &Metainfo, reserved: [u8; 8]) -> Raw {
        Raw::try_connect(addr, meta, reserved)
            .unwrap_or_else(|e| panic!("handshake with {addr}: {e}"))
    }

    fn try_connect(
        addr: SocketAddr,
        meta: &Metainfo,
        reserved: [u8; 8],
    ) -> Result<Raw, Box<dyn std::error::Error>> {
        let mut stream = TcpStream::connect_timeout(&addr, ANSWER)?;
        stream.set_read_timeout(Some(ANSWER))?;
        stream.set_write_timeout(Some(ANSWER))?;
        let mut ours = Handshake::new(meta.info_hash.0, random_peer_id());
        ours.reserved = reserved;
        stream.write_all(&ours.to_bytes())?;
        let theirs = piecemeal::wire::read_handshake(&mut stream)?;
        assert_eq!(theirs.info_hash, meta.info_hash.0);
        Ok(Raw {
            stream,
            reader: MessageReader::new(max_message_len(meta.info.piece_count())),
        })
    }

    fn send(&mut self, message: &Message) {
        self.stream.write_all(&message.to_bytes()).unwrap();
    }

    /// The next message, waiting at most `timeout`.
    fn next(&mut self, timeout: Duration) -> Got {
        let deadline = Instant::now() + timeout;
        self.stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        loop {
            match self.reader.read(&mut self.stream) {
                Ok(message) => return Got::Message(message),
                Err(e) if e.is_timeout() => {
                    if Instant::now() >= deadline {
                        return Got::Nothing;
                    }
                }
                Err(WireError::Closed) => return Got::Closed("closed".into()),
                Err(e) => return Got::Closed(e.to_string()),
            }
        }
    }

    /// Reads until a message `pick` accepts arrives; panics on close or after [`ANSWER`].
    fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(Message) -> Option<T>) -> T {
        let deadline = Instant::now() + ANSWER;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Got::Message(m) => {
                    if let Some(found) = pick(m) {
                        return found;
                    }
                }
                other => panic!("waiting for {what}: {other:?}"),
            }
        }
    }

    /// Declares interest and waits to be unchoked.
    fn unchoked(mut self) -> Raw {
        self.send(&Message::Interested);
        self.wait_for("unchoke", |m| (m == Message::Unchoke).then_some(()));
        self
    }

    /// Requests one block and returns its bytes.
    fn fetch(&mut self, index: u32, begin: u32, length: u32) -> Vec<u8> {
        self.send(&Message::Request {
            index,
            begin,
            length,
        });
        self.wait_for("a piece message", |m| match m {
            Message::Piece {
                index: i,
                begin: b,
                data,
            } if (i, b) == (index, begin) => Some(data),
            _ => None,
        })
    }

    /// Asserts the peer closes the connection within [`DROP_BOUND`], whatever it sends first.
    fn assert_dropped(mut self, why: &str) {
        let deadline = Instant::now() + DROP_BOUND;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Got::Message(_) => {}
                Got::Closed(_) => return,
                Got::Nothing => panic!("connection still open {DROP_BOUND:?} after {why}"),
            }
        }
    }
}

fn random_peer_id() -> [u8; 20] {
    let mut id = *b"-RW0001-000000000000";
    for b in &mut id[8..] {
        *b = fastrand::alphanumeric() as u8;
    }
    id
}

/// Reads whatever arrives on `stream` until it closes; panics if it stays open past the bound.
fn bytes_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + DROP_BOUND;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                assert!(
                    Instant::now() < deadline,
                    "connection still open after {DROP_BOUND:?}"
                );
            }
            Err(_) => return got,
        }
    }
}

#[test]
fn huge_length_prefix_is_dropped_and_the_seeder_keeps_serving() {
    let s = Seeding::start((1 << 20) + 5000);
    let mut raw = s.connect();
    raw.stream.write_all(&0xFFFF_FFF0u32.to_be_bytes()).unwrap();
    raw.assert_dropped("a 4 GiB length prefix");
    s.assert_real_client_downloads("client");
}

#[test]
fn invalid_requests_drop_only_the_offender() {
    let s = Seeding::start((1 << 20) + 5000);
    let info = &s.meta.info;
    let pieces = info.piece_count() as u32;
    let piece = info.piece_length as u32;
    let last_size = info.piece_size(pieces as usize - 1) as u32;
    assert!(last_size < piece, "the torrent ends in a short piece");
    let mut good = s.connect().unchoked();
    let cases = [
        ("index past the end", pieces, 0, 16384),
        ("index far past the end", u32::MAX, 0, 16384),
        ("block past the end of a piece", 0, piece - 8, 16),
        (
            "block past the end of the short last piece",
            pieces - 1,
            0,
            last_size + 1,
        ),
        ("offset overflowing 32 bits", 1, u32::MAX - 4, 16),
        ("zero length", 1, 0, 0),
        ("more than 128 KiB", 0, 0, MAX_BLOCK + 1),
    ];
    for (i, (why, index, begin, length)) in cases.into_iter().enumerate() {
        let mut bad = s.connect().unchoked();
        bad.send(&Message::Request {
            index,
            begin,
            length,
        });
        bad.assert_dropped(why);
        // The connection that behaves is still served, with the right bytes.
        let (index, begin) = (i as u32 % pieces, (i as u32 % 2) * 16384);
        assert_eq!(
            good.fetch(index, begin, 16384),
            s.block(index, begin, 16384),
            "after {why}"
        );
    }
    // The exact tail of the torrent is a valid request.
    assert_eq!(
        good.fetch(pieces - 1, 0, last_size),
        s.block(pieces - 1, 0, last_size)
    );
}

#[test]
fn requests_while_choked_get_no_piece() {
    let s = Seeding::start((1 << 20) + 5000);
    let mut raw = s.connect();
    // Not interested, so still choked: the request must be ignored, not answered.
    raw.send(&Message::Request {
        index: 0,
        begin: 0,
        length: 16384,
    });
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match raw.next(left) {
            Got::Message(Message::Piece { .. }) => panic!("a choked peer was sent a piece"),
            Got::Message(Message::Unchoke) => panic!("unchoked without being interested"),
            Got::Message(_) => {}
            Got::Nothing => break,
            Got::Closed(e) => panic!("a request while choked closed the connection: {e}"),
        }
    }
    // The same connection is served once unchoked.
    let mut raw = raw.unchoked();
    assert_eq!(raw.fetch(3, 16384, 16384), s.block(3, 16384, 16384));
}

#[test]
fn strangers_are_dropped_before_our_handshake() {
    let s = Seeding::start((1 << 20) + 5000);
    let good = Handshake::new(s.meta.info_hash.0, random_peer_id()).to_bytes();
    let mut wrong_protocol = good;
    wrong_protocol[1..20].copy_from_slice(b"BitTorrent protocoX");
    let mut wrong_length = good;
    wrong_length[0] = 18;
    let mut unknown_torrent = good;
    unknown_torrent[28..48].copy_from_slice(&[0x42; 20]);
    let http = b"GET /announce HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    for (why, bytes) in [
        ("a wrong protocol string", wrong_protocol.to_vec()),
        ("a wrong protocol length", wrong_length.to_vec()),
        ("an unknown info hash", unknown_torrent.to_vec()),
        ("an HTTP request", http),
    ] {
        let mut stream = TcpStream::connect(s.addr).unwrap();
        stream.write_all(&bytes).unwrap();
        let answer = bytes_until_closed(&mut stream);
        assert!(
            answer.is_empty(),
            "{why}: the seeder answered {} bytes",
            answer.len()
        );
    }
    let mut raw = s.connect().unchoked();
    assert_eq!(raw.fetch(0, 0, 16384), s.block(0, 0, 16384));
}

#[test]
fn silent_connections_do_not_lock_out_a_real_downloader() {
    let s = Seeding::start((2 << 20) + 777);
    // Forty peers that shake hands and then say nothing, and some that never even shake hands.
    let mut silent: Vec<Raw> = (0..40).map(|_| s.connect()).collect();
    let mute: Vec<TcpStream> = (0..6)
        .map(|_| TcpStream::connect(s.addr).unwrap())
        .collect();
    let started = Instant::now();
    s.assert_real_client_downloads("client");
    assert!(started.elapsed() < DOWNLOAD);
    // The silent peers were held open all along, and are served once they ask.
    for i in [39, 19, 0] {
        let mut raw = silent.remove(i).unchoked();
        assert_eq!(
            raw.fetch(5, 0, 16384),
            s.block(5, 0, 16384),
            "silent peer {i}"
        );
    }
    drop(mute);
}

#[test]
fn thirty_two_raw_downloaders_at_once_all_get_correct_blocks() {
    const PEERS: usize = 32;
    let seeding = Seeding::start((2 << 20) + 777);
    let pieces = seeding.meta.info.piece_count() as u32;
    let all_connected = Arc::new(Barrier::new(PEERS));
    let threads: Vec<_> = (0..PEERS)
        .map(|i| {
            let (s, all_connected) = (seeding.target.clone(), all_connected.clone());
            std::thread::spawn(move || {
                let raw = Raw::try_connect(s.addr, &s.meta, [0; 8]);
                // Everyone is connected before anyone asks, so the requests overlap (a failed
                // handshake still reaches the barrier, or the others would wait forever).
                all_connected.wait();
                let mut raw = raw
                    .unwrap_or_else(|e| panic!("peer {i}: handshake: {e}"))
                    .unchoked();
                for k in 0..6u32 {
                    let index = (i as u32 * 7 + k * 13) % (pieces - 1);
                    let begin = (k % 2) * 16384;
                    let got = raw.fetch(index, begin, 16384);
                    assert!(
                        got == s.block(index, begin, 16384),
                        "peer {i}: piece {index} offset {begin} differs"
                    );
                }
            })
        })
        .collect();
    let failures = threads
        .into_iter()
        .map(|t| t.join())
        .filter(Result::is_err)
        .count();
    assert_eq!(failures, 0, "{failures} of {PEERS} downloaders failed");
}

#[test]
fn extension_bits_and_messages_are_tolerated() {
    let s = Seeding::start((1 << 20) + 5000);
    let pieces = s.meta.info.piece_count();
    // BEP 10 (extension protocol), BEP 6 (fast extension) and BEP 5 (DHT) bits, as real clients set them.
    let reserved = [0, 0, 0, 0, 0, 0x10, 0, 0x05];
    let mut raw = Raw::connect(s.addr, &s.meta, reserved);
    let mut burst = Vec::new();
    let mut extended = vec![20u8, 0];
    extended.extend_from_slice(
        b"d1:md11:ut_metadatai1e6:ut_pexi2ee1:pi6881e1:v9:rawclient4:reqqi250ee",
    );
    for body in [
        &extended[..],
        &[0x0F],                // have none (BEP 6)
        &[0x42, 1, 2, 3, 4, 5], // an id nobody defined
        &[],                    // keep-alive
        &[9, 0x1A, 0xE1],       // DHT port
        &[20, 1, b'd', b'e'],   // an extension message for a negotiated id
    ] {
        burst.extend_from_slice(&framed(body));
    }
    raw.stream.write_all(&burst).unwrap();
    raw.send(&Message::Bitfield(vec![0; pieces.div_ceil(8)]));
    let mut raw = raw.unchoked();
    assert_eq!(raw.fetch(2, 0, 16384), s.block(2, 0, 16384));
    // Extension traffic between requests does not upset the connection either.
    raw.stream
        .write_all(&framed(b"\x14\x02d5:added6:\x7f\0\0\x01\x1a\xe1e"))
        .unwrap();
    assert_eq!(raw.fetch(7, 16384, 16384), s.block(7, 16384, 16384));
}

/// `body` with its length prefix.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// How the client under test is put on a disk that fills up.
enum FullDisk {
    /// A 1 MiB tmpfs mounted in a private mount namespace (needs root).
    Tmpfs,
    /// `ulimit -f`: writes past 1.5 MiB into any one file fail with EFBIG.
    FileSizeLimit,
}

/// Runs a client on a disk that fills up long before the torrent is complete, checks it stops
/// with one clear error and keeps its verified pieces, then lets it finish with space and
/// checks nothing it kept is fetched again.
fn download_onto_a_full_disk(how: FullDisk, error: &str) {
    let s = Seeding::start(3 << 20);
    let bin = env!("CARGO_BIN_EXE_piecemeal");
    let client = s.work.path().join("client");
    std::fs::create_dir_all(&client).unwrap();
    let torrent = s.torrent.to_str().unwrap();
    let client_s = client.to_str().unwrap();
    let peer_args = [
        "peer",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--exit-when-done",
        "--torrent",
        torrent,
        "--tracker",
        &s.url,
    ];
    let mut command = match how {
        FullDisk::Tmpfs => {
            let mount = s.work.path().join("small");
            std::fs::create_dir_all(&mount).unwrap();
            // The tmpfs vanishes with the namespace, so its content is copied out before.
            let script = r#"mount -t tmpfs -o size=1m piecemeal-test "$1" || exit 97
                bin=$2; dir=$1; out=$3; shift 3
                "$bin" "$@" --dir "$dir"; code=$?
                cp -a "$dir/." "$out/" || exit 98
                exit $code"#;
            let mut c = Command::new("unshare");
            c.args([
                "-m",
                "sh",
                "-c",
                script,
                "sh",
                mount.to_str().unwrap(),
                bin,
                client_s,
            ])
            .args(peer_args);
            c
        }
        FullDisk::FileSizeLimit => {
            // Pieces come in random order, so the first one could land past the limit and
            // leave nothing written; the first file, already in place, is data the client
            // holds when the disk fills, and must still be there afterwards.
            let first = s.meta.info.relative_path(&s.meta.info.files[0]);
            std::fs::create_dir_all(client.join(&first).parent().unwrap()).unwrap();
            std::fs::copy(s.work.path().join("seed").join(&first), client.join(&first)).unwrap();
            // An ignored SIGXFSZ stays ignored across exec, so writes fail with EFBIG instead.
            let mut c = Command::new("bash");
            c.args([
                "-c",
                r#"ulimit -f 1536 && trap "" XFSZ && exec "$@""#,
                "bash",
                bin,
            ])
            .args(peer_args);
            c.args(["--dir", client_s]);
            c
        }
    };
    command.env_remove("RUST_LOG");
    let (code, out, err) = wait_output(command, DOWNLOAD);
    // No silent skip: without the privileges for a tmpfs this test fails and says why.
    let setup_failed = code == 97 || code == 98 || err.starts_with("unshare:");
    assert!(
        !setup_failed,
        "cannot set up the 1 MiB filesystem: this test needs root with CAP_SYS_ADMIN \
         (unshare -m, mount -t tmpfs):\n{err}"
    );
    assert!(
        code > 0,
        "the client exited with {code} on a full disk; stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(!out.contains("complete"), "{out}");
    support::assert_one_error_line(&err, &["target", error, "verified pieces are kept"]);

    let meta = &s.meta;
    let kept = Storage::open(&meta.info, &client)
        .unwrap()
        .verify(&meta.info);
    let total = meta.info.total_length();
    let kept_bytes: u64 = (0..kept.len())
        .filter(|&i| kept.get(i))
        .map(|i| meta.info.piece_size(i))
        .sum();
    assert!(kept.count() > 0, "no verified piece survived the full disk");
    assert!(
        kept_bytes < total,
        "the whole torrent fit; the disk never filled"
    );

    let mut again = peer(
        &client,
        &s.torrent,
        &["--tracker", &s.url, "--exit-when-done"],
    );
    let line = again.wait_for("complete", DOWNLOAD);
    assert!(again.wait_exit(DOWNLOAD).success(), "{}", again.stderr());
    let fetched: u64 = field(&line, "bytes").parse().unwrap();
    assert_eq!(
        fetched,
        total - kept_bytes,
        "pieces kept on disk were fetched again: {line}"
    );
    assert_same_tree(&s.work.path().join("seed"), &client);
}

#[test]
fn a_full_filesystem_stops_the_download_and_keeps_verified_pieces() {
    download_onto_a_full_disk(FullDisk::Tmpfs, "No space left on device");
}

#[test]
fn a_file_size_limit_stops_the_download_and_keeps_verified_pieces() {
    download_onto_a_full_disk(FullDisk::FileSizeLimit, "File too large");
}

/// Sends `request` on a fresh connection and returns everything the server answers.
fn http_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn tracker_process_answers_garbage_and_keeps_serving() {
    let (_tracker, url) = tracker();
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches("/announce")
        .parse()
        .unwrap();
    let good_hash = "%aa%bb%cc%dd%ee%ff%00%11%22%33%44%55%66%77%88%99%aa%bb%cc%dd";
    let bep3 =
        |query: &str| format!("GET /announce?{query} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "no HTTP version",
            b"GET /announce\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
            "failure reason",
        ),
        (
            "NUL bytes",
            [&[0u8; 64][..], b"\r\n\r\n"].concat(),
            "HTTP/1.1 400",
            "failure reason",
        ),
        (
            "a Content-Length past 64 bits",
            b"POST /announce HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
            "HTTP/1.1 4",
            "failure reason",
        ),
        (
            "a chunked body",
            b"POST /announce HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
                .to_vec(),
            "HTTP/1.1 4",
            "failure reason",
        ),
        (
            "a body shorter than announced",
            b"POST /announce HTTP/1.1\r\nContent-Length: 50\r\n\r\n{}".to_vec(),
            "HTTP/1.1 408",
            "failure reason",
        ),
        (
            "a 2-byte info_hash",
            bep3(
                "info_hash=%aa%bb&peer_id=ABCDEFGHIJKLMNOPQRST&port=6881&uploaded=0&downloaded=0&left=0",
            ),
            "HTTP/1.1 200",
            "failure reason",
        ),
        (
            "a port out of range",
            bep3(&format!(
                "info_hash={good_hash}&peer_id=ABCDEFGHIJKLMNOPQRST&port=99999&uploaded=0&downloaded=0&left=0"
            )),
            "HTTP/1.1 200",
            "port",
        ),
        (
            "a bad percent escape",
            bep3("info_hash=%zz&peer_id=x"),
            "HTTP/1.1 200",
            "percent",
        ),
    ];
    for (why, request, status, needle) in cases {
        let answer = http_exchange(addr, &request);
        assert!(
            answer.starts_with(status) && answer.contains(needle),
            "{why}: {answer:?}"
        );
    }
    let request = piecemeal::tracker::protocol::AnnounceRequest {
        info_hash: piecemeal::metainfo::InfoHash([0xaa; 20]),
        peer_id: random_peer_id(),
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: piecemeal::tracker::protocol::Event::Started,
        numwant: Some(10),
    };
    let reply =
        piecemeal::tracker::client::Announcer::new(vec![vec![url.clone()]]).announce(&request);
    assert_eq!(reply.expect("the tracker still answers").complete, Some(1));
}

/// What a fake seeder does after the handshake.
#[derive(Clone, Copy, Debug)]
enum Evil {
    /// A 4 GiB length prefix.
    HugePrefix,
    /// A bitfield longer than the torrent needs.
    LongBitfield,
    /// A `have` for a piece past the end.
    HaveTooFar,
    /// Claims everything, unchokes, and answers requests with blocks nobody asked for.
    WrongBlocks,
    /// Answers the handshake for another torrent.
    OtherTorrent,
    /// Claims everything, unchokes, answers no request, and keeps sending blocks nobody asked
    /// for, as if to look busy.
    Chatter,
}

impl Evil {
    /// Whether the client must hang up on this behaviour at once (rather than just outlive it).
    fn must_drop(self) -> bool {
        !matches!(self, Evil::WrongBlocks | Evil::Chatter)
    }
}

/// A fake seeder for one connection; its thread returns how long after misbehaving it was
/// hung up on (`None` if it was never dialled or the connection outlived [`DOWNLOAD`]).
fn evil_seeder(
    meta: &Metainfo,
    evil: Evil,
) -> (SocketAddr, std::thread::JoinHandle<Option<Duration>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (info_hash, pieces) = (meta.info_hash.0, meta.info.piece_count());
    let handle = std::thread::spawn(move || {
        let mut stream = accept_within(&listener, DOWNLOAD)?;
        stream.set_read_timeout(Some(ANSWER)).unwrap();
        piecemeal::wire::read_handshake(&mut stream).unwrap();
        let ours = if matches!(evil, Evil::OtherTorrent) {
            [0x66; 20]
        } else {
            info_hash
        };
        stream
            .write_all(&Handshake::new(ours, random_peer_id()).to_bytes())
            .unwrap();
        let full = Message::Bitfield(
            piecemeal::bitfield::Bitfield::full(pieces)
                .as_bytes()
                .to_vec(),
        );
        let opening = match evil {
            Evil::HugePrefix => 0xFFFF_FFF0u32.to_be_bytes().to_vec(),
            Evil::LongBitfield => Message::Bitfield(vec![0xFF; pieces.div_ceil(8) + 10]).to_bytes(),
            Evil::HaveTooFar => Message::Have(pieces as u32 + 5).to_bytes(),
            Evil::WrongBlocks | Evil::Chatter => {
                [full.to_bytes(), Message::Unchoke.to_bytes()].concat()
            }
            Evil::OtherTorrent => Vec::new(),
        };
        let _ = stream.write_all(&opening);
        let since = Instant::now();
        let mut reader = MessageReader::new(max_message_len(pieces));
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let chatter = Message::Piece {
            index: 0,
            begin: 1,
            data: vec![0xEE; 16384],
        }
        .to_bytes();
        while since.elapsed() < DOWNLOAD {
            match reader.read(&mut stream) {
                Ok(Message::Request { .. }) if matches!(evil, Evil::Chatter) => {}
                Ok(Message::Request {
                    index,
                    begin,
                    length,
                }) => {
                    // Blocks the client never asked for: off by one byte, too short, past the end.
                    let junk = [
                        Message::Piece {
                            index,
                            begin: begin + 1,
                            data: vec![0xEE; length as usize],
                        },
                        Message::Piece {
                            index,
                            begin,
                            data: vec![0xEE; 1],
                        },
                        Message::Piece {
                            index: pieces as u32 + 9,
                            begin,
                            data: vec![0xEE; length as usize],
                        },
                    ];
                    let bytes: Vec<u8> = junk.iter().flat_map(Message::to_bytes).collect();
                    if stream.write_all(&bytes).is_err() {
                        return Some(since.elapsed());
                    }
                }
                Ok(_) => {}
                Err(e) if e.is_timeout() => {
                    if matches!(evil, Evil::Chatter) && stream.write_all(&chatter).is_err() {
                        return Some(since.elapsed());
                    }
                }
                Err(_) => return Some(since.elapsed()),
            }
        }
        None
    });
    (addr, handle)
}

/// Accepts one connection, or gives up after `timeout`.
fn accept_within(listener: &std::net::TcpListener, timeout: Duration) -> Option<TcpStream> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok((stream, _)) = listener.accept() {
            stream.set_nonblocking(false).unwrap();
            return Some(stream);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn hostile_seeders_do_not_spoil_a_download() {
    let s = Seeding::start((2 << 20) + 777);
    let kinds = [
        Evil::HugePrefix,
        Evil::LongBitfield,
        Evil::HaveTooFar,
        Evil::WrongBlocks,
        Evil::OtherTorrent,
    ];
    let fakes: Vec<_> = kinds
        .iter()
        .map(|&evil| (evil, evil_seeder(&s.meta, evil)))
        .collect();
    let addrs: Vec<String> = fakes
        .iter()
        .map(|(_, (addr, _))| addr.to_string())
        .collect();
    let mut args = vec!["--tracker", s.url.as_str(), "--exit-when-done"];
    for addr in &addrs {
        args.extend(["--connect", addr.as_str()]);
    }
    let dir = s.work.path().join("client");
    let mut client = peer(&dir, &s.torrent, &args);
    let line = client.wait_for("complete", DOWNLOAD);
    assert!(client.wait_exit(DOWNLOAD).success(), "{}", client.stderr());
    assert_same_tree(&s.work.path().join("seed"), &dir);
    assert_eq!(
        field(&line, "peers"),
        format!("{}={}", s.addr, s.meta.info.total_length()),
        "{line}"
    );
    for (evil, (_, thread)) in fakes {
        let hung_up = thread.join().unwrap();
        assert!(
            hung_up.is_some(),
            "{evil:?}: the client never closed the connection"
        );
        if evil.must_drop() {
            assert!(
                hung_up.unwrap() < DROP_BOUND,
                "{evil:?}: dropped only after {hung_up:?}"
            );
        }
    }
}

/// A correct but slow seeder for one connection: it answers each request after `delay`,
/// counting the blocks served, until the connection closes (or [`DOWNLOAD`] passes).
fn slow_seeder(
    target: Arc<Target>,
    delay: Duration,
    served: Arc<std::sync::atomic::AtomicUsize>,
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let Some(mut stream) = accept_within(&listener, DOWNLOAD) else {
            return;
        };
        stream.set_read_timeout(Some(ANSWER)).unwrap();
        let Ok(_) = piecemeal::wire::read_handshake(&mut stream) else {
            return;
        };
        let pieces = target.meta.info.piece_count();
        let full = Message::Bitfield(
            piecemeal::bitfield::Bitfield::full(pieces)
                .as_bytes()
                .to_vec(),
        );
        let hello = [
            Handshake::new(target.meta.info_hash.0, random_peer_id())
                .to_bytes()
                .to_vec(),
            full.to_bytes(),
        ];
        if stream.write_all(&hello.concat()).is_err()
            || stream.write_all(&Message::Unchoke.to_bytes()).is_err()
        {
            return;
        }
        let mut reader = MessageReader::new(max_message_len(pieces));
        let deadline = Instant::now() + DOWNLOAD;
        while Instant::now() < deadline {
            match reader.read(&mut stream) {
                Ok(Message::Request {
                    index,
                    begin,
                    length,
                }) => {
                    std::thread::sleep(delay);
                    let data = target.block(index, begin, length).to_vec();
                    if stream
                        .write_all(&Message::Piece { index, begin, data }.to_bytes())
                        .is_err()
                    {
                        return;
                    }
                    served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(e) if e.is_timeout() => {}
                Err(_) => return,
            }
        }
    });
    (addr, handle)
}

/// The peers a tracker lists for `meta`'s torrent, asking as a stranger.
fn listed_peers(url: &str, meta: &Metainfo) -> Vec<SocketAddr> {
    let request = piecemeal::tracker::protocol::AnnounceRequest {
        info_hash: meta.info_hash,
        peer_id: random_peer_id(),
        port: support::closed_port(),
        uploaded: 0,
        downloaded: 0,
        left: meta.info.total_length(),
        event: piecemeal::tracker::protocol::Event::None,
        numwant: Some(50),
    };
    let reply =
        piecemeal::tracker::client::Announcer::new(vec![vec![url.to_string()]]).announce(&request);
    reply
        .expect("the tracker answers")
        .peers
        .into_iter()
        .map(|p| p.addr)
        .collect()
}

#[test]
fn sigterm_mid_download_exits_cleanly_announces_stopped_and_resumes() {
    let s = Seeding::start((2 << 20) + 777);
    let (_quiet_tracker, quiet_url) = tracker();
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (slow, slow_thread) =
        slow_seeder(s.target.clone(), Duration::from_millis(30), served.clone());
    let dir = s.work.path().join("client");
    let slow_s = slow.to_string();
    let mut client = peer(
        &dir,
        &s.torrent,
        &["--tracker", &quiet_url, "--connect", &slow_s],
    );
    let client_addr = client.wait_listening("listening on");
    let deadline = Instant::now() + DOWNLOAD;
    while served.load(std::sync::atomic::Ordering::SeqCst) < 8 {
        assert!(
            Instant::now() < deadline,
            "the slow seeder was never asked for blocks"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        listed_peers(&quiet_url, &s.meta).contains(&client_addr),
        "the client announced itself"
    );
    let status = client.terminate();
    assert!(
        status.success(),
        "SIGTERM mid-download: {status}; stderr:\n{}",
        client.stderr()
    );
    assert!(!client.stderr().contains("panicked"), "{}", client.stderr());
    assert!(
        !listed_peers(&quiet_url, &s.meta).contains(&client_addr),
        "no `stopped` announce reached the tracker"
    );
    slow_thread.join().unwrap();

    // What was verified before the signal stays; the rest comes from the real seeder.
    let info = &s.meta.info;
    let kept = Storage::open(info, &dir).unwrap().verify(info);
    let kept_bytes: u64 = (0..kept.len())
        .filter(|&i| kept.get(i))
        .map(|i| info.piece_size(i))
        .sum();
    assert!(
        kept.count() > 0 && !kept.is_complete(),
        "kept {} of {} pieces",
        kept.count(),
        kept.len()
    );
    let mut again = peer(&dir, &s.torrent, &["--tracker", &s.url, "--exit-when-done"]);
    let line = again.wait_for("complete", DOWNLOAD);
    assert!(again.wait_exit(DOWNLOAD).success(), "{}", again.stderr());
    assert_eq!(
        field(&line, "bytes").parse::<u64>().unwrap(),
        info.total_length() - kept_bytes,
        "{line}"
    );
    assert_same_tree(&s.work.path().join("seed"), &dir);
}

/// A "tracker" that accepts connections and never answers, until dropped.
struct Blackhole {
    url: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Blackhole {
    fn bind(addr: &str) -> Blackhole {
        let listener = std::net::TcpListener::bind(addr).unwrap();
        let url = format!("http://{}/announce", listener.local_addr().unwrap());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(stream) = accept_within(&listener, Duration::from_millis(100)) {
                    held.push(stream);
                }
            }
        });
        Blackhole {
            url,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether `dir` holds the whole torrent, verified.
fn holds_everything(meta: &Metainfo, dir: &Path) -> bool {
    dir.join(&meta.info.name).exists()
        && Storage::open(&meta.info, dir)
            .is_ok_and(|storage| storage.verify(&meta.info).is_complete())
}

#[test]
fn a_hung_tracker_does_not_hold_up_peers_given_with_connect() {
    let s = Seeding::start((2 << 20) + 777);
    let hung = Blackhole::bind("127.0.0.1:0");
    let dir = s.work.path().join("client");
    let seeder = s.addr.to_string();
    let started = Instant::now();
    let mut client = peer(
        &dir,
        &s.torrent,
        &["--tracker", &hung.url, "--connect", &seeder],
    );
    client.wait_listening("listening on");
    // The announce waits 10 s for an answer that never comes; the download must not.
    let bound = Duration::from_secs(8);
    while !holds_everything(&s.meta, &dir) {
        assert!(
            started.elapsed() < bound,
            "nothing fetched from --connect peers while the tracker hangs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    client.wait_for("complete", DOWNLOAD);
    assert!(client.terminate().success(), "{}", client.stderr());
    assert_same_tree(&s.work.path().join("seed"), &dir);
}

#[test]
fn a_tracker_that_stops_answering_delays_the_exit_only_briefly() {
    let s = Seeding::start((1 << 20) + 5000);
    let (mut tracker, url) = tracker();
    let dir = s.work.path().join("client");
    let seeder = s.addr.to_string();
    let mut client = peer(&dir, &s.torrent, &["--tracker", &url, "--connect", &seeder]);
    client.wait_for("complete", DOWNLOAD);
    // Let the `completed` announce reach the live tracker, then replace it by a silent one,
    // well before the next regular announce (at least 5 s later).
    std::thread::sleep(Duration::from_millis(500));
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/announce")
        .to_string();
    assert!(tracker.terminate().success());
    let _hung = Blackhole::bind(&addr);
    let stopping = Instant::now();
    assert!(client.terminate().success(), "{}", client.stderr());
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(7),
        "exit waited {took:?} for the `stopped` announce"
    );
}

#[test]
fn a_stale_longer_file_in_the_folder_is_refused_until_the_user_deals_with_it() {
    let s = Seeding::start((1 << 20) + 5000);
    let dir = s.work.path().join("client");
    support::copy_tree(&s.work.path().join("seed"), &dir);
    let first = dir.join("target/a.bin");
    let mut stale = std::fs::read(&first).unwrap();
    let length = stale.len() as u64;
    stale.extend_from_slice(b"the tail of an older, longer version");
    std::fs::write(&first, &stale).unwrap();
    std::fs::remove_file(dir.join("target/deep/b.bin")).unwrap();
    let mut refused = peer(&dir, &s.torrent, &["--tracker", &s.url, "--exit-when-done"]);
    assert!(!refused.wait_exit(DOWNLOAD).success());
    assert!(
        refused.stderr().contains("target/a.bin: it holds"),
        "{}",
        refused.stderr()
    );
    assert_eq!(
        std::fs::read(&first).unwrap(),
        stale,
        "never cut by the peer"
    );
    // The user cuts it: its pieces are kept, only the rest is fetched.
    std::fs::File::options()
        .write(true)
        .open(&first)
        .unwrap()
        .set_len(length)
        .unwrap();
    let mut client = peer(&dir, &s.torrent, &["--tracker", &s.url, "--exit-when-done"]);
    let line = client.wait_for("complete", DOWNLOAD);
    assert!(client.wait_exit(DOWNLOAD).success(), "{}", client.stderr());
    let fetched: u64 = field(&line, "bytes").parse().unwrap();
    assert!(
        fetched < s.meta.info.total_length(),
        "the first file's pieces were kept: {line}"
    );
    assert_same_tree(&s.work.path().join("seed"), &dir);
}

#[test]
fn a_peer_that_requests_but_never_reads_is_dropped_while_others_are_served() {
    let s = Seeding::start((2 << 20) + 777);
    let full_pieces = s.meta.info.piece_count() as u32 - 1;
    let mut greedy = s.connect().unchoked();
    // Valid requests for about 32 MiB, far more than socket buffers hold, and never a byte read.
    let requests: Vec<u8> = (0..2000u32)
        .flat_map(|i| {
            let (index, begin) = (i % full_pieces, (i / full_pieces % 2) * 16384);
            Message::Request {
                index,
                begin,
                length: 16384,
            }
            .to_bytes()
        })
        .collect();
    greedy.stream.write_all(&requests).unwrap();
    let since = Instant::now();
    s.assert_real_client_downloads("client");
    // The seeder gives up once a write makes no progress for 20 s. The kernel grows its send
    // buffer for a while first, so this takes about a minute on Linux. Our requests lie unread
    // on its side, so its close arrives as a reset: a socket error, seen without reading (a
    // read would let the seeder make progress).
    let deadline = since + Duration::from_secs(150);
    while greedy.stream.take_error().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "a peer that never reads held its connection for {:?}",
            since.elapsed()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        since.elapsed() >= Duration::from_secs(20),
        "dropped after only {:?}",
        since.elapsed()
    );
}

#[test]
fn a_peer_that_answers_requests_only_with_junk_is_dropped_as_snubbing() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "target", 1 << 20, 1 << 15);
    let meta = Metainfo::load(&torrent).unwrap();
    let (chatter, thread) = evil_seeder(&meta, Evil::Chatter);
    let dead_tracker = format!("http://127.0.0.1:{}/announce", support::closed_port());
    let chatter_s = chatter.to_string();
    let dir = work.path().join("client");
    let torrent_s = torrent.to_str().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_piecemeal"));
    command.args(["peer", "--dir", dir.to_str().unwrap(), "--port", "0"]);
    command.args(["--bind", "127.0.0.1", "--torrent", torrent_s]);
    command.args(["--tracker", &dead_tracker, "--connect", &chatter_s]);
    // The snub time-out is 60 s; this test shortens it to 4 s.
    command.env("PIECEMEAL_SNUB_TIMEOUT", "4");
    let _client = Proc::spawn(command);
    // The client marks the peer snubbed once requests go unanswered for the time-out, however
    // busy it looks, and drops it when its one request left is unanswered for another.
    let hung_up = thread
        .join()
        .unwrap()
        .expect("the client kept a peer that answers nothing");
    assert!(
        hung_up > Duration::from_secs(7),
        "dropped after only {hung_up:?}"
    );
}

#[test]
fn stopping_during_a_hung_announce_exits_promptly() {
    let s = Seeding::start((1 << 20) + 5000);
    let hung = Blackhole::bind("127.0.0.1:0");
    let dir = s.work.path().join("client");
    let seeder = s.addr.to_string();
    let mut client = peer(
        &dir,
        &s.torrent,
        &["--tracker", &hung.url, "--connect", &seeder],
    );
    // The download completes while the first announce waits out its 10 s; the `complete`
    // line follows it, and then the announce thread's `completed` announce hangs for another
    // 10 s. Stop the client in the middle of that one.
    client.wait_for("complete", DOWNLOAD);
    std::thread::sleep(Duration::from_secs(4));
    let stopping = Instant::now();
    assert!(client.terminate().success(), "{}", client.stderr());
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(7),
        "exit waited {took:?} for a hung announce"
    );
    assert_same_tree(&s.work.path().join("seed"), &dir);
}
