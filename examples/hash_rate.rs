//! sha1_smol's raw rate over 64 MiB in RAM, on one thread and on every core at once: the
//! ceiling of the start-up check (which also reads the bytes from the page cache). `make bench`
//! prints it beside the check.
//!
//!     cargo run --release --example hash_rate
//!
//! Prints `sha1_smol one-core=<MB/s> all-cores=<MB/s> cores=<n>` (wall-clock rates: on a
//! shared machine they are as noisy as the check's).

use std::time::Instant;

const BUFFER: usize = 64 << 20;
const ROUNDS: usize = 4;

/// MB/s hashing `buf` `ROUNDS` times on each of `threads` threads at once.
fn rate(threads: usize, buf: &[u8]) -> f64 {
    let started = Instant::now();
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
    (threads * ROUNDS * buf.len()) as f64 / 1e6 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut rng = fastrand::Rng::with_seed(1);
    let buf: Vec<u8> = (0..BUFFER).map(|_| rng.u8(..)).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = rate(1, &buf);
    let all = rate(cores, &buf);
    println!("sha1_smol one-core={one:.0} all-cores={all:.0} cores={cores}");
}
