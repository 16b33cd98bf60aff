#!/usr/bin/env python3
"""A piecemeal swarm over capped links (`make lab-test`, part of `make test`).

    python3 tests/lab/lab_test.py --bin target/release/piecemeal [--runs N] [--keep]

One piecemeal seeder and six piecemeal leechers, each in its own network
namespace, every upload capped at the hub (seeder 8 MB/s, leechers 2 MB/s, like
home uplinks), a piecemeal tracker in the hub, a 32 MiB torrent of 256 KiB
pieces. It asserts, for each run:
  1. every leecher completes within 3x the Kurose-Ross bound plus startup slack;
  2. every leecher holds the seeder's bytes;
  3. no connection froze: no peer left bytes unread in a TCP receive queue, unchanged,
     for 5 s or more (`ss` in each namespace; the signature of two peers each blocked
     writing to the other);
  4. the leechers served each other: each received bytes from another leecher (its
     `complete` line's peers=) and uploaded at least a piece (the shaper's
     counters), and together they uploaded at least one copy of the file.
Needs root (CAP_NET_ADMIN): without it the test FAILS saying so, it never skips.
Exit status 1 if any run failed; the last line is `lab: N passed, N failed`.
"""

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from netlab import Lab, LabUnavailable  # noqa: E402
from swarm import (  # noqa: E402
    MB,
    STUCK_SECS,
    CaseFailed,
    kurose_ross_bound,
    piecemeal_client,
    prepare_content,
    run_swarm,
    verify_copies,
)

MiB = 1024 * 1024
SIZE = 32 * MiB
PIECE = 256 * 1024
# Seeder first, then the leechers (bytes/s).
RATES = [8 * MB] + [2 * MB] * 6
BOUND_FACTOR = 3
# Start-up: processes, tracker announces, first connections; generous for a loaded 2-core machine.
SLACK_SECS = 10
# The whole swarm sending less than a trickle for this long is a freeze; stop waiting then.
STALL_SECS = 15


def time_limit():
    return BOUND_FACTOR * kurose_ross_bound(SIZE, RATES) + SLACK_SECS


def judge(run, limit, workdir, content):
    """None if the run passed, else a message that says what happened."""
    leechers = run.leechers
    problems = []
    missing = run.missing()
    if run.crashed:
        problems.append(f"CRASHED: {run.crashed}")
    if missing:
        last = run.samples[-1].t if run.samples else 0
        recent = run.recent_sent(10)
        frozen = [i for i in range(len(run.rates)) if recent.get(i, 0) < 64 * 1024]
        problems.append(
            f"FROZE / TOO SLOW: leechers {missing} of {leechers} did not complete "
            f"(gave up after {last:.1f}s; limit {limit:.1f}s = {BOUND_FACTOR} x bound {run.bound:.1f}s + "
            f"{SLACK_SECS}s); peers that sent < 64 KiB in the last 10 s: {frozen}"
        )
    else:
        d = run.distribution_time()
        if d > limit:
            problems.append(f"TOO SLOW: the last leecher completed at {d:.1f}s, limit {limit:.1f}s")
    if run.stuck:
        problems.append(
            f"FROZEN CONNECTIONS: {len(run.stuck)} connection(s) left data unread for {STUCK_SECS:.0f}s or more "
            f"(the reading side was blocked, e.g. both ends of a connection blocked in write):\n" + run.stuck_text()
        )
    bad = verify_copies(run, workdir, content)
    if bad:
        problems.append(f"WRONG BYTES: {bad}")
    leecher_addrs = {run.addrs[i] for i in leechers}
    sent = run.samples[-1].sent if run.samples else {}
    for i, (_secs, parsed) in sorted(run.done.items()):
        from_leechers = sum(n for a, n in parsed["peers"].items() if a.rpartition(":")[0] in leecher_addrs)
        if from_leechers == 0:
            problems.append(f"NO EXCHANGE: leecher {i} received nothing from other leechers: peers={parsed['peers']}")
    for i in leechers:
        if sent.get(i, 0) < PIECE:
            problems.append(f"NO UPLOAD: leecher {i} sent only {sent.get(i, 0)} bytes through its shaper")
    if sum(sent.get(i, 0) for i in leechers) < SIZE:
        problems.append(
            f"NO SWARMING: the leechers together uploaded {sum(sent.get(i, 0) for i in leechers)} bytes, "
            f"less than one copy ({SIZE})"
        )
    if not problems:
        return None
    d = run.distribution_time()
    when = f"all leechers done at {d:.1f}s = {d / run.bound:.2f} x bound" if d is not None else "not all done"
    return f"({when}, limit {limit:.1f}s)\n  " + "\n  ".join(problems) + "\n" + run.progress_text()


def one_run(binary, n, keep):
    workdir = tempfile.mkdtemp(prefix="pmlab-test-")
    try:
        with Lab(RATES) as lab:
            tracker_url = f"http://{lab.hub_addr}:6969/announce"
            seed_dir, content, torrent = prepare_content(workdir, binary, SIZE, PIECE, tracker_url)
            bound = kurose_ross_bound(SIZE, RATES)
            limit = time_limit()
            run = run_swarm(
                lab, piecemeal_client(binary), binary, workdir, torrent, seed_dir, SIZE, limit, STALL_SECS
            )
            failure = judge(run, limit, workdir, content)
            if failure:
                print(f"[run {n}] FAIL {failure}", flush=True)
                print(run.tails(), flush=True)
                return False
            d = run.distribution_time()
            print(
                f"[run {n}] PASS: {len(run.leechers)} leechers done in {d:.1f}s = {d / bound:.2f} x bound "
                f"{bound:.1f}s (limit {limit:.1f}s); seeder sent {run.seeder_copies():.2f} copies",
                flush=True,
            )
            return True
    except CaseFailed as e:
        print(f"[run {n}] FAIL {e}", flush=True)
        return False
    finally:
        if keep:
            print(f"[run {n}] kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def on_signal(sig, _frame):
    raise KeyboardInterrupt(signal.Signals(sig).name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="path to the piecemeal binary")
    ap.add_argument("--runs", type=int, default=1, help="repeat the swarm this many times")
    ap.add_argument("--keep", action="store_true", help="keep temp folders and logs")
    args = ap.parse_args()
    # Namespaces and processes are torn down by `finally`/`with` blocks: turn every
    # stopping signal into an exception (SIGINT too: a shell may start us with it ignored).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        sys.exit(f"lab: FAIL: piecemeal binary not found at {binary} (cargo build --release)")
    print(
        f"lab: {len(RATES) - 1} piecemeal leechers + 1 seeder, {SIZE // MiB} MiB / {PIECE // 1024} KiB pieces, "
        f"uploads capped at {[r / MB for r in RATES]} MB/s",
        flush=True,
    )
    passed = failed = 0
    t0 = time.monotonic()
    for n in range(1, args.runs + 1):
        try:
            ok = one_run(binary, n, args.keep)
        except LabUnavailable as e:
            print(f"lab: FAIL: cannot build the network lab: {e}", flush=True)
            print("lab: this test needs root (CAP_NET_ADMIN) and iproute2; it does not skip.", flush=True)
            return 1
        passed += ok
        failed += not ok
    print(f"lab: {passed} passed, {failed} failed ({time.monotonic() - t0:.0f}s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        print(f"lab: interrupted ({e}); namespaces and processes torn down", flush=True)
        sys.exit(130)
