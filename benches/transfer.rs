//! `make bench`: end-to-end figures on 127.0.0.1 with real processes.
//!
//! - how fast a seeder checks its files at start (SHA-1 of every piece);
//! - how fast a client downloads one large torrent from two seeders, and its peak memory.
//!
//! Size with `BENCH_MIB` (default 256).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_piecemeal");

struct Proc(Child, Receiver<String>);

impl Proc {
    fn start(args: &[&str]) -> Proc {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("piecemeal starts");
        let (tx, rx) = channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Proc(child, rx)
    }

    /// Waits (at most 5 minutes) for a line starting with `prefix`; meanwhile calls `tick`.
    fn wait_for(&self, prefix: &str, mut tick: impl FnMut()) -> String {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            tick();
            if let Ok(line) = self.1.recv_timeout(Duration::from_millis(20))
                && line.starts_with(prefix)
            {
                return line;
            }
        }
        panic!("no {prefix:?} line within 5 minutes");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Peak resident memory of a process in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|f| f.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or("?")
}

fn write_noise(path: &Path, mib: usize) {
    use std::io::Write;
    let mut rng = fastrand::Rng::with_seed(7);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        rng.fill(&mut block);
        file.write_all(&block).unwrap();
    }
}

fn main() {
    let mib: usize = std::env::var("BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let work = tempfile::tempdir().unwrap();
    let seed = work.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    write_noise(&seed.join("big.bin"), mib);
    let torrent = work.path().join("big.torrent");
    let status = Command::new(BIN)
        .args([
            "create",
            seed.join("big.bin").to_str().unwrap(),
            "--announce",
            "http://127.0.0.1:1/a",
        ])
        .args([
            "--piece-length",
            "262144",
            "--output",
            torrent.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let tracker = Proc::start(&["tracker", "--bind", "127.0.0.1:0"]);
    let addr = tracker.wait_for("tracker listening on", || {});
    let url = format!("http://{}/announce", addr.rsplit(' ').next().unwrap());
    let t = torrent.to_str().unwrap();
    let peer = |dir: &Path, extra: &[&str]| {
        let mut args = vec![
            "peer",
            "--dir",
            dir.to_str().unwrap(),
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--torrent",
            t,
        ];
        args.extend(["--tracker", &url]);
        args.extend(extra);
        Proc::start(&args)
    };

    let start = Instant::now();
    let first = peer(&seed, &[]);
    first.wait_for("seeding", || {});
    let check = start.elapsed().as_secs_f64();
    println!(
        "seeder start-up check: {mib} MiB hashed in {check:.2} s = {:.0} MB/s",
        mib as f64 * 1.048576 / check
    );
    let _second = peer(&seed, &[]);
    _second.wait_for("seeding", || {});

    let client_dir = work.path().join("client");
    let start = Instant::now();
    let client = peer(&client_dir, &["--exit-when-done"]);
    let pid = client.0.id();
    let mut peak = 0;
    let line = client.wait_for("complete", || peak = peak.max(peak_rss_kib(pid)));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "download from 2 seeders: {mib} MiB in {secs:.2} s = {:.0} MB/s (process start to verified on disk)",
        mib as f64 * 1.048576 / secs
    );
    println!("  bytes per seeder: {}", field(&line, "peers"));
    println!("  client peak RSS: {:.1} MiB", peak as f64 / 1024.0);
    drop(tracker);
}
