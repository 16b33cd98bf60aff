//! The disk layer between real processes: a user's longer file is refused, not cut; a
//! complete torrent on a read-only mount is seeded; a torrent of 10,000 files downloads and
//! seeds through a small pool of open files.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use support::{
    Proc, assert_one_error_line, assert_same_tree, copy_tree, create_torrent, noise_file,
    noise_torrent, peer, run_bounded, tracker,
};

const DOWNLOAD: Duration = Duration::from_secs(60);

#[test]
fn a_file_longer_than_the_torrent_says_is_refused_and_left_whole() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "long", 300_000, 1 << 14);
    let dir = work.path().join("client");
    copy_tree(&work.path().join("seed"), &dir);
    let longer = dir.join("long/deep/b.bin");
    let mut bytes = std::fs::read(&longer).unwrap();
    bytes.extend_from_slice(b"the user's own bytes after the torrent's");
    std::fs::write(&longer, &bytes).unwrap();
    let other = dir.join("long/notes.txt");
    std::fs::write(&other, b"not the torrent's").unwrap();

    let (code, out, err) = run_bounded(
        &[
            "peer",
            "--dir",
            dir.to_str().unwrap(),
            "--torrent",
            torrent.to_str().unwrap(),
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ],
        Duration::from_secs(20),
    );
    assert_ne!(code, 0, "{out}");
    assert_one_error_line(
        &err,
        &["long/deep/b.bin", "more than the torrent's", "never cuts"],
    );
    assert_eq!(std::fs::read(&longer).unwrap(), bytes, "not cut");
    assert_eq!(std::fs::read(&other).unwrap(), b"not the torrent's");
}

#[test]
fn a_complete_torrent_on_a_read_only_mount_is_seeded() {
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "ro", 1 << 20, 1 << 15);
    let dir = work.path().join("seed");
    let before = std::fs::read(dir.join("ro/a.bin")).unwrap();
    let (_tracker, url) = tracker();
    // A mount namespace of its own, where the seed folder is bind-mounted read-only: writes
    // fail with EROFS even for root, who ignores permission bits (tests run as root in CI).
    let mut command = Command::new("unshare");
    command.args([
        "--mount",
        "sh",
        "-c",
        r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@""#,
        "sh",
        dir.to_str().unwrap(),
        env!("CARGO_BIN_EXE_piecemeal"),
        "peer",
        "--dir",
        dir.to_str().unwrap(),
        "--torrent",
        torrent.to_str().unwrap(),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--tracker",
        &url,
    ]);
    let mut seeder = Proc::spawn(command);
    seeder.wait_for("seeding", Duration::from_secs(20));

    let client = work.path().join("client");
    let mut leecher = peer(
        &client,
        &[&torrent],
        &["--tracker", &url, "--exit-when-done"],
    );
    leecher.wait_for("complete", DOWNLOAD);
    assert!(
        leecher.wait_exit(DOWNLOAD).success(),
        "{}",
        leecher.stderr()
    );
    assert_same_tree(&dir, &client);
    assert!(
        seeder.stderr().contains("Read-only file system"),
        "the mount is read-only (so the resume record could not be saved):\n{}",
        seeder.stderr()
    );
    assert!(seeder.terminate().success(), "{}", seeder.stderr());
    assert_eq!(std::fs::read(dir.join("ro/a.bin")).unwrap(), before);
}

/// Open descriptors of process `pid` on files below `dir`.
fn open_below(pid: u32, dir: &Path) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

/// Samples `open_below` for each `(pid, dir)` until `stop`; returns the highest count seen.
fn watch_descriptors(
    targets: Vec<(u32, std::path::PathBuf)>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, usize)> {
    let samples = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        let mut most = 0;
        while !stop.load(Ordering::SeqCst) {
            for (pid, dir) in &targets {
                most = most.max(open_below(*pid, dir));
            }
            samples.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
        }
        (most, samples.load(Ordering::SeqCst))
    })
}

#[test]
fn ten_thousand_files_download_and_seed_through_a_pool_of_eight() {
    const POOL: usize = 8;
    // In memory where there is a tmpfs: creating and removing 30,000 files on a busy disk
    // takes longer than the whole download.
    let shm = Path::new("/dev/shm");
    let work = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let content = work.path().join("seed/many");
    let mut rng = fastrand::Rng::with_seed(10_000);
    for i in 0..10_000u64 {
        let path = content.join(format!("d{:02}/f{i:05}.bin", i % 100));
        noise_file(&path, rng.usize(1..300), i);
    }
    let torrent = work.path().join("many.torrent");
    create_torrent(&content, 1 << 14, &torrent);
    let (_tracker, url) = tracker();
    let pool = POOL.to_string();
    let mut seeder = peer(
        &work.path().join("seed"),
        &[&torrent],
        &["--tracker", &url, "--max-open-files", &pool],
    );
    seeder.wait_for("seeding", DOWNLOAD);
    let client = work.path().join("client");
    let mut leecher = peer(
        &client,
        &[&torrent],
        &[
            "--tracker",
            &url,
            "--exit-when-done",
            "--max-open-files",
            &pool,
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_descriptors(
        vec![
            (seeder.child.id(), work.path().join("seed/many")),
            (leecher.child.id(), client.join("many")),
        ],
        stop.clone(),
    );
    leecher.wait_for("complete", DOWNLOAD);
    assert!(
        leecher.wait_exit(DOWNLOAD).success(),
        "{}",
        leecher.stderr()
    );
    stop.store(true, Ordering::SeqCst);
    let (most, samples) = watcher.join().unwrap();
    assert_same_tree(&work.path().join("seed"), &client);
    println!(
        "10,000 files, pool of {POOL}: at most {most} open in one process ({samples} samples)"
    );
    assert!(most > 0, "the sampling saw the files being used");
    // The pool's bound, plus a handle an I/O still holds after its eviction (one per thread
    // doing disk I/O: here one connection each way and the resume thread).
    assert!(most <= POOL + 2, "{most} files open at once");

    // The downloaded copy seeds in turn, through its own small pool, after a restart.
    assert!(seeder.terminate().success());
    let mut reseeder = peer(
        &client,
        &[&torrent],
        &["--tracker", &url, "--max-open-files", &pool],
    );
    reseeder.wait_for("seeding", DOWNLOAD);
    let second = work.path().join("second");
    let mut last = peer(
        &second,
        &[&torrent],
        &["--tracker", &url, "--exit-when-done"],
    );
    last.wait_for("complete", DOWNLOAD);
    assert!(last.wait_exit(DOWNLOAD).success(), "{}", last.stderr());
    assert_same_tree(&work.path().join("seed"), &second);
    assert!(reseeder.terminate().success());
}
