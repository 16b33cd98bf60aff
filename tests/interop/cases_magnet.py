"""Interop cases for magnet links (BEP 9 over BEP 10) and peer exchange (BEP 11).

Magnet links carry a tracker (`tr=`) and nothing else; no DHT runs anywhere. Each magnet
leecher prints `metadata <hash> <name> secs=..` and `first-piece <hash> <name> secs=..`
(seconds from its start), which the cases report for piecemeal and libtorrent side by side.
"""

import os
import urllib.parse

from cases import (
    SINGLE,
    expect_complete,
    expect_exit0,
    expect_same,
    fmt_peers,
    lt_peer,
    mktorrent,
    need,
)
from harness import (
    DEBIAN_PYTHON,
    LOOPBACK,
    LT_PEER,
    CaseFailed,
    have_libtorrent,
    info_hash,
    make_content,
    missing_tool,
)

MiB = 1024 * 1024
# Big enough that the capped seeder takes seconds (8 s for one leecher alone), so B is still
# connected to A when A's PEX to L is due, and the leechers overlap and trade.
PEX_SIZE = 8 * MiB + 777
PEX_SEEDER_RATE = 1 * MiB


def magnet_link(torrent, name, tracker):
    return (
        f"magnet:?xt=urn:btih:{info_hash(torrent)}&dn={urllib.parse.quote(name)}"
        f"&tr={urllib.parse.quote(tracker, safe='')}"
    )


def pm_magnet(ctx, role, data_dir, magnet):
    """A piecemeal peer given only a magnet link (it exits once complete)."""
    argv = ctx.pm._argv() + ["peer", "--dir", data_dir, "--magnet", magnet, "--bind", LOOPBACK, "--port", "0"]
    return ctx.start(f"{ctx.pm.label} {role}", argv + ["--exit-when-done"], env=ctx.pm._env(), must_live=False)


def lt_magnet(ctx, role, data_dir, magnet):
    """A libtorrent peer given only a magnet link (it exits once complete)."""
    argv = [DEBIAN_PYTHON, LT_PEER, "peer", "--dir", data_dir, "--magnet", magnet, "--bind", LOOPBACK, "--port", "0"]
    return ctx.start(f"libtorrent {role}", argv + ["--exit-when-done"], must_live=False)


def timings(ctx, proc, torrent, who, secs=60):
    """Wait for `who`'s metadata, first-piece and complete lines; return their times."""
    want = info_hash(torrent)
    got = {}
    for what in ("metadata", "first-piece"):
        line = ctx.wait_line(proc, rf"^{what} ([0-9a-f]{{40}}) .* secs=([\d.]+)", secs, f"`{what} ...`")
        if line.group(1) != want:
            raise CaseFailed(f"{who} {what} for {line.group(1)}, the magnet's is {want}")
        got[what] = float(line.group(2))
    got["complete"] = expect_complete(proc, torrent, ctx, secs, who)
    expect_exit0(proc, ctx, who)
    return got


def fmt_times(who, t):
    return f"{who}: metadata {t['metadata']:.2f}s, first piece {t['first-piece']:.2f}s"


def _seeded_content(ctx, size, name):
    need(have_libtorrent(), missing_tool("mktorrent"))
    ctx.pm.needs()
    src = make_content(ctx.dir("seed"), name, size, seed=name)
    torrent = mktorrent(ctx, src, ctx.null_tracker(), 16, f"{name}.torrent")
    return src, torrent


def case_magnet_libtorrent_seeds(ctx):
    """libtorrent seeds; piecemeal and libtorrent each download from a magnet link alone (tr=, no DHT)."""
    src, torrent = _seeded_content(ctx, SINGLE, "single.bin")
    tracker = ctx.pm.tracker(ctx, [info_hash(torrent)])
    seed, _ = lt_peer(ctx, "seeder", ctx.dir("seed"), torrent, tracker=tracker)
    ctx.wait_line(seed, r"^checked \S+ have=(\d+)/\1$", 30, "`checked` with all its data")
    magnet = magnet_link(torrent, "single.bin", tracker)
    pm = pm_magnet(ctx, "magnet leecher", ctx.dir("pm"), magnet)
    lt = lt_magnet(ctx, "magnet leecher", ctx.dir("lt"), magnet)
    ours = timings(ctx, pm, torrent, f"{ctx.pm.label} magnet leecher")
    theirs = timings(ctx, lt, torrent, "libtorrent magnet leecher")
    expect_same(src, os.path.join(ctx.tmp, "pm", "single.bin"))
    expect_same(src, os.path.join(ctx.tmp, "lt", "single.bin"))
    saved = os.path.join(ctx.tmp, "pm", "single.bin.torrent")
    if not ctx.pm.self_check and info_hash(saved) != info_hash(torrent):
        raise CaseFailed(f"{saved} is not the torrent (info hash {info_hash(saved)})")
    return f"{fmt_times(ctx.pm.label, ours)}; {fmt_times('libtorrent', theirs)} (same seeder, same run)"


def case_magnet_piecemeal_seeds(ctx):
    """piecemeal seeds; libtorrent downloads from a magnet link alone (tr=, no DHT): metadata from piecemeal."""
    src, torrent = _seeded_content(ctx, SINGLE, "single.bin")
    tracker = ctx.pm.tracker(ctx, [info_hash(torrent)])
    ctx.pm.peer(ctx, "seeder", ctx.dir("seed"), torrent, tracker=tracker)
    lt = lt_magnet(ctx, "magnet leecher", ctx.dir("lt"), magnet_link(torrent, "single.bin", tracker))
    theirs = timings(ctx, lt, torrent, "libtorrent magnet leecher")
    expect_same(src, os.path.join(ctx.tmp, "lt", "single.bin"))
    return fmt_times("libtorrent", theirs)


def _pex(ctx, seeder_is_lt):
    """A capped seeder A, leecher B dialling A, then leecher L dialling only A: L must learn
    of B through A's PEX and download from both. Returns (L's complete fields, names)."""
    src, torrent = _seeded_content(ctx, PEX_SIZE, "pex.bin")
    seed_dir = ctx.dir("seed")
    if seeder_is_lt:
        argv = [DEBIAN_PYTHON, LT_PEER, "peer", "--dir", seed_dir, "--torrent", torrent, "--bind", LOOPBACK]
        argv += ["--port", "0", "--upload-limit", str(PEX_SEEDER_RATE)]
        a = ctx.start("libtorrent seeder A", argv)
        a_addr = ctx.wait_line(a, r"^listening on (\S+:\d+)\s*$", 20, "`listening on ADDR`").group(1)
        ctx.wait_line(a, r"^checked \S+ have=(\d+)/\1$", 30, "`checked` with all its data")
    else:
        argv = ctx.pm._argv() + ["peer", "--dir", seed_dir, "--torrent", torrent, "--bind", LOOPBACK]
        argv += ["--port", "0", "--connect", f"{LOOPBACK}:1"]
        argv += ["--upload-limit", str(PEX_SEEDER_RATE)] if ctx.pm.self_check else ["--max-upload-rate", "1M"]
        a = ctx.start(f"{ctx.pm.label} seeder A", argv, env=ctx.pm._env())
        a_addr = ctx.wait_line(a, r"^listening on (\S+:\d+)\s*$", 20, "`listening on ADDR`").group(1)
    _b, b_addr = ctx.pm.peer(ctx, "leecher B", ctx.dir("b"), torrent, connect=[a_addr])
    if seeder_is_lt:
        l_proc, _ = ctx.pm.peer(ctx, "leecher L", ctx.dir("l"), torrent, connect=[a_addr], exit_when_done=True)
        who = f"{ctx.pm.label} leecher L"
    else:
        l_proc, _ = lt_peer(ctx, "leecher L", ctx.dir("l"), torrent, connect=[a_addr], exit_when_done=True)
        who = "libtorrent leecher L"
    c = expect_complete(l_proc, torrent, ctx, 60, who)
    expect_same(src, os.path.join(ctx.tmp, "l", "pex.bin"))
    names = {a_addr: "A", b_addr: "B"}
    # L was told of A alone and there is no tracker: any other peer that served it is B, which
    # one of them learnt of by PEX. L either dialled B's listening address or B dialled L (then
    # the address is B's outgoing port, and L's own dial was the refused half of the pair).
    from_b = sum(n for addr, n in c["peers"].items() if addr != a_addr)
    names.update({addr: "B" for addr in c["peers"] if addr not in names})
    if from_b == 0 or c["peers"].get(a_addr, 0) == 0:
        raise CaseFailed(f"{who} did not download from both A and B (PEX): {fmt_peers(c['peers'], names)}")
    return c, names


def case_pex_from_libtorrent(ctx):
    """PEX: piecemeal leecher knowing only a libtorrent seeder learns of a piecemeal leecher from it; gets data from both."""
    c, names = _pex(ctx, seeder_is_lt=True)
    return f"{c['bytes']} bytes in {c['secs']:.2f}s, peers {fmt_peers(c['peers'], names)}"


def case_pex_to_libtorrent(ctx):
    """PEX: libtorrent leecher knowing only a piecemeal seeder learns of a piecemeal leecher from it; gets data from both."""
    c, names = _pex(ctx, seeder_is_lt=False)
    return f"{c['bytes']} bytes in {c['secs']:.2f}s, peers {fmt_peers(c['peers'], names)}"


# (group number, name, function, time budget in seconds), as in cases.py
CASES = [
    (8, "magnet-libtorrent-seeds", case_magnet_libtorrent_seeds, 60),
    (8, "magnet-piecemeal-seeds", case_magnet_piecemeal_seeds, 60),
    (8, "pex-from-libtorrent", case_pex_from_libtorrent, 60),
    (8, "pex-to-libtorrent", case_pex_to_libtorrent, 60),
]
