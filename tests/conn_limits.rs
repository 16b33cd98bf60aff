//! Connection limits against a real `piecemeal` seeder: connections that handshake, say they
//! are interested and then only send keep-alives fill its table, and an honest downloader must
//! still get in (by taking the place of one of them) and finish.

mod support;

use piecemeal::metainfo::Metainfo;
use piecemeal::wire::{Handshake, Message, read_handshake, write_handshake};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{assert_same_tree, noise_torrent, peer, tracker};

/// Idle connections become droppable after 30 s (`eviction::IDLE_EVICT`); the downloader
/// redials every 10 s, then needs a few seconds to fetch.
const DOWNLOAD: Duration = Duration::from_secs(60);
const SQUATTERS: usize = 100;
const LIMIT: usize = 20;

/// Handshakes with the seeder and says `interested`; `None` if the seeder closed first.
fn squat(addr: SocketAddr, meta: &Metainfo, n: usize) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut id = *b"-SQ0001-000000000000";
    id[14..].copy_from_slice(format!("{n:06}").as_bytes());
    write_handshake(&mut stream, &Handshake::new(meta.info_hash.0, id)).ok()?;
    read_handshake(&mut stream).ok()?;
    stream.write_all(&Message::Interested.to_bytes()).ok()?;
    Some(stream)
}

/// Whether the seeder has closed `stream` (a read sees the end, or a reset).
fn closed(stream: &mut TcpStream) -> bool {
    use std::io::Read;
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn keep_alive_squatters_do_not_lock_an_honest_downloader_out() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "target", (1 << 20) + 333, 1 << 15);
    let meta = Arc::new(Metainfo::load(&torrent).unwrap());
    let seed = work.path().join("seed");
    let (_tracker, url) = tracker();
    let limit = LIMIT.to_string();
    let mut seeder = peer(
        &seed,
        &[&torrent],
        &["--tracker", &url, "--max-connections", &limit],
    );
    let addr = seeder.wait_listening("listening on");
    seeder.wait_for("seeding", Duration::from_secs(20));

    let mut squatters: Vec<TcpStream> = (0..SQUATTERS)
        .filter_map(|n| squat(addr, &meta, n))
        .collect();
    // The seeder answers every handshake and then refuses those past its limit.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        squatters.retain_mut(|s| !closed(s));
        if squatters.len() <= LIMIT || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(squatters.len(), LIMIT, "squatters admitted up to the limit");
    // Keep-alives, and nothing else, from every admitted squatter.
    let stop = Arc::new(AtomicBool::new(false));
    let keeper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for s in &mut squatters {
                    let _ = s.write_all(&Message::KeepAlive.to_bytes());
                    closed(s);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            squatters.retain_mut(|s| !closed(s));
            squatters.len()
        })
    };

    let started = Instant::now();
    let dir = work.path().join("leech");
    let mut client = peer(
        &dir,
        &[&torrent],
        &["--connect", &addr.to_string(), "--exit-when-done"],
    );
    client.wait_for("complete", DOWNLOAD);
    let took = started.elapsed();
    assert!(client.wait_exit(DOWNLOAD).success(), "{}", client.stderr());
    assert_same_tree(&seed, &dir);
    stop.store(true, Ordering::SeqCst);
    let left = keeper.join().unwrap();
    eprintln!("downloaded in {took:?} past {LIMIT} squatters; {left} squatters left open");
    assert!(left < LIMIT, "a squatter made room for the downloader");
    assert!(
        seeder
            .stderr()
            .contains("connection limit reached, dropping"),
        "{}",
        seeder.stderr()
    );
}
