#!/usr/bin/env python3
"""Swarm benchmark in the network lab: piecemeal and libtorrent against the Kurose-Ross bound.

    python3 tests/lab/bench_swarm.py --bin target/release/piecemeal --out target/bench-swarm
                                     [--only A|B] [--client piecemeal|libtorrent] [--keep]

One seeder and eight leechers, each in its own network namespace, a 64 MiB file
of 256 KiB pieces, every upload capped at the hub, downloads free, piecemeal's
tracker in the hub. Configurations: A) everyone uploads 4 MB/s; B) the seeder
8 MB/s, the leechers 2 MB/s. For each client it prints the distribution time D
(the last leecher's `complete`), D against the bound
max{F/u_s, F/d_min, N*F/(u_s + sum u_i)} (d_min is unlimited here), the copies of
the file the seeder sent (its shaper's byte counter / F; IP and TCP headers
included, ~4.5%), connections that left data unread for 5 s or more, the share
of its upload cap the seeder and the leechers together used in each quarter of D,
the bytes the hub delivered to each leecher until it completed over F (frames counted as
the hub's veth sends them, GRO-merged, so headers count less than on the shaper: a rough
gauge of duplicates), and piecemeal's D / libtorrent's D. One SVG per client and configuration plots every
leecher's progress (bytes the hub delivered to it, as a share of what it had
received when it completed) against time, with the bound and D marked.

Not part of `make test`. Without root (CAP_NET_ADMIN) or without
python3-libtorrent, it says so and skips what it cannot run.
"""

import argparse
import os
import shutil
import signal
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))

from harness import have_libtorrent  # noqa: E402
from netlab import HUB_ADDR, Lab, LabUnavailable, check_available  # noqa: E402
from svg import progress_plot  # noqa: E402
from swarm import (  # noqa: E402
    MB,
    TRACKER_PORT,
    CaseFailed,
    kurose_ross_bound,
    libtorrent_client,
    piecemeal_client,
    prepare_content,
    run_swarm,
    verify_copies,
)

MiB = 1024 * 1024
SIZE = 64 * MiB
PIECE = 256 * 1024
LEECHERS = 8
CONFIGS = {
    "A": ("everyone uploads 4 MB/s", [4 * MB] * (LEECHERS + 1)),
    "B": ("seeder 8 MB/s, leechers 2 MB/s", [8 * MB] + [2 * MB] * LEECHERS),
}
# Give up on a run after this many bounds (plus start-up), or when nothing moves this long.
BUDGET_BOUNDS = 8
BUDGET_SLACK = 30
STALL_SECS = 30


def progress_series(run):
    """Per leecher: (secs, share of the bytes it had received at completion) until it completed."""
    series = []
    for i in run.leechers:
        end = run.done[i][0] if i in run.done else None
        pts = [(s.t, s.received.get(i, 0)) for s in run.samples if end is None or s.t <= end + 0.3]
        total = pts[-1][1] if end is not None and pts else SIZE
        label = f"leecher {i}" + (f" {end:.1f}s" if end is not None else " unfinished")
        series.append((label, [(t, b / max(total, 1)) for t, b in pts]))
    return series


def upload_use(run, end, parts=4):
    """Where the time goes: the share of its upload cap the seeder, and the leechers together,
    used in each of `parts` equal slices of [0, end] (from the shapers' counters)."""
    if not run.samples or not end:
        return None

    def sent_at(t):
        s = min(run.samples, key=lambda s: abs(s.t - t))
        return s.sent.get(0, 0), sum(s.sent.get(i, 0) for i in run.leechers)

    cap_seeder, cap_leechers = run.rates[0], sum(run.rates[1:])
    rows = []
    for k in range(parts):
        a, b = end * k / parts, end * (k + 1) / parts
        (s0, l0), (s1, l1) = sent_at(a), sent_at(b)
        rows.append(((s1 - s0) / (cap_seeder * (b - a)), (l1 - l0) / (cap_leechers * (b - a))))
    return rows


def received_copies(run):
    """Per leecher that completed, the bytes the hub delivered to it until then, over F
    (IP and TCP headers included, ~4.5%): what it received beyond that is duplicates."""
    out = []
    for i, (end, _) in sorted(run.done.items()):
        s = min(run.samples, key=lambda s: abs(s.t - end), default=None)
        if s is not None:
            out.append(s.received.get(i, 0) / run.size)
    return out


def bench_one(binary, client, key, workdir, seed_dir, content, torrent, outdir):
    """Run one client in one configuration; return a result dict (or raise CaseFailed)."""
    label, rates = CONFIGS[key]
    with Lab(rates) as lab:
        bound = kurose_ross_bound(SIZE, rates)
        budget = BUDGET_BOUNDS * bound + BUDGET_SLACK
        run = run_swarm(lab, client, binary, workdir, torrent, seed_dir, SIZE, budget, STALL_SECS)
    wrong = verify_copies(run, workdir, content)
    d = run.distribution_time()
    marks = [(f"bound {bound:.1f}s", bound, "#000")]
    if d is not None:
        marks.append((f"D {d:.1f}s", d, "#c00"))
    title = f"{client.name}, config {key} ({label}): " + (
        f"D = {d:.1f}s = {d / bound:.2f} x bound" if d is not None else f"{len(run.missing())} leechers unfinished"
    )
    plot = os.path.join(outdir, f"swarm-{key}-{client.name}.svg")
    progress_plot(plot, title, progress_series(run), marks)
    for i in run.leechers:
        shutil.rmtree(os.path.join(workdir, f"{client.name}-leecher{i}"), ignore_errors=True)
    return {
        "client": client.name,
        "d": d,
        "bound": bound,
        "copies": run.seeder_copies(),
        "stuck": len(run.stuck),
        "missing": run.missing(),
        "wrong": wrong,
        "plot": plot,
        "use": upload_use(run, d),
        "received": received_copies(run),
        "stuck_text": run.stuck_text(),
        "crashed": run.crashed and "\n".join([run.crashed] + [p.tail(12) for p in run.procs.values() if p.label in run.dead]),
    }


def report(key, results):
    label, rates = CONFIGS[key]
    bound = results[0]["bound"] if results else 0
    print(f"\nconfig {key}: {label}; F = {SIZE // MiB} MiB, {LEECHERS} leechers; Kurose-Ross bound {bound:.1f}s")
    print(f"  {'client':<11} {'D (s)':>7} {'D/bound':>8} {'seeder sent':>12} {'stuck conns':>12}  plot")
    by = {}
    for r in results:
        d = f"{r['d']:.1f}" if r["d"] is not None else "-"
        ratio = f"{r['d'] / r['bound']:.2f}x" if r["d"] is not None else "-"
        print(f"  {r['client']:<11} {d:>7} {ratio:>8} {r['copies']:>8.2f} copies {r['stuck']:>6}  {r['plot']}")
        if r["use"]:
            quarters = "  ".join(f"{s:.0%}/{le:.0%}" for s, le in r["use"])
            print(f"    upload used (seeder/leechers), by quarter of D: {quarters}")
        if r["received"]:
            got = r["received"]
            print(f"    each leecher received {min(got):.2f}-{max(got):.2f} copies (mean {sum(got) / len(got):.2f})")
        if r["crashed"]:
            print(f"    CRASHED: {r['crashed']}")
        if r["missing"]:
            print(f"    UNFINISHED leechers {r['missing']}")
        if r["wrong"]:
            print(f"    WRONG BYTES: {r['wrong']}")
        if r["stuck"]:
            print(r["stuck_text"])
        by[r["client"]] = r["d"]
    if by.get("piecemeal") and by.get("libtorrent"):
        print(f"  piecemeal D / libtorrent D = {by['piecemeal'] / by['libtorrent']:.2f}")


def on_signal(sig, _frame):
    raise KeyboardInterrupt(signal.Signals(sig).name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="path to the piecemeal binary")
    ap.add_argument("--out", required=True, help="folder for the SVG plots (outside the source tree)")
    ap.add_argument("--only", choices=sorted(CONFIGS), action="append", help="run only this configuration")
    ap.add_argument("--client", choices=["piecemeal", "libtorrent"], action="append", help="run only this client")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder with the logs")
    args = ap.parse_args()
    # Namespaces and processes are torn down by `finally`/`with` blocks: turn every
    # stopping signal into an exception (SIGINT too: a shell may start us with it ignored).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    binary = os.path.abspath(args.bin)
    try:
        check_available()
    except LabUnavailable as e:
        print(f"bench-swarm: SKIPPED, cannot build the network lab: {e}")
        return 0
    clients = [piecemeal_client(binary)]
    why_not = have_libtorrent()
    if why_not:
        print(f"bench-swarm: libtorrent SKIPPED: {why_not}")
    else:
        clients.append(libtorrent_client())
    clients = [c for c in clients if not args.client or c.name in args.client]
    outdir = os.path.abspath(args.out)
    os.makedirs(outdir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="pmlab-bench-")
    failed = False
    try:
        tracker_url = f"http://{HUB_ADDR}:{TRACKER_PORT}/announce"
        seed_dir, content, torrent = prepare_content(workdir, binary, SIZE, PIECE, tracker_url)
        for key in args.only or sorted(CONFIGS):
            results = []
            for client in clients:
                print(f"bench-swarm: config {key}, {client.name} ...", flush=True)
                try:
                    result = bench_one(binary, client, key, workdir, seed_dir, content, torrent, outdir)
                    if result["crashed"] and client.name == "libtorrent":
                        # The reference client's own crash says nothing about piecemeal: show it, run again once.
                        print(f"bench-swarm: libtorrent CRASHED, running it again once:\n{result['crashed']}")
                        result = bench_one(binary, client, key, workdir, seed_dir, content, torrent, outdir)
                    results.append(result)
                except (CaseFailed, LabUnavailable) as e:
                    failed = True
                    print(f"bench-swarm: config {key}, {client.name} FAILED: {e}", flush=True)
            report(key, results)
            failed |= any(r["missing"] or r["wrong"] or r["crashed"] for r in results)
        print(f"\nbench-swarm: plots in {outdir}")
    finally:
        if args.keep:
            print(f"bench-swarm: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        print(f"bench-swarm: interrupted ({e}); namespaces and processes torn down", flush=True)
        sys.exit(130)
