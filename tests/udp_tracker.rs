//! The UDP tracker (BEP 15) of the real `piecemeal tracker` binary, spoken to with hand-built
//! packets (so the test does not share the codec it checks) and with piecemeal's own announcer
//! and peers.

mod support;

use piecemeal::metainfo::{InfoHash, Metainfo};
use piecemeal::tracker::client::{Announcer, TrackerKind};
use piecemeal::tracker::protocol::{AnnounceRequest, Event};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use support::{Proc, assert_same_tree, noise_torrent, peer};

const TIMEOUT: Duration = Duration::from_secs(5);
const DOWNLOAD: Duration = Duration::from_secs(60);

/// A UDP client socket on `local`, talking to `tracker`.
struct Client {
    socket: UdpSocket,
    tracker: SocketAddr,
}

impl Client {
    fn new(local: &str, tracker: SocketAddr) -> Client {
        let socket = UdpSocket::bind(local).unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        Client { socket, tracker }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    /// Sends `packet` and returns the reply, or `None` if none came within `wait`.
    fn ask(&self, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
        self.socket.set_read_timeout(Some(wait)).unwrap();
        self.socket.send_to(packet, self.tracker).unwrap();
        let mut buffer = [0u8; 4096];
        match self.socket.recv_from(&mut buffer) {
            Ok((len, from)) => {
                assert_eq!(from, self.tracker);
                Some(buffer[..len].to_vec())
            }
            Err(_) => None,
        }
    }

    fn connect(&self) -> u64 {
        let mut packet = 0x41727101980u64.to_be_bytes().to_vec();
        packet.extend_from_slice(&0u32.to_be_bytes());
        packet.extend_from_slice(&77u32.to_be_bytes());
        let reply = self.ask(&packet, TIMEOUT).expect("a connect reply");
        assert_eq!(reply.len(), 16);
        assert_eq!(&reply[..8], &[0, 0, 0, 0, 0, 0, 0, 77]);
        u64::from_be_bytes(reply[8..16].try_into().unwrap())
    }
}

/// A BEP 15 announce packet of `peer` for torrent `hash`, listening on `port`.
fn announce(connection_id: u64, hash: u8, peer: u8, left: u64, port: u16) -> Vec<u8> {
    let mut p = connection_id.to_be_bytes().to_vec();
    p.extend_from_slice(&1u32.to_be_bytes()); // announce
    p.extend_from_slice(&0x1234u32.to_be_bytes()); // transaction id
    p.extend_from_slice(&[hash; 20]);
    p.extend_from_slice(&[peer; 20]);
    for n in [0, left, 0] {
        p.extend_from_slice(&n.to_be_bytes());
    }
    p.extend_from_slice(&2u32.to_be_bytes()); // started
    p.extend_from_slice(&[10, 9, 8, 7]); // an `ip` the tracker must ignore
    p.extend_from_slice(&0u32.to_be_bytes()); // key
    p.extend_from_slice(&(-1i32).to_be_bytes()); // num_want: default
    p.extend_from_slice(&port.to_be_bytes());
    p
}

fn scrape(connection_id: u64, hash: u8) -> Vec<u8> {
    let mut p = connection_id.to_be_bytes().to_vec();
    p.extend_from_slice(&2u32.to_be_bytes());
    p.extend_from_slice(&0x99u32.to_be_bytes());
    p.extend_from_slice(&[hash; 20]);
    p
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// The `(leechers, seeders, peers)` of an announce reply, with `width`-byte peer entries.
fn announce_reply(reply: &[u8], width: usize) -> (u32, u32, Vec<Vec<u8>>) {
    assert_eq!(word(reply, 0), 1, "not an announce reply: {reply:?}");
    assert_eq!(word(reply, 4), 0x1234);
    assert_eq!((reply.len() - 20) % width, 0);
    let peers = reply[20..].chunks(width).map(<[u8]>::to_vec).collect();
    (word(reply, 12), word(reply, 16), peers)
}

fn ipv4_peer(port: u16) -> Vec<u8> {
    let mut entry = vec![127, 0, 0, 1];
    entry.extend_from_slice(&port.to_be_bytes());
    entry
}

/// Starts the binary's tracker on `bind` and returns it with its address (TCP and UDP).
fn tracker_on(bind: &str) -> (Proc, SocketAddr) {
    let mut t = Proc::start(&["tracker", "--bind", bind, "--interval", "2"]);
    let addr = t.wait_listening("tracker listening on");
    (t, addr)
}

#[test]
fn announce_and_scrape_over_udp_share_the_swarm_with_http() {
    let (_tracker, addr) = tracker_on("127.0.0.1:0");
    let a = Client::new("127.0.0.1:0", addr);
    let b = Client::new("127.0.0.1:0", addr);
    let (id_a, id_b) = (a.connect(), b.connect());
    assert_ne!(id_a, id_b, "connection ids are per address");

    let (leechers, seeders, peers) = announce_reply(
        &a.ask(&announce(id_a, 5, 1, 100, 7001), TIMEOUT).unwrap(),
        6,
    );
    assert_eq!((leechers, seeders, peers.len()), (1, 0, 0));
    let (leechers, seeders, peers) =
        announce_reply(&b.ask(&announce(id_b, 5, 2, 0, 7002), TIMEOUT).unwrap(), 6);
    assert_eq!((leechers, seeders), (1, 1));
    // The packet's source address, not its `ip` field.
    assert_eq!(peers, [ipv4_peer(7001)]);

    let reply = a.ask(&scrape(id_a, 5), TIMEOUT).unwrap();
    assert_eq!(reply.len(), 8 + 12);
    assert_eq!((word(&reply, 0), word(&reply, 4)), (2, 0x99));
    assert_eq!(
        (word(&reply, 8), word(&reply, 12), word(&reply, 16)),
        (1, 0, 1)
    );

    // An HTTP (BEP 3) announce on the same port sees both UDP peers.
    let url = format!("http://{addr}/announce");
    let mut announcer = Announcer::new(vec![vec![url.clone()]]);
    announcer.set_kind(&url, TrackerKind::Bep3);
    let mut seen: Vec<SocketAddr> = announcer
        .announce(&request([5; 20], 7003))
        .unwrap()
        .peers
        .into_iter()
        .map(|p| p.addr)
        .collect();
    seen.sort();
    let expected: Vec<SocketAddr> = vec![
        "127.0.0.1:7001".parse().unwrap(),
        "127.0.0.1:7002".parse().unwrap(),
    ];
    assert_eq!(seen, expected);
}

fn request(hash: [u8; 20], port: u16) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: InfoHash(hash),
        peer_id: *b"-XX0001-httpclient00",
        port,
        uploaded: 0,
        downloaded: 0,
        left: 1,
        event: Event::Started,
        numwant: None,
    }
}

#[test]
fn another_address_cannot_use_a_connection_id_and_junk_is_not_amplified() {
    let (_tracker, addr) = tracker_on("127.0.0.1:0");
    let owner = Client::new("127.0.0.1:0", addr);
    let id = owner.connect();
    // Another port, and another loopback address, replaying the owner's id.
    for local in ["127.0.0.1:0", "127.0.0.2:0"] {
        let thief = Client::new(local, addr);
        let packet = announce(id, 6, 9, 5, 7009);
        let reply = thief.ask(&packet, TIMEOUT).expect("an error reply");
        assert_eq!(word(&reply, 0), 3, "{local}: not an error: {reply:?}");
        assert_eq!(word(&reply, 4), 0x1234);
        assert!(reply.len() <= packet.len());
    }
    let reply = owner.ask(&scrape(id, 6), TIMEOUT).unwrap();
    assert_eq!(&reply[8..], &[0; 12], "a refused announce was recorded");

    // Junk of every sort gets no reply bigger than itself, and the tracker keeps serving.
    let stranger = Client::new("127.0.0.1:0", addr);
    let junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![1; 15],
        announce(0, 6, 9, 5, 7009)[..60].to_vec(),
        scrape(12345, 6),
        vec![0xff; 100],
        vec![7; 3000], // oversized
    ];
    for packet in &junk {
        if let Some(reply) = stranger.ask(packet, Duration::from_millis(200)) {
            assert!(
                reply.len() <= packet.len(),
                "{} bytes answered with {}",
                packet.len(),
                reply.len()
            );
        }
    }
    let id = stranger.connect();
    let reply = stranger
        .ask(&announce(id, 6, 3, 5, stranger.port()), TIMEOUT)
        .unwrap();
    assert_eq!(announce_reply(&reply, 6).0, 1);
}

#[test]
fn ipv6_clients_get_18_byte_peers() {
    let (_tracker, addr) = tracker_on("[::1]:0");
    let a = Client::new("[::1]:0", addr);
    let b = Client::new("[::1]:0", addr);
    let (id_a, id_b) = (a.connect(), b.connect());
    a.ask(&announce(id_a, 8, 1, 5, 7101), TIMEOUT).unwrap();
    let (leechers, _, peers) =
        announce_reply(&b.ask(&announce(id_b, 8, 2, 5, 7102), TIMEOUT).unwrap(), 18);
    assert_eq!(leechers, 2);
    let mut expected = std::net::Ipv6Addr::LOCALHOST.octets().to_vec();
    expected.extend_from_slice(&7101u16.to_be_bytes());
    assert_eq!(peers, [expected]);
}

/// Two piecemeal peers that know the tracker only as `udp://…` find each other and the
/// download completes.
#[test]
fn piecemeal_peers_meet_through_a_udp_tracker() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "udp", 1 << 20, 1 << 16);
    let (_tracker, addr) = tracker_on("127.0.0.1:0");
    let url = format!("udp://{addr}/announce");
    let mut seeder = peer(&work.path().join("seed"), &[&torrent], &["--tracker", &url]);
    seeder.wait_listening("listening on");
    let client_dir = work.path().join("client");
    let started = Instant::now();
    let mut client = peer(
        &client_dir,
        &[&torrent],
        &["--tracker", &url, "--exit-when-done"],
    );
    client.wait_for("complete", DOWNLOAD);
    assert!(client.wait_exit(DOWNLOAD).success());
    assert_same_tree(&work.path().join("seed"), &client_dir);
    assert!(started.elapsed() < DOWNLOAD);
    // The library's announcer with the same URL finds the seeder (the client said `stopped`),
    // and a second announce reuses the connection id.
    let hash = Metainfo::load(&torrent).unwrap().info_hash;
    let mut announcer = Announcer::new(vec![vec![url.clone()]]);
    for _ in 0..2 {
        let reply = announcer.announce(&request(hash.0, 7200)).unwrap();
        assert_eq!((reply.complete, reply.incomplete), (Some(1), Some(1)));
        assert_eq!(reply.peers.len(), 1);
    }
}

/// On a dual-stack socket an IPv4 client arrives as `::ffff:a.b.c.d`: it is still an IPv4
/// client, with 6-byte peers, and its connection id holds.
#[test]
fn dual_stack_tracker_answers_ipv4_clients_in_ipv4() {
    let (_tracker, addr) = tracker_on("[::]:0");
    let v4: SocketAddr = format!("127.0.0.1:{}", addr.port()).parse().unwrap();
    let v6: SocketAddr = format!("[::1]:{}", addr.port()).parse().unwrap();
    let a = Client::new("127.0.0.1:0", v4);
    let b = Client::new("127.0.0.1:0", v4);
    let c = Client::new("[::1]:0", v6);
    let (id_a, id_b, id_c) = (a.connect(), b.connect(), c.connect());
    a.ask(&announce(id_a, 4, 1, 5, 7301), TIMEOUT).unwrap();
    c.ask(&announce(id_c, 4, 3, 5, 7303), TIMEOUT).unwrap();
    let (leechers, _, peers) =
        announce_reply(&b.ask(&announce(id_b, 4, 2, 5, 7302), TIMEOUT).unwrap(), 6);
    assert_eq!(leechers, 3);
    assert_eq!(peers, [ipv4_peer(7301)]);
}
