#!/usr/bin/env python3
"""`make bench`: one seeder -> one leecher on 127.0.0.1, piecemeal->piecemeal and
libtorrent->libtorrent (Debian's python3-libtorrent, high-performance preset), side by side.

    python3 scripts/bench_transfer.py --bin target/release/piecemeal [--mib 1024]
                                      [--piece-length 1048576] [--only piecemeal|libtorrent]
                                      [--hash-rate target/release/examples/hash_rate]

For each client: the seeder's start-up check (process start to listening: hashing the whole
torrent), its restart with a resume record (process start to `seeding`; libtorrent's with the
resume data lt_peer.py saved at exit, to its `checked` line), the leecher's wall time (process start to exit, after it verified everything), the
rate while data flows (first byte on disk to the `complete` line), the leecher's CPU time
(user + sys, from wait4) and its peak resident memory (VmHWM, read from /proc until it exits;
libtorrent's includes the Python interpreter and the file pages it maps). With --hash-rate,
sha1_smol's raw rate in RAM (examples/hash_rate.rs) is printed beside the check: its ceiling. The machine may be shared: figures are noisy.
Everything runs under one temporary folder, removed at the end.
"""

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LT_PEER = os.path.join(HERE, "..", "tests", "interop", "lt_peer.py")
# python3-libtorrent is built for Debian's interpreter.
LT_PYTHON = "/usr/bin/python3"
DEADLINE_SECS = 600


class Proc:
    """A child whose stdout lines arrive on a queue, each with the time it was read."""

    def __init__(self, args):
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put((time.monotonic(), line.strip()))

    def wait_for(self, prefix):
        """(time, line) of the first line starting with `prefix`."""
        end = time.monotonic() + DEADLINE_SECS
        while time.monotonic() < end:
            try:
                at, line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.p.poll() is not None:
                    break
                continue
            if line.startswith(prefix):
                return at, line
        raise SystemExit(f"bench: no line starting {prefix!r} from {self.p.args[:3]}")

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def peer_args(kind, binary, folder, torrent, tracker, extra):
    if kind == "piecemeal":
        base = [binary, "peer", "--bind", "127.0.0.1", "--port", "0"]
    else:
        base = [LT_PYTHON, LT_PEER, "peer", "--bind", "127.0.0.1", "--port", "0", "--high-performance"]
        if "--exit-when-done" not in extra:
            # The seeder: piecemeal keeps its resume record in the folder; libtorrent's is here.
            base += ["--resume-file", os.path.join(os.path.dirname(folder), "lt.resume")]
    return base + ["--dir", folder, "--torrent", torrent, "--tracker", tracker] + extra


def peak_watch(pid, stop):
    """Polls the process's VmHWM (peak RSS since exec; wait4's ru_maxrss would also count the
    bench's own memory, shared at fork); returns a list whose last item is the latest, in KiB."""
    seen = [0]

    def poll():
        while not stop.is_set():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            seen.append(int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(0.01)

    threading.Thread(target=poll, daemon=True).start()
    return seen


def first_byte_watch(path, stop):
    """Polls the file's allocated size; returns a list holding the time it first grew."""
    seen = []

    def poll():
        while not stop.is_set():
            try:
                if os.stat(path).st_blocks > 0:
                    seen.append(time.monotonic())
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.002)

    threading.Thread(target=poll, daemon=True).start()
    return seen


def run_pair(kind, args, work, torrent, tracker, size):
    seed = os.path.join(work, "seed")
    started = time.monotonic()
    seeder = Proc(peer_args(kind, args.bin, seed, torrent, tracker, []))
    try:
        at, line = seeder.wait_for("listening on")
        addr = line.split()[-1]
        # piecemeal hashed before listening; lt_peer says `checked` once its check is done.
        if kind == "libtorrent":
            at, _ = seeder.wait_for("checked")
        check = at - started
        leech = os.path.join(work, f"leech-{kind}")
        os.makedirs(leech)
        stop = threading.Event()
        first = first_byte_watch(os.path.join(leech, "big.bin"), stop)
        start = time.monotonic()
        leecher = Proc(peer_args(kind, args.bin, leech, torrent, tracker, ["--connect", addr, "--exit-when-done"]))
        peaks = peak_watch(leecher.p.pid, stop)
        done, _ = leecher.wait_for("complete")
        # VmHWM only grows: the last reading before exit is the peak (the exit frees, never takes).
        time.sleep(0.05)
        peak = max(peaks)
        _, status, usage = os.wait4(leecher.p.pid, 0)
        end = time.monotonic()
        stop.set()
        if status != 0:
            raise SystemExit(f"bench: {kind} leecher exited with status {status}")
        flow_start = first[0] if first else start
        shutil.rmtree(leech)
    finally:
        # Its resume record (piecemeal's in the folder, libtorrent's in lt.resume) is written
        # at exit.
        seeder.stop()
    return {
        "check": check,
        "restart": restart_secs(kind, args, seed, torrent, tracker),
        "wall": end - start,
        "flow": done - flow_start,
        "peak": peak / 1024,
        "cpu": usage.ru_utime + usage.ru_stime,
        "size": size,
    }


def restart_secs(kind, args, seed, torrent, tracker):
    """A second seeder on the same folder, from process start to seeding from the resume
    record (piecemeal's `seeding` line; lt_peer's `checked` line, which must find everything)."""
    started = time.monotonic()
    seeder = Proc(peer_args(kind, args.bin, seed, torrent, tracker, []))
    try:
        if kind == "piecemeal":
            at, _ = seeder.wait_for("seeding")
        else:
            at, line = seeder.wait_for("checked")
            have, _, total = line.split("have=")[1].partition("/")
            if have != total:
                raise SystemExit(f"bench: libtorrent restarted with {have}/{total} bytes")
        return at - started
    finally:
        seeder.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--piece-length", type=int, default=1 << 20)
    ap.add_argument("--only", choices=["piecemeal", "libtorrent"])
    ap.add_argument("--hash-rate", help="examples/hash_rate built in release: sha1_smol's raw rate")
    args = ap.parse_args()
    kinds = [args.only] if args.only else ["piecemeal", "libtorrent"]
    work = tempfile.mkdtemp(prefix="piecemeal-bench-")
    try:
        seed = os.path.join(work, "seed")
        os.makedirs(seed)
        with open(os.path.join(seed, "big.bin"), "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(1 << 20))
        # A file a seeder has held for a while: one modified within 2 s of a resume record is
        # hashed again at the next start. And on disk, so that no writeback of it runs during
        # the start-up checks (it stays in the page cache).
        past = time.time() - 60
        os.utime(os.path.join(seed, "big.bin"), (past, past))
        os.sync()
        size = args.mib << 20
        torrent = os.path.join(work, "big.torrent")
        subprocess.run(
            [args.bin, "create", os.path.join(seed, "big.bin"), "--announce", "http://127.0.0.1:1/a",
             "--piece-length", str(args.piece_length), "--output", torrent],
            check=True, stdout=subprocess.DEVNULL,
        )
        # Just before the checks, so that it sees the same load.
        raw = None
        if args.hash_rate:
            out = subprocess.run([args.hash_rate], check=True, capture_output=True, text=True).stdout
            raw = dict(field.split("=") for field in out.split()[1:])
        tracker = Proc([args.bin, "tracker", "--bind", "127.0.0.1:0"])
        _, line = tracker.wait_for("tracker listening on")
        url = f"http://{line.split()[-1]}/announce"
        try:
            results = {kind: run_pair(kind, args, work, torrent, url, size) for kind in kinds}
        finally:
            tracker.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, args, raw)


def report(results, args, raw):
    mb = lambda r, secs: r["size"] / 1e6 / secs
    print(f"{args.mib} MiB, {args.piece_length // 1024} KiB pieces, loopback, one seeder -> one leecher "
          f"({os.cpu_count()} cores; a shared machine: figures are noisy)")
    kinds = list(results)
    print(f"{'':34}" + "".join(f"{k:>14}" for k in kinds))
    rows = [
        ("leecher wall time (start to exit)", lambda r: f"{r['wall']:.2f} s"),
        ("  wall rate", lambda r: f"{mb(r, r['wall']):.0f} MB/s"),
        ("  rate while data flows", lambda r: f"{mb(r, r['flow']):.0f} MB/s"),
        ("leecher CPU time (user + sys)", lambda r: f"{r['cpu']:.2f} s"),
        ("leecher peak memory (VmHWM)", lambda r: f"{r['peak']:.1f} MiB"),
        ("seeder start-up check", lambda r: f"{mb(r, r['check']):.0f} MB/s"),
        ("restart with resume record", lambda r: f"{r['restart']:.3f} s"),
    ]
    for name, cell in rows:
        print(f"{name:34}" + "".join(f"{cell(results[k]):>14}" for k in kinds))
    if len(kinds) == 2:
        p, l = results["piecemeal"], results["libtorrent"]
        print(f"piecemeal / libtorrent wall rate: {l['wall'] / p['wall']:.2f}x "
              f"(target >= 1.25x); while flowing: {l['flow'] / p['flow']:.2f}x")
    if "piecemeal" in results:
        p = results["piecemeal"]
        print(f"piecemeal targets: peak memory {p['peak']:.1f} MiB (< 20), "
              f"check {mb(p, p['check']):.0f} MB/s (>= 1400), "
              f"restart to seeding {p['restart']:.3f} s (< 0.2)")
    if raw and "piecemeal" in results:
        p = results["piecemeal"]
        print(f"sha1_smol in RAM: {raw['one-core']} MB/s on one core, {raw['all-cores']} MB/s on "
              f"{raw['cores']} ({raw['per-cpu-second']} MB per CPU-second): the check runs at "
              f"{mb(p, p['check']) / float(raw['all-cores']):.2f}x that")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
