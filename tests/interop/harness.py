"""Plumbing for the interop cases: processes, content, metainfo, outcomes.

Everything here is loopback-only and bounded in time: each process runs in
its own process group so that stopping it also stops anything it spawned, and
each wait has a deadline.
"""

import hashlib
import http.server
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LT_PEER = os.path.join(HERE, "lt_peer.py")
# python3-libtorrent is built for Debian's interpreter, not whatever python3 is on PATH.
DEBIAN_PYTHON = "/usr/bin/python3"
LOOPBACK = "127.0.0.1"


class CaseFailed(Exception):
    """The case ran and something did not interoperate; the message says what."""


class CaseSkipped(Exception):
    """The case cannot run here (a program is missing); the message says which and why."""


# ---------------------------------------------------------------- processes


class Proc:
    """A started program whose stdout lines are kept (and logged) and whose stderr goes to a file."""

    def __init__(self, label, argv, logdir, env=None, cwd=None):
        self.label = label
        self.argv = [str(a) for a in argv]
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", label)
        self.out_path = os.path.join(logdir, f"{safe}.stdout")
        self.err_path = os.path.join(logdir, f"{safe}.stderr")
        self.lines = []
        self._cond = threading.Condition()
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self._err = open(self.err_path, "wb")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._err,
                env=full_env,
                cwd=cwd,
                start_new_session=True,  # own process group, see stop()
            )
        except OSError as e:
            self._err.close()
            raise CaseFailed(f"cannot start {label} ({self.argv[0]}): {e}") from e
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        # Lines end at \n or \r: progress displays (transmission-cli's) rewrite one line
        # with \r and never end it, and each state they show must be seen.
        pending = b""
        with open(self.out_path, "wb") as log:
            for chunk in iter(lambda: self.popen.stdout.read1(65536), b""):
                log.write(chunk)
                log.flush()
                *done, pending = re.split(rb"\r\n|\r|\n", pending + chunk)
                self._add([d.decode("utf-8", "replace") for d in done if d])
        self._add([pending.decode("utf-8", "replace")] if pending else [])

    def _add(self, lines):
        with self._cond:
            self.lines.extend(lines)
            self._cond.notify_all()

    def wait_line(self, pattern, deadline, what, watch=()):
        """Return the match of the first stdout line matching `pattern` (a regex).

        Fails as soon as the process exits without printing it, when one of the
        `watch` processes exits (the other side of the transfer died), or at
        `deadline` (a time.monotonic() value).
        """
        rx = re.compile(pattern)
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                if self.popen.poll() is not None and not self._reader.is_alive():
                    raise CaseFailed(
                        f"{self.label} exited with status {self.popen.returncode} "
                        f"before printing {what}"
                    )
                for other in watch:
                    if other.exited():
                        raise CaseFailed(
                            f"{other.label} exited with status {other.popen.returncode} "
                            f"while waiting for {self.label} to print {what}"
                        )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CaseFailed(f"{self.label} did not print {what} in time")
                self._cond.wait(min(left, 0.5))

    def exited(self):
        return self.popen.poll() is not None

    def wait_exit(self, deadline):
        """Exit status, or None if still running at `deadline`."""
        try:
            return self.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace=3.0):
        """SIGTERM the whole process group, SIGKILL it after `grace` seconds."""
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Children of the program may outlive it; the group id is still ours.
        _signal_group(self.popen.pid, signal.SIGKILL)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        self._reader.join(timeout=grace)
        self._err.close()

    def tail(self, n=30):
        """The last lines of stdout and stderr, for a failure report."""
        parts = [f"--- {self.label}: {' '.join(self.argv)}"]
        status = self.popen.poll()
        parts.append(f"    (exit status: {'running' if status is None else status})")
        for name, path in (("stdout", self.out_path), ("stderr", self.err_path)):
            parts.append(f"    [{name} tail]")
            parts.extend("    " + line for line in _tail_file(path, n))
        return "\n".join(parts)


def _signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _tail_file(path, n):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return [f"(cannot read {path}: {e})"]
    lines = [seg.split("\r")[-1] for seg in data.splitlines()]
    return lines[-n:] if lines else ["(empty)"]


def run_tool(argv, timeout, what):
    """Run a short-lived tool to completion; return its stdout. Fails with its output on error."""
    try:
        cp = subprocess.run(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as e:
        raise CaseFailed(f"{what} did not finish within {timeout}s: {' '.join(map(str, argv))}") from e
    except OSError as e:
        raise CaseFailed(f"cannot run {what} ({argv[0]}): {e}") from e
    out = cp.stdout.decode("utf-8", "replace")
    if cp.returncode != 0:
        err = cp.stderr.decode("utf-8", "replace")
        raise CaseFailed(
            f"{what} failed with status {cp.returncode}: {' '.join(map(str, argv))}\n"
            f"    stdout: {out.strip()[-2000:]}\n    stderr: {err.strip()[-2000:]}"
        )
    return out


def free_port():
    """A loopback TCP port that was free a moment ago (for programs that cannot bind 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_accepting(port, deadline, who):
    """Wait until something accepts TCP connections on the loopback port."""
    while True:
        try:
            socket.create_connection((LOOPBACK, port), timeout=1).close()
            return
        except OSError as e:
            if time.monotonic() > deadline:
                raise CaseFailed(f"{who} is not accepting connections on {LOOPBACK}:{port}: {e}") from e
            time.sleep(0.1)


def wait_file_line(path, pattern, deadline, who, what):
    """The first match of `pattern` in a log file that another program is still writing."""
    rx = re.compile(pattern)
    while True:
        try:
            with open(path, "rb") as f:
                m = rx.search(f.read().decode("utf-8", "replace"))
        except OSError:
            m = None
        if m:
            return m.group(0)
        if time.monotonic() > deadline:
            raise CaseFailed(f"{who} never logged {what} (/{pattern}/ in {path})")
        time.sleep(0.2)


class NullTracker:
    """A stand-in tracker that answers every announce with an empty peer list.

    Cases that dial peers directly use it so that no real tracker is under test
    by accident and no client trips over an unreachable one.
    """

    REPLY = b"d8:completei0e10:incompletei0e8:intervali1800e5:peers0:e"

    def __init__(self):
        reply = self.REPLY

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = reply if self.path.startswith("/announce") else b""
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a client that gave up (a `stopped` announce on its way out)

            def log_message(self, *_args):
                pass

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}/announce"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# ---------------------------------------------------------------- content


def write_random_file(path, size, rng):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n


def make_content(root, name, layout, seed):
    """Create `root/name`: one file if `layout` is an int size, else a dict relpath -> size.

    Returns the path of the created file or directory.
    """
    rng = random.Random(seed)
    top = os.path.join(root, name)
    if isinstance(layout, int):
        write_random_file(top, layout, rng)
    else:
        for rel, size in layout.items():
            write_random_file(os.path.join(top, rel), size, rng)
    return top


def zero_range(path, start, end):
    """Overwrite bytes [start, end) of a file with zeros, so the pieces there fail their hash."""
    with open(path, "r+b") as f:
        f.seek(start)
        left = end - start
        while left:
            n = min(left, 1 << 20)
            f.write(bytes(n))
            left -= n


def tree_digest(path):
    """relpath -> (size, sha1) for a file or every file under a directory."""
    if os.path.isfile(path):
        return {os.path.basename(path): _file_digest(path)}
    out = {}
    for dirpath, _dirs, files in os.walk(path):
        for fn in files:
            full = os.path.join(dirpath, fn)
            try:
                out[os.path.relpath(full, path)] = _file_digest(full)
            except FileNotFoundError:
                # Renamed while we walked (Transmission's `x.part` -> `x` on completion):
                # a poller sees the new name on its next look.
                continue
    return out


def _file_digest(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return (os.path.getsize(path), h.hexdigest())


def compare_trees(expected_path, got_path, skip_empty=False):
    """None if `got_path` holds exactly the bytes of `expected_path`, else a description.

    With skip_empty, zero-length files need not exist (Transmission 3.00 never creates them).
    """
    if not os.path.exists(got_path):
        return f"{got_path} does not exist"
    want, got = tree_digest(expected_path), tree_digest(got_path)
    if skip_empty:
        want = {rel: v for rel, v in want.items() if v[0] or rel in got}
    problems = []
    for rel, (size, digest) in sorted(want.items()):
        if rel not in got:
            problems.append(f"missing {rel}")
        elif got[rel] != (size, digest):
            problems.append(f"{rel}: {got[rel][0]} bytes sha1 {got[rel][1]}, want {size} bytes sha1 {digest}")
    problems.extend(f"unexpected file {rel}" for rel in sorted(set(got) - set(want)))
    return "; ".join(problems) or None


# ---------------------------------------------------------------- metainfo


def info_hash(torrent_path):
    """SHA-1 of the raw bencoded `info` value, computed independently of any client."""
    with open(torrent_path, "rb") as f:
        data = f.read()
    if data[:1] != b"d":
        raise CaseFailed(f"{torrent_path}: not a bencoded dictionary")
    i = 1
    while data[i : i + 1] != b"e":
        key_end = _skip(data, i)
        key = data[data.index(b":", i) + 1 : key_end]
        val_end = _skip(data, key_end)
        if key == b"info":
            return hashlib.sha1(data[key_end:val_end]).hexdigest()
        i = val_end
    raise CaseFailed(f"{torrent_path}: no info dictionary")


def _skip(data, i):
    """Index just past the bencoded value starting at i."""
    c = data[i : i + 1]
    if c == b"i":
        return data.index(b"e", i) + 1
    if c in (b"l", b"d"):
        i += 1
        while data[i : i + 1] != b"e":
            i = _skip(data, i)
        return i + 1
    if c.isdigit():
        colon = data.index(b":", i)
        return colon + 1 + int(data[i:colon])
    raise CaseFailed(f"bad bencode at byte {i}")


def parse_hash_line(text, who):
    m = re.search(r"^\s*Hash:\s*([0-9a-fA-F]{40})\s*$", text, re.M)
    if not m:
        raise CaseFailed(f"{who} printed no `Hash: <40 hex>` line:\n{text.strip()[-1500:]}")
    return m.group(1).lower()


# ---------------------------------------------------------------- programs


def have_libtorrent():
    """None if Debian's python3 can import libtorrent, else why not."""
    if not os.path.exists(DEBIAN_PYTHON):
        return f"{DEBIAN_PYTHON} not found (python3-libtorrent needs Debian's python3)"
    cp = subprocess.run(
        [DEBIAN_PYTHON, "-c", "import libtorrent"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    if cp.returncode != 0:
        return "python3-libtorrent not installed (run tests/interop/install.sh)"
    return None


_TOOL_PACKAGES = {
    "mktorrent": "mktorrent",
    "opentracker": "opentracker",
    "transmission-cli": "transmission-cli",
    "transmission-show": "transmission-cli",
}


def missing_tool(name):
    """None if `name` is on PATH, else why the case needing it is skipped."""
    if shutil.which(name):
        return None
    pkg = _TOOL_PACKAGES.get(name, name)
    return f"{name} not installed (Debian package {pkg}; run tests/interop/install.sh)"


def parse_complete(line):
    """Fields of a `complete <hash> <name> bytes=.. secs=.. peers=ip:port=bytes,... [more=..]` line.

    Fields beyond bytes/secs/peers (piecemeal adds e.g. mbps= and pieces=) are ignored.
    """
    m = re.match(r"complete ([0-9a-f]{40}) (.*?) bytes=(\d+)(?: |$)", line)
    fields = dict(re.findall(r"(?:^| )(secs|peers)=(\S*)", line[m.end() - 1 :] if m else ""))
    if not m or "secs" not in fields or "peers" not in fields:
        raise CaseFailed(f"malformed complete line (want `complete HASH NAME bytes=N secs=F peers=...`): {line!r}")
    peers = {}
    for item in filter(None, fields["peers"].split(",")):
        addr, _, n = item.rpartition("=")
        if not addr or not n.isdigit():
            raise CaseFailed(f"malformed peers entry {item!r} in: {line!r}")
        peers[addr] = peers.get(addr, 0) + int(n)
    try:
        secs = float(fields["secs"])
    except ValueError as e:
        raise CaseFailed(f"malformed secs= in: {line!r}") from e
    return {"hash": m.group(1), "name": m.group(2), "bytes": int(m.group(3)), "secs": secs, "peers": peers}
