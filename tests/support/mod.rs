//! Helpers shared by the integration tests: running the `piecemeal` binary as child processes
//! that are always killed, reading their announced addresses, and comparing folders.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// The repository's testdata folder (read only: tests copy what they need to change).
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// A running `piecemeal` child; killed when dropped, so no test leaves one behind.
pub struct Proc {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Proc {
    /// Starts `piecemeal ARGS` with stdout and stderr captured.
    pub fn start(args: &[&str]) -> Proc {
        let mut command = Command::new(env!("CARGO_BIN_EXE_piecemeal"));
        command.args(args);
        Proc::spawn(command)
    }

    /// Starts `command` (one that runs `piecemeal`) with stdout and stderr captured.
    pub fn spawn(mut command: Command) -> Proc {
        let mut child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("piecemeal starts");
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Waits for a stdout line starting with `prefix` and returns it; panics (showing the
    /// process's stderr) after `timeout`.
    pub fn wait_for(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "no line starting with {prefix:?} within {timeout:?}; stdout so far: {:?}\nstderr:\n{}",
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    /// The address from a `... listening on ADDR` line.
    pub fn wait_listening(&mut self, prefix: &str) -> SocketAddr {
        let line = self.wait_for(prefix, Duration::from_secs(20));
        line.rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .expect("an address")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(Duration::from_secs(20))
    }

    /// Waits (bounded) for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "process did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `piecemeal ARGS` to completion and returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_piecemeal"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts a tracker on a free port; returns it with its announce URL.
pub fn tracker() -> (Proc, String) {
    let mut t = Proc::start(&["tracker", "--bind", "127.0.0.1:0", "--interval", "2"]);
    let addr = t.wait_listening("tracker listening on");
    (t, format!("http://{addr}/announce"))
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Asserts that every file below `expected` exists below `actual` with the same bytes (a
/// peer's own `.piecemeal` folder of resume records aside).
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    for entry in std::fs::read_dir(expected).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".piecemeal" {
            continue;
        }
        let other = actual.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            assert_same_tree(&entry.path(), &other);
        } else {
            let want = std::fs::read(entry.path()).unwrap();
            let got = std::fs::read(&other).unwrap_or_else(|e| panic!("{}: {e}", other.display()));
            assert!(
                want == got,
                "{} differs from {}",
                other.display(),
                entry.path().display()
            );
        }
    }
}

/// Parses `key=value` fields of a `complete ...` line.
pub fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|f| f.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

/// Runs `piecemeal ARGS` as a user would (no `RUST_LOG` from the test environment, so only
/// the default warnings reach stderr) and returns (exit code, stdout, stderr). Kills it and
/// panics if it has not exited within `timeout`.
pub fn run_bounded(args: &[&str], timeout: Duration) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_piecemeal"));
    command.args(args).env_remove("RUST_LOG");
    wait_output(command, timeout)
}

/// Runs `command` with stdout and stderr captured, killing it after `timeout`; returns (exit
/// code, stdout, stderr). A death by signal reads as code -1.
pub fn wait_output(mut command: Command, timeout: Duration) -> (i32, String, String) {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("command starts");
    let pid = child.id();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => {
            let out = out.expect("output collected");
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{command:?} did not exit within {timeout:?}");
        }
    }
}

/// Asserts that `stderr` is exactly one line, `piecemeal: ...`, containing every needle, with
/// no panic message; returns that line.
pub fn assert_one_error_line<'a>(stderr: &'a str, needles: &[&str]) -> &'a str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one line on stderr, got:\n{stderr}"
    );
    let line = lines[0];
    assert!(line.starts_with("piecemeal: "), "{line:?}");
    assert!(
        !line.contains("panicked") && !line.contains("RUST_BACKTRACE"),
        "{line:?}"
    );
    for needle in needles {
        assert!(
            line.contains(needle),
            "{line:?} does not mention {needle:?}"
        );
    }
    line
}

/// A port on 127.0.0.1 that nothing listens on (bound once, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `len` bytes of deterministic noise, creating the folders above `path`.
pub fn noise_file(path: &Path, len: usize, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Makes `work/seed/NAME/{a.bin, deep/b.bin}` (`len` bytes of noise in all, a third in the
/// first file) and a torrent of it with `piece_length`; returns the .torrent's path.
pub fn noise_torrent(work: &Path, name: &str, len: usize, piece_length: u64) -> PathBuf {
    let content = work.join("seed").join(name);
    noise_file(&content.join("a.bin"), len / 3, 1);
    noise_file(&content.join("deep/b.bin"), len - len / 3, 2);
    let torrent = work.join(format!("{name}.torrent"));
    create_torrent(&content, piece_length, &torrent);
    torrent
}

/// Runs `piecemeal create` on `content` (a file or folder) with `piece_length`, writing
/// `output`; the announce URL is a closed port, so tests give peers their tracker themselves.
pub fn create_torrent(content: &Path, piece_length: u64, output: &Path) {
    let (code, _, err) = run(&[
        "create",
        content.to_str().unwrap(),
        "--announce",
        "http://127.0.0.1:1/announce",
        "--piece-length",
        &piece_length.to_string(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
}

/// Starts `piecemeal peer` on a free port of 127.0.0.1 with `dir` as its folder, the given
/// torrents, and `extra` flags.
pub fn peer(dir: &Path, torrents: &[&Path], extra: &[&str]) -> Proc {
    let mut args = vec!["peer", "--dir", dir.to_str().unwrap(), "--port", "0"];
    // A peer listens on every interface by default; a test's only on loopback.
    args.extend(["--bind", "127.0.0.1"]);
    for t in torrents {
        args.extend(["--torrent", t.to_str().unwrap()]);
    }
    args.extend(extra);
    Proc::start(&args)
}
