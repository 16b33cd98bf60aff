//! IPv6: a peer learns an IPv6 seeder from the tracker's `peers6` (BEP 7) and dials it. Everything
//! runs inside a network namespace of its own (needs root and iproute2, as the interop tests'
//! lab does), where the peers keep their default of listening on every interface.

mod support;

use std::process::Command;
use std::time::Duration;
use support::{Proc, assert_same_tree, field, noise_torrent};

const DOWNLOAD: Duration = Duration::from_secs(60);

/// A network namespace with only its loopback interface up; deleted when dropped.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("pm-ipv6-{}", std::process::id());
        let ip = |args: &[&str]| {
            let out = Command::new("ip")
                .args(args)
                .output()
                .expect("iproute2's `ip` runs (this test needs it, and root)");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        // A namespace left by a killed earlier run of this process id goes first.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let netns = Netns(name);
        ip(&["-n", &netns.0, "link", "set", "lo", "up"]);
        netns
    }

    /// Starts `piecemeal ARGS` inside the namespace.
    fn start(&self, args: &[&str]) -> Proc {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.0, env!("CARGO_BIN_EXE_piecemeal")])
            .args(args);
        Proc::spawn(command)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

#[test]
fn a_peer_dials_an_ipv6_seeder_named_in_peers6() {
    let netns = Netns::new();
    let work = tempfile::tempdir().unwrap();
    let torrent = noise_torrent(work.path(), "six", 1 << 20, 1 << 15);
    let t = torrent.to_str().unwrap();
    let mut tracker = netns.start(&["tracker", "--bind", "[::1]:0"]);
    let tracker_addr = tracker.wait_listening("tracker listening on");
    assert!(tracker_addr.is_ipv6(), "{tracker_addr}");
    let url = format!("http://{tracker_addr}/announce");

    // Both peers listen on their default, every interface of the namespace; announcing from
    // ::1 puts them in the tracker's `peers6`.
    let seed_dir = work.path().join("seed");
    let mut seeder = netns.start(&[
        "peer",
        "--dir",
        seed_dir.to_str().unwrap(),
        "--port",
        "0",
        "--torrent",
        t,
        "--tracker",
        &url,
    ]);
    let seeder_port = seeder.wait_listening("listening on").port();
    seeder.wait_for("seeding", DOWNLOAD);
    let client_dir = work.path().join("client");
    let mut client = netns.start(&[
        "peer",
        "--dir",
        client_dir.to_str().unwrap(),
        "--port",
        "0",
        "--torrent",
        t,
        "--tracker",
        &url,
        "--exit-when-done",
    ]);
    let line = client.wait_for("complete", DOWNLOAD);
    assert_eq!(
        field(&line, "peers"),
        format!("[::1]:{seeder_port}=1048576"),
        "{line}"
    );
    assert!(client.wait_exit(DOWNLOAD).success());
    assert_same_tree(&seed_dir, &client_dir);
    assert!(seeder.terminate().success());
    assert!(tracker.terminate().success());
}
