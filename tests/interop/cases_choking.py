"""A libtorrent seeder that really chokes: piecemeal leechers against libtorrent leechers.

On loopback libtorrent puts every peer in its "local" peer class, which is never choked;
here the seeder runs with --internet (loopback in the global class, as peers on the
internet are), two unchoke slots and a capped upload, so most leechers are choked by it
most of the time and must get pieces from each other (and, with the fast extension, may
fetch its allowed-fast pieces while choked; the case checks that some leecher got most of
its data from the other leechers). The same swarm is run twice, once with
piecemeal leechers and once with libtorrent ones; piecemeal's must not take more than
20% longer to all finish.
"""

import os
import time

from cases import (
    DEBIAN_PYTHON,
    LOOPBACK,
    LT_PEER,
    CaseFailed,
    expect_complete,
    expect_same,
    have_libtorrent,
    lt_seed,
    make_content,
    missing_tool,
    mktorrent,
    need,
)

MiB = 1024 * 1024
SIZE = 16 * MiB + 777
LEECHERS = 3
SLOTS = 2
SEED_UPLOAD = 4 * MiB  # bytes/s: the seeder is the bottleneck, ~4 s for one copy
SLACK = 1.2
# libtorrent's Python binding sometimes segfaults (see tests/lab/lt_lab_peer.py); a libtorrent
# run that lost a process that way says so and runs again, at most this many times more.
LT_CRASH_RETRIES = 2
SIGSEGV_STATUS = -11


def _lt_leecher(ctx, role, folder, torrent, connect):
    """A libtorrent leecher that treats loopback as the internet and stays after completing."""
    argv = [DEBIAN_PYTHON, LT_PEER, "peer", "--dir", folder, "--torrent", torrent, "--bind", LOOPBACK, "--port", "0"]
    argv.append("--internet")
    for addr in connect:
        argv += ["--connect", addr]
    proc = ctx.start(f"libtorrent {role}", argv)
    m = ctx.wait_line(proc, r"^listening on (\S+:\d+)\s*$", 20, "`listening on ADDR`")
    return proc, m.group(1)


def _swarm(ctx, who, src, torrent, name, started, attempt):
    """Seeder plus LEECHERS leechers of one client; returns the time until the last finished.
    Every process it starts is appended to `started`."""
    seed_dir = os.path.dirname(src)
    # The seeder of each run is a fresh libtorrent process on the same data.
    argv = [DEBIAN_PYTHON, LT_PEER, "peer", "--dir", seed_dir, "--torrent", torrent, "--bind", LOOPBACK, "--port", "0"]
    argv += ["--internet", "--unchoke-slots", str(SLOTS), "--upload-limit", str(SEED_UPLOAD)]
    seeder = ctx.start(f"libtorrent seeder ({who} run)", argv)
    started.append(seeder)
    seed_addr = ctx.wait_line(seeder, r"^listening on (\S+:\d+)\s*$", 20, "`listening on ADDR`").group(1)
    ctx.wait_line(seeder, r"^checked \S+ have=(\d+)/\1\b", 30, "`checked` with every byte")
    leechers, addrs = [], [seed_addr]
    first = time.monotonic()
    for i in range(LEECHERS):
        folder = ctx.dir(f"{who}-{attempt}-{i}")
        launched = time.monotonic()
        role = f"leecher {i} ({who} run)"
        if who == "piecemeal":
            proc, addr = ctx.pm.peer(ctx, role, folder, torrent, connect=list(addrs))
        else:
            proc, addr = _lt_leecher(ctx, role, folder, torrent, list(addrs))
        started.append(proc)
        leechers.append((proc, folder, launched, role))
        addrs.append(addr)
    finished, from_seeder = [], []
    for proc, folder, launched, role in leechers:
        c = expect_complete(proc, torrent, ctx, 60, role)
        expect_same(src, os.path.join(folder, name))
        finished.append(launched + c["secs"] - first)
        from_seeder.append(c["peers"].get(seed_addr, 0))
    # With fewer slots than leechers, some leecher must have got most of its data elsewhere.
    if min(from_seeder) > SIZE // 2:
        raise CaseFailed(f"{who} run: every leecher got over half the file from the seeder {from_seeder}")
    # This run's programs end here; the next run must not take their exit for a failure.
    for proc in [p for p, _, _, _ in leechers] + [seeder]:
        proc.must_live = False
        proc.stop()
    return max(finished), finished, from_seeder


def _run(ctx, who, src, torrent, name):
    """`_swarm`, run again when (and only when) a libtorrent-only run lost a process to a
    segfault: that is the reference program crashing, not a time to compare with."""
    for attempt in range(LT_CRASH_RETRIES + 1):
        started = []
        try:
            return _swarm(ctx, who, src, torrent, name, started, attempt)
        except CaseFailed:
            crashed = [p.label for p in started if p.exited() and p.popen.returncode == SIGSEGV_STATUS]
            if who != "libtorrent" or not crashed or attempt == LT_CRASH_RETRIES:
                raise
            print(f"    {', '.join(crashed)} segfaulted (libtorrent's binding); running the libtorrent half again")
            for proc in started:
                proc.must_live = False
                proc.stop()


def case_libtorrent_seeder_chokes(ctx):
    """piecemeal leechers of a choking libtorrent seeder finish within 20% of libtorrent leechers."""
    need(have_libtorrent(), missing_tool("mktorrent"))
    ctx.pm.needs()
    name = "choked.bin"
    src = make_content(ctx.dir("seed"), name, SIZE, seed=name)
    torrent = mktorrent(ctx, src, ctx.null_tracker(), 18, f"{name}.torrent")
    times = {}
    for who in ("piecemeal", "libtorrent"):
        times[who] = _run(ctx, who, src, torrent, name)
    pm, lt = times["piecemeal"][0], times["libtorrent"][0]
    each = "; ".join(
        f"{w}: " + ", ".join(f"{t:.2f}s ({b // 1024} KiB from the seeder)" for t, b in zip(*times[w][1:]))
        for w in times
    )
    detail = (
        f"{LEECHERS} leechers of {SIZE} bytes, seeder {SLOTS} slots at {SEED_UPLOAD // MiB} MiB/s: "
        f"all done piecemeal {pm:.2f}s, libtorrent {lt:.2f}s ({each})"
    )
    print(f"    {detail}")
    if pm > SLACK * lt:
        raise CaseFailed(f"piecemeal's leechers took over {SLACK}x libtorrent's: {detail}")
    return detail


# (group number from the brief, name, function, time budget in seconds)
CASES = [
    (8, "libtorrent-seeder-chokes", case_libtorrent_seeder_chokes, 150),
]
