//! sha1_smol's raw rate over 64 MiB in RAM, on one thread and on every core at once: the
//! ceiling of the start-up check (which also reads the bytes from the page cache). `make bench`
//! prints it beside the check.
//!
//!     cargo run --release --example hash_rate
//!
//! Prints `sha1_smol one-core=<MB/s> all-cores=<MB/s> cores=<n> per-cpu-second=<MB>`: wall-clock
//! rates (on a shared machine as noisy as the check's), and the MB hashed per CPU-second the
//! process got on all cores, which load changes less.

use std::time::Instant;

const BUFFER: usize = 64 << 20;
const ROUNDS: usize = 4;

/// CPU time this process has used, in seconds.
fn cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// MB/s (wall) and MB per CPU-second, hashing `buf` `ROUNDS` times on each of `threads` threads
/// at once.
fn rate(threads: usize, buf: &[u8]) -> (f64, f64) {
    let started = Instant::now();
    let cpu = cpu_seconds();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..ROUNDS {
                    let mut sha = sha1_smol::Sha1::new();
                    // Fed as the check feeds it, 256 KiB at a time (disk::verify's CHUNK).
                    for chunk in buf.chunks(256 * 1024) {
                        sha.update(chunk);
                    }
                    std::hint::black_box(sha.digest());
                }
            });
        }
    });
    let mb = (threads * ROUNDS * buf.len()) as f64 / 1e6;
    (
        mb / started.elapsed().as_secs_f64(),
        mb / (cpu_seconds() - cpu),
    )
}

fn main() {
    let mut rng = fastrand::Rng::with_seed(1);
    let buf: Vec<u8> = (0..BUFFER).map(|_| rng.u8(..)).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (one, _) = rate(1, &buf);
    let (all, per_cpu) = rate(cores, &buf);
    println!(
        "sha1_smol one-core={one:.0} all-cores={all:.0} cores={cores} per-cpu-second={per_cpu:.0}"
    );
}
