//! A session that changes while it runs (issue 11): torrents added, paused, resumed, removed,
//! refused, and a restart that remembers them. The session runs in this process (the library's
//! `Session` through its `Control` trait); the seeder is a `piecemeal peer` child process.

mod support;

use clap::Parser;
use piecemeal::metainfo::Metainfo;
use piecemeal::peer::{PeerConfig, Session};
use piecemeal::rpc::control::{
    AddSource, Control, ControlError, Limits, TorrentStatus, TorrentSummary,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use support::{Proc, assert_same_tree, noise_torrent, peer, tracker};

/// Long enough for a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    peer: PeerConfig,
}

/// A running session and its watch loop (progress lines and rates), as `peer::run` has them.
struct Running {
    session: Arc<Session>,
    watch: Option<std::thread::JoinHandle<Result<(), piecemeal::peer::PeerError>>>,
}

impl std::ops::Deref for Running {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Running {
    /// Stops the session as `peer::run` does; its watch loop ends without an error.
    fn stop(mut self) {
        self.session.stop();
        if let Some(watch) = self.watch.take() {
            watch.join().unwrap().unwrap();
        }
    }
}

/// A session in `dir` on loopback announcing to `tracker`, dialling `connect`, without the
/// DHT.
fn session(dir: &Path, tracker: &str, connect: Option<SocketAddr>) -> Running {
    session_with(dir, tracker, connect, &[])
}

/// As [`session`], with `extra` flags.
fn session_with(dir: &Path, tracker: &str, connect: Option<SocketAddr>, extra: &[&str]) -> Running {
    let mut args = vec![
        "peer".to_string(),
        "--dir".into(),
        dir.to_str().unwrap().into(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--port".into(),
        "0".into(),
        "--no-dht".into(),
        "--tracker".into(),
        tracker.into(),
    ];
    if let Some(addr) = connect {
        args.extend(["--connect".into(), addr.to_string()]);
    }
    args.extend(extra.iter().map(|f| f.to_string()));
    let config = Flags::parse_from(args).peer;
    let session =
        Session::start(config, Arc::new(AtomicBool::new(false))).expect("the session starts");
    let watched = session.clone();
    let watch = Some(std::thread::spawn(move || watched.watch()));
    Running { session, watch }
}

/// A seeder of `torrent` (its content in `dir`) announcing to `tracker`, its upload capped at
/// `rate` (e.g. "300k").
fn seeder(dir: &Path, torrent: &Path, tracker: &str, rate: &str) -> (Proc, SocketAddr) {
    let args = ["--no-dht", "--tracker", tracker, "--max-upload-rate", rate];
    let mut seeder = peer(dir, &[torrent], &args);
    let addr = seeder.wait_listening("listening on");
    seeder.wait_for("seeding", WAIT);
    (seeder, addr)
}

/// Waits until `what` holds of the torrent `id`, returning its summary; panics after `WAIT`.
fn wait_until(
    s: &Session,
    id: &str,
    why: &str,
    what: impl Fn(&TorrentSummary) -> bool,
) -> TorrentSummary {
    let deadline = Instant::now() + WAIT;
    loop {
        let summary = s.detail(id).expect("the torrent is listed").summary;
        if what(&summary) {
            return summary;
        }
        assert!(Instant::now() < deadline, "{why}: {summary:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `what` holds; panics with `why` after `WAIT`.
fn wait_for(why: &str, what: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !what() {
        assert!(Instant::now() < deadline, "{why}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the session at `addr` answers a plaintext handshake for `info_hash` (it closes
/// the connection without one for a torrent it does not serve).
fn answers_handshake(addr: SocketAddr, info_hash: [u8; 20]) -> bool {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut hello = vec![19u8];
    hello.extend_from_slice(b"BitTorrent protocol");
    hello.extend_from_slice(&[0; 8]);
    hello.extend_from_slice(&info_hash);
    hello.extend_from_slice(b"-XX0000-testtesttest");
    stream.write_all(&hello).unwrap();
    let mut reply = [0u8; 68];
    stream.read_exact(&mut reply).is_ok() && reply[28..48] == info_hash
}

fn summary_ids(s: &Session) -> Vec<(String, TorrentStatus)> {
    s.list().into_iter().map(|t| (t.id, t.status)).collect()
}

#[test]
fn an_added_torrent_downloads_pauses_resumes_and_is_removed_with_only_its_files() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "album", 3 << 20, 64 << 10);
    let meta = Metainfo::load(&torrent).unwrap();
    let id = meta.info_hash.hex();
    let (_tracker, url) = tracker();
    let (_seeder, from) = seeder(&work.path().join("seed"), &torrent, &url, "600k");
    let dir = work.path().join("mine");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("unrelated.txt"), b"keep me").unwrap();
    let s = session(&dir, &url, Some(from));
    let listen: SocketAddr = s.session().listen.parse().unwrap();

    let added = s
        .add(AddSource::Torrent(std::fs::read(&torrent).unwrap()), false)
        .unwrap();
    assert_eq!(added.id, id);
    assert_eq!(added.name, "album");
    assert_eq!(s.list().len(), 1);

    // Pause mid-way: the torrent stays listed, paused, takes no more data, and the listener
    // refuses it.
    wait_until(&s, &id[..8], "bytes arrive, at a rate", |t| {
        t.done > 0 && t.download_rate > 0 && t.peers == 1
    });
    // The detail shows the seeder's connection at its rate, with every piece, and the
    // tracker's last reply.
    wait_for(
        "the seeder's peer row shows its rate and all its pieces",
        || {
            let peers = s.detail(&id).unwrap().peer_list;
            peers.len() == 1 && peers[0].download_rate > 0 && peers[0].progress == 1.0
        },
    );
    let trackers = s.detail(&id).unwrap().trackers;
    assert_eq!(trackers.len(), 1, "{trackers:?}");
    assert_eq!(trackers[0].url, url);
    assert!(trackers[0].peers.is_some_and(|n| n >= 1), "{trackers:?}");
    assert_eq!(trackers[0].error, None);
    s.pause(&id[..8]).unwrap();
    let paused = s.detail(&id).unwrap().summary;
    assert_eq!(paused.status, TorrentStatus::Paused);
    assert!(paused.done < paused.size, "{paused:?}");
    let settled = |before: u64| {
        std::thread::sleep(Duration::from_millis(1500));
        s.detail(&id).unwrap().summary.downloaded == before
    };
    wait_for("the paused torrent's connections close", || {
        settled(s.detail(&id).unwrap().summary.downloaded)
    });
    assert!(!answers_handshake(listen, meta.info_hash.0));

    // Resume: it continues from where it stopped and completes.
    s.resume(&id).unwrap();
    let done = wait_until(&s, &id, "the download completes", |t| {
        t.status == TorrentStatus::Seeding
    });
    assert_eq!(done.done, done.size);
    assert_eq!(done.progress, 1.0);
    assert_same_tree(&work.path().join("seed"), &dir);
    assert!(answers_handshake(listen, meta.info_hash.0));
    let detail = s.detail(&id).unwrap();
    assert_eq!(detail.files.len(), 2);
    assert!(detail.files.iter().all(|f| f.done == f.length && f.wanted));
    assert_eq!(
        detail.pieces.len(),
        (detail.piece_count as usize).div_ceil(8) * 2
    );
    assert!(
        detail
            .magnet
            .starts_with(&format!("magnet:?xt=urn:btih:{id}"))
    );

    // Remove with its data: exactly its files (and its folders) go.
    s.remove(&id, true).unwrap();
    assert!(s.list().is_empty());
    wait_for("the torrent's files are deleted", || {
        !dir.join("album").exists()
    });
    assert_eq!(
        std::fs::read(dir.join("unrelated.txt")).unwrap(),
        b"keep me"
    );
    assert!(matches!(
        s.detail(&id),
        Err(ControlError::UnknownTorrent(_))
    ));
    s.stop();
}

#[test]
fn bad_input_is_refused_with_its_error_and_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "one", 200 << 10, 16 << 10);
    let dir = work.path().join("mine");
    let (_tracker, url) = tracker();
    let s = session(&dir, &url, None);
    let bytes = std::fs::read(&torrent).unwrap();
    let id = s.add(AddSource::Torrent(bytes.clone()), true).unwrap().id;
    let before = summary_ids(&s);
    assert_eq!(before, vec![(id.clone(), TorrentStatus::Paused)]);

    let refusals = [
        s.add(AddSource::Torrent(b"d4:infoi3ee".to_vec()), false),
        s.add(AddSource::Torrent(bytes[..bytes.len() / 2].to_vec()), false),
        s.add(AddSource::Magnet("magnet:?xt=urn:btih:1234".into()), false),
        s.add(AddSource::Magnet("http://example.com/".into()), false),
        s.add(AddSource::Torrent(bytes), false),
    ];
    assert!(matches!(refusals[0], Err(ControlError::BadTorrent(_))));
    assert!(matches!(refusals[1], Err(ControlError::BadTorrent(_))));
    assert!(matches!(refusals[2], Err(ControlError::BadMagnet(_))));
    assert!(matches!(refusals[3], Err(ControlError::BadMagnet(_))));
    assert_eq!(refusals[4], Err(ControlError::AlreadyAdded(id.clone())));
    for unknown in ["ffff", "0000000000000000000000000000000000000000", "zz", ""] {
        let refused = [
            s.pause(unknown),
            s.resume(unknown),
            s.remove(unknown, true),
            s.verify(unknown),
            s.choose_files(unknown, &[0]),
            s.detail(unknown).map(|_| ()),
        ];
        for r in refused {
            assert!(matches!(r, Err(ControlError::UnknownTorrent(_))), "{r:?}");
        }
    }
    assert_eq!(
        s.choose_files(&id, &[0, 7]),
        Err(ControlError::BadFile {
            id: id.clone(),
            index: 7,
            files: 2
        })
    );
    assert!(matches!(s.verify(&id), Err(ControlError::NotNow(_))));
    assert_eq!(summary_ids(&s), before);

    // Limits: the process's and the torrent's, as set.
    let limits = Limits {
        upload: 5000,
        download: 7000,
    };
    s.set_limits(limits).unwrap();
    assert_eq!(s.session().limits, limits);
    s.set_torrent_limits(&id[..6], limits).unwrap();
    assert_eq!(s.detail(&id).unwrap().summary.limits, limits);
    assert!(s.detail(&id).unwrap().files.iter().all(|f| f.wanted));
    s.stop();
}

#[test]
fn a_restart_brings_back_added_torrents_with_their_state_and_finished_ones_stay_finished() {
    let work = tempfile::tempdir().unwrap();
    let done_torrent = noise_torrent(work.path(), "done", 1 << 20, 32 << 10);
    let later = noise_torrent(work.path(), "later", 300 << 10, 16 << 10);
    let (_tracker, url) = tracker();
    let (_seeder, from) = seeder(&work.path().join("seed"), &done_torrent, &url, "0");
    let dir = work.path().join("mine");
    let s = session(&dir, &url, Some(from));
    let done_id = s
        .add(
            AddSource::Torrent(std::fs::read(&done_torrent).unwrap()),
            false,
        )
        .unwrap()
        .id;
    let later_id = s
        .add(AddSource::Torrent(std::fs::read(&later).unwrap()), true)
        .unwrap()
        .id;
    s.set_torrent_limits(
        &later_id,
        piecemeal::rpc::control::Limits {
            upload: 1000,
            download: 0,
        },
    )
    .unwrap();
    let first = wait_until(&s, &done_id, "the download completes", |t| {
        t.status == TorrentStatus::Seeding
    });
    assert!(first.downloaded >= first.size, "{first:?}");
    s.stop();

    // Started again with no torrent given (the seeder is still there to fetch from).
    let s = session(&dir, &url, None);
    let ids: Vec<String> = s.list().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![done_id.clone(), later_id.clone()]);
    let again = wait_until(&s, &done_id, "the finished torrent seeds again", |t| {
        t.status == TorrentStatus::Seeding
    });
    assert_eq!(again.downloaded, 0);
    assert_eq!(again.done, again.size);
    let paused = s.detail(&later_id).unwrap().summary;
    assert_eq!(paused.status, TorrentStatus::Paused);
    assert_eq!(paused.limits.upload, 1000);
    assert_same_tree(&work.path().join("seed").join("done"), &dir.join("done"));
    s.stop();

    // A torn session list is a warning and an empty session, not a failed start.
    let list = dir.join(".piecemeal/session.json");
    let bytes = std::fs::read(&list).unwrap();
    std::fs::write(&list, &bytes[..bytes.len() / 2]).unwrap();
    let s = session(&dir, &url, None);
    assert!(s.list().is_empty());
    s.stop();
}

#[test]
fn a_magnet_added_while_running_is_fetched_stored_and_verify_repairs_a_damaged_piece() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "film", 1 << 20, 32 << 10);
    let meta = Metainfo::load(&torrent).unwrap();
    let id = meta.info_hash.hex();
    let (_tracker, url) = tracker();
    let (_seeder, from) = seeder(&work.path().join("seed"), &torrent, &url, "0");
    let dir = work.path().join("mine");
    let s = session(&dir, &url, None);
    let magnet = format!("magnet:?xt=urn:btih:{id}&dn=film&x.pe={from}");
    let added = s.add(AddSource::Magnet(magnet), false).unwrap();
    assert_eq!(
        (added.id.as_str(), added.name.as_str()),
        (id.as_str(), "film")
    );
    wait_until(&s, &id, "the magnet's download completes", |t| {
        t.status == TorrentStatus::Seeding
    });
    assert_same_tree(&work.path().join("seed"), &dir);
    let copy = dir.join(format!(".piecemeal/torrents/{id}.torrent"));
    assert_eq!(Metainfo::load(&copy).unwrap().info_hash, meta.info_hash);

    // A byte changed behind the peer's back, the file's time put back: only a full hash
    // finds it, and the piece is fetched again.
    let damaged = dir.join("film/a.bin");
    let mtime = std::fs::metadata(&damaged).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&damaged, &bytes).unwrap();
    let file = std::fs::File::options().write(true).open(&damaged).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    s.verify(&id).unwrap();
    assert_eq!(
        s.detail(&id).unwrap().summary.status,
        TorrentStatus::Checking
    );
    wait_until(&s, &id, "the verified torrent seeds again", |t| {
        t.status == TorrentStatus::Seeding
    });
    assert_same_tree(&work.path().join("seed"), &dir);
    s.stop();
}

#[test]
fn chosen_files_are_the_only_ones_fetched() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "pair", 600 << 10, 16 << 10);
    let (_tracker, url) = tracker();
    let (_seeder, from) = seeder(&work.path().join("seed"), &torrent, &url, "0");
    let dir = work.path().join("mine");
    let s = session(&dir, &url, Some(from));
    let bytes = std::fs::read(&torrent).unwrap();
    let id = s.add(AddSource::Torrent(bytes), true).unwrap().id;
    s.choose_files(&id, &[1]).unwrap();
    let wanted: Vec<bool> = (s.detail(&id).unwrap().files.iter())
        .map(|f| f.wanted)
        .collect();
    assert_eq!(wanted, vec![false, true]);
    s.resume(&id).unwrap();
    let done = wait_until(&s, &id, "the chosen file completes", |t| {
        t.status == TorrentStatus::Seeding
    });
    assert!(done.size < 600 << 10 && done.done == done.size, "{done:?}");
    let seed = work.path().join("seed/pair/deep/b.bin");
    assert_eq!(
        std::fs::read(dir.join("pair/deep/b.bin")).unwrap(),
        std::fs::read(seed).unwrap()
    );
    let detail = s.detail(&id).unwrap();
    assert!(
        detail.files[0].done < detail.files[0].length,
        "{:?}",
        detail.files
    );
    s.stop();
}

/// A tracker URL on loopback where nothing listens.
fn dead_tracker() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/announce")
}

#[test]
fn a_dead_tracker_shows_its_error_and_limits_set_at_run_time_survive_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "small", 100 << 10, 16 << 10);
    let dead = dead_tracker();
    // A peer given to dial (one that never answers) lets the torrent run without a tracker.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let connect = Some(silent.local_addr().unwrap());
    let dir = work.path().join("mine");
    let s = session(&dir, &dead, connect);
    let id = (s.add(AddSource::Torrent(std::fs::read(&torrent).unwrap()), false))
        .unwrap()
        .id;
    wait_for("the dead tracker's row shows an error", || {
        let trackers = s.detail(&id).unwrap().trackers;
        trackers.len() == 1 && trackers[0].url == dead && trackers[0].error.is_some()
    });
    assert_eq!(s.detail(&id).unwrap().trackers[0].peers, None);
    let set = Limits {
        upload: 300 << 10,
        download: 200 << 10,
    };
    s.set_limits(set).unwrap();
    s.stop();

    let s = session(&dir, &dead, connect);
    assert_eq!(s.session().limits, set, "restored from the session list");
    s.stop();
    // A flag given on the command line wins over the stored limit.
    let s = session_with(&dir, &dead, connect, &["--max-upload-rate", "1k"]);
    let limits = s.session().limits;
    assert_eq!((limits.upload, limits.download), (1024, 200 << 10));
    s.stop();
}

#[test]
fn removing_a_torrent_with_its_data_during_its_first_check_leaves_no_file_behind() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "big", 24 << 20, 256 << 10);
    // The session's folder is the seed's: its data is there, so the check hashes all of it.
    let dir = work.path().join("seed");
    let s = session(&dir, &dead_tracker(), None);
    let id = (s.add(AddSource::Torrent(std::fs::read(&torrent).unwrap()), false))
        .unwrap()
        .id;
    assert_eq!(
        s.detail(&id).unwrap().summary.status,
        TorrentStatus::Checking
    );
    s.remove(&id, true).unwrap();
    // The stored copy goes only once the start has ended, then the files.
    let copy = dir.join(format!(".piecemeal/torrents/{id}.torrent"));
    wait_for("the removal ends", || {
        !copy.exists() && !dir.join("big").exists()
    });
    wait_for("the session list no longer names it", || {
        !std::fs::read_to_string(dir.join(".piecemeal/session.json"))
            .unwrap_or_default()
            .contains(&id)
    });
    s.stop();
    assert!(
        !dir.join("big").exists(),
        "a late check wrote its files again"
    );
}
