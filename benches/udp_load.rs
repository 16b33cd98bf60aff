//! A BEP 15 load generator for `make bench-tracker` (run by tests/bench/tracker_udp.py): a few
//! threads, one UDP socket each, each keeping a window of announces in flight against a UDP
//! tracker, and a one-line JSON summary on stdout.
//!
//! `udp_load --tracker ADDR [--seconds 10] [--threads 2] [--window 64] [--torrents 1000]
//! [--peers 1000]`. Torrent `i`'s info hash is `i` as 4 big-endian bytes followed by sixteen
//! 0x5a bytes (the script whitelists those for opentracker); peer `j` has a peer id ending in
//! `j` and announces port `10000 + j`, so trackers that key peers by address and port (as
//! opentracker does) and ones that key them by peer id see the same number of peers.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PROTOCOL_ID: u64 = 0x417_2710_1980;

struct Options {
    tracker: SocketAddr,
    seconds: u64,
    threads: usize,
    window: usize,
    torrents: u32,
    peers: u32,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        tracker: "127.0.0.1:6969".parse().unwrap(),
        seconds: 10,
        threads: 2,
        window: 64,
        torrents: 1000,
        peers: 1000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--bench" {
            continue; // added by `cargo bench`
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--tracker" => o.tracker = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => o.seconds = value.parse().map_err(|e| bad(&e))?,
            "--threads" => o.threads = value.parse().map_err(|e| bad(&e))?,
            "--window" => o.window = value.parse().map_err(|e| bad(&e))?,
            "--torrents" => o.torrents = value.parse().map_err(|e| bad(&e))?,
            "--peers" => o.peers = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if o.torrents == 0 || o.peers == 0 || o.threads == 0 || o.window == 0 {
        return Err("--torrents, --peers, --threads and --window must be at least 1".into());
    }
    Ok(o)
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    announces: AtomicU64,
    errors: AtomicU64,
    lost: AtomicU64,
}

fn connect(socket: &UdpSocket) -> io::Result<u64> {
    let mut request = PROTOCOL_ID.to_be_bytes().to_vec();
    request.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    let mut reply = [0u8; 64];
    for _ in 0..50 {
        socket.send(&request)?;
        if let Ok(16) = socket.recv(&mut reply)
            && reply[..8] == [0, 0, 0, 0, 0, 0, 0, 1]
        {
            return Ok(u64::from_be_bytes(reply[8..16].try_into().unwrap()));
        }
    }
    Err(io::Error::other("no connect reply"))
}

fn announce(connection_id: u64, o: &Options, rng: &mut fastrand::Rng) -> Vec<u8> {
    let torrent = rng.u32(..o.torrents);
    let peer = rng.u32(..o.peers);
    let mut p = Vec::with_capacity(98);
    p.extend_from_slice(&connection_id.to_be_bytes());
    p.extend_from_slice(&1u32.to_be_bytes());
    p.extend_from_slice(&rng.u32(..).to_be_bytes());
    p.extend_from_slice(&torrent.to_be_bytes());
    p.extend_from_slice(&[0x5a; 16]);
    p.extend_from_slice(b"-LD0001-");
    p.extend_from_slice(&[b'0'; 8]);
    p.extend_from_slice(&peer.to_be_bytes());
    let left: u64 = if rng.u8(..4) == 0 { 0 } else { 1 << 20 };
    for n in [0, left, 0] {
        p.extend_from_slice(&n.to_be_bytes());
    }
    let event: u32 = if rng.u8(..10) == 0 { 2 } else { 0 };
    for n in [event, 0, 0, 50] {
        p.extend_from_slice(&n.to_be_bytes());
    }
    p.extend_from_slice(&(10_000 + (peer % 50_000) as u16).to_be_bytes());
    p
}

fn run(o: &Options, counts: &Counts, end: Instant, seed: u64) -> io::Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(o.tracker)?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let connection_id = connect(&socket)?;
    // Long enough that a tracker descheduled on a busy machine is not counted as losing packets.
    socket.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut reply = [0u8; 4096];
    let mut outstanding = 0;
    while Instant::now() < end {
        while outstanding < o.window {
            socket.send(&announce(connection_id, o, &mut rng))?;
            counts.sent.fetch_add(1, Ordering::Relaxed);
            outstanding += 1;
        }
        match socket.recv(&mut reply) {
            Ok(len) if len >= 8 => {
                outstanding -= 1;
                match reply[3] {
                    1 => counts.announces.fetch_add(1, Ordering::Relaxed),
                    _ => counts.errors.fetch_add(1, Ordering::Relaxed),
                };
            }
            Ok(_) => outstanding -= 1,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                counts.lost.fetch_add(outstanding as u64, Ordering::Relaxed);
                outstanding = 0;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn main() {
    let o = match options() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("udp_load: {e}");
            std::process::exit(2);
        }
    };
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let end = start + Duration::from_secs(o.seconds);
    let threads: Vec<_> = (0..o.threads)
        .map(|n| {
            let (o, counts) = (o.clone(), counts.clone());
            std::thread::spawn(move || run(&o, &counts, end, n as u64 + 1))
        })
        .collect();
    for thread in threads {
        if let Err(e) = thread.join().expect("load thread") {
            eprintln!("udp_load: {e}");
            std::process::exit(1);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "{{\"seconds\": {secs:.3}, \"sent\": {}, \"announces\": {}, \"errors\": {}, \"lost\": {}}}",
        get(&counts.sent),
        get(&counts.announces),
        get(&counts.errors),
        get(&counts.lost)
    );
}
