//! The choker against a real `piecemeal` seeder: with `--upload-slots 2`, six scripted leechers
//! that download at a steady pace all get the whole torrent, never more than the slots plus the
//! optimistic unchoke are served at once, and every leecher is unchoked in its turn.

mod support;

use piecemeal::metainfo::Metainfo;
use piecemeal::wire::{Handshake, Message, MessageReader, max_message_len};
use std::collections::BTreeSet;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{noise_torrent, tracker};

const LEECHERS: usize = 6;
const SLOTS: usize = 2;
const BLOCK: u32 = 16 * 1024;
/// A leecher asks for its next block this long after the last one arrived: 64 blocks take
/// about 3 s of unchoked time, so the seeder must take turns to serve six of them.
const PACE: Duration = Duration::from_millis(50);
/// Everyone must be done by then.
const BOUND: Duration = Duration::from_secs(30);

/// A leecher that wants every block, keeps one request out while unchoked, and re-asks for a
/// block whose request a choke dropped. Returns the bytes it got and its address.
fn leech(addr: SocketAddr, meta: &Metainfo, deadline: Instant) -> (Vec<u8>, SocketAddr) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let local = stream.local_addr().unwrap();
    let mut id = *b"-SC0001-000000000000";
    id[8..].copy_from_slice(format!("{:012}", local.port()).as_bytes());
    stream
        .write_all(&Handshake::new(meta.info_hash.0, id).to_bytes())
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    piecemeal::wire::read_handshake(&mut stream).unwrap();
    let mut reader = MessageReader::new(max_message_len(meta.info.piece_count()));
    let total = meta.info.total_length();
    let mut got = vec![0u8; total as usize];
    let blocks = total.div_ceil(BLOCK as u64);
    let mut next = 0u64;
    let mut unchoked = false;
    let mut outstanding = false;
    stream.write_all(&Message::Interested.to_bytes()).unwrap();
    let send = |stream: &mut TcpStream, m: Message| stream.write_all(&m.to_bytes()).unwrap();
    while next < blocks {
        assert!(Instant::now() < deadline, "{local}: {next}/{blocks} blocks");
        if unchoked && !outstanding {
            let offset = next * BLOCK as u64;
            let piece_len = meta.info.piece_length;
            let length = (total - offset).min(BLOCK as u64) as u32;
            let (index, begin) = ((offset / piece_len) as u32, (offset % piece_len) as u32);
            send(
                &mut stream,
                Message::Request {
                    index,
                    begin,
                    length,
                },
            );
            outstanding = true;
        }
        match reader.read(&mut stream) {
            Ok(Message::Unchoke) => unchoked = true,
            // The seeder drops the requests of a peer it chokes: ask again once unchoked.
            Ok(Message::Choke) => (unchoked, outstanding) = (false, false),
            Ok(Message::Piece { index, begin, data }) => {
                let at = index as u64 * meta.info.piece_length + begin as u64;
                assert_eq!(at, next * BLOCK as u64, "{local}: the block asked for");
                got[at as usize..at as usize + data.len()].copy_from_slice(&data);
                next += 1;
                outstanding = false;
                std::thread::sleep(PACE);
            }
            Ok(_) => {}
            Err(e) if e.is_timeout() => {}
            Err(e) => panic!("{local}: {e}"),
        }
    }
    // Done: no longer interested (so the slot goes to someone else), connection kept open.
    send(&mut stream, Message::NotInterested);
    (got, local)
}

#[test]
fn two_upload_slots_serve_six_leechers_in_turns() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "target", 1 << 20, 1 << 15);
    let meta = Arc::new(Metainfo::load(&torrent).unwrap());
    let seed = work.path().join("seed");
    let content: Vec<u8> = meta
        .info
        .files
        .iter()
        .flat_map(|f| std::fs::read(seed.join(meta.info.relative_path(f))).unwrap())
        .collect();
    let (_tracker, url) = tracker();
    let mut seeder = support::peer(
        &seed,
        &[&torrent],
        &["--tracker", &url, "--upload-slots", &SLOTS.to_string()],
    );
    let addr = seeder.wait_listening("listening on");
    seeder.wait_for("seeding", Duration::from_secs(20));

    let started = Instant::now();
    let deadline = started + BOUND;
    let leechers: Vec<_> = (0..LEECHERS)
        .map(|_| {
            let meta = meta.clone();
            std::thread::spawn(move || leech(addr, &meta, deadline))
        })
        .collect();
    let mut addrs = BTreeSet::new();
    for leecher in leechers {
        let (got, local) = leecher.join().expect("a leecher failed");
        assert!(got == content, "{local} got different bytes");
        addrs.insert(local.to_string());
    }
    let took = started.elapsed();

    // Every change of the unchoked set is logged: check each against the slots, and that
    // every leecher was among the unchoked at some point.
    let log = seeder.stderr();
    let mut ever = BTreeSet::new();
    let mut changes = 0;
    for line in log
        .lines()
        .filter(|l| l.contains(" interested (seeding): "))
    {
        changes += 1;
        let (_, rest) = line.split_once(" interested (seeding): ").unwrap();
        let (list, optimistic) = rest.split_once("; optimistic ").unwrap();
        let unchoked: Vec<&str> = list.split(',').filter(|a| !a.is_empty()).collect();
        let regular = unchoked.len() - usize::from(optimistic != "none");
        assert!(regular <= SLOTS && unchoked.len() <= SLOTS + 1, "{line}");
        ever.extend(unchoked.iter().map(|a| a.to_string()));
    }
    assert!(
        addrs.is_subset(&ever),
        "never unchoked: {:?} ({changes} changes logged)\n{log}",
        addrs.difference(&ever).collect::<Vec<_>>()
    );
    // Three at a time at most, each needing about 3 s: at least two turns.
    assert!(
        took >= PACE * 64 * 2,
        "done in {took:?}: no turns were taken"
    );
    eprintln!("{LEECHERS} leechers done in {took:?}; {changes} unchoke changes");
}
