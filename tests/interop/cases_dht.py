"""DHT interop cases (BEP 5): a small DHT of libtorrent sessions and piecemeal nodes on
loopback, bootstrapped only from one another, and torrents whose tracker cannot be reached,
so every peer is found through the DHT alone. Each downloader is given just the magnet link
(`magnet:?xt=urn:btih:HASH`: no tracker, no x.pe, no --connect): it finds the seeder in the
DHT, fetches the metadata from it and downloads. Downloaders print `metadata <hash> <name>
secs=..` and `first-piece <hash> <name> secs=..` (seconds from their start), which the cases
report; the first case runs a piecemeal and a libtorrent downloader side by side.

The libtorrent side is lt_dht.py (a session with its DHT on, told to accept many nodes on
127.0.0.1). The piecemeal side reports its lookups on stderr (`DHT lists N peers (K nodes
answered, announced to M)`), which is where these cases watch it announce.
"""

import os

from cases import expect_same, mktorrent, need
from cases_magnet import fmt_times, timings
from harness import (
    DEBIAN_PYTHON,
    LOOPBACK,
    CaseSkipped,
    have_libtorrent,
    info_hash,
    make_content,
    missing_tool,
    wait_file_line,
)

LT_DHT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lt_dht.py")
SIZE = 2 * 1024 * 1024 + 4321
# Nothing listens there: the torrents name a tracker that cannot be reached.
DEAD_TRACKER = f"http://{LOOPBACK}:1/announce"


def bare_magnet(torrent):
    """The torrent's magnet link with the info hash alone."""
    return f"magnet:?xt=urn:btih:{info_hash(torrent)}"


def lt_node(ctx, role, nodes=(), torrent=None, data_dir=None, exit_when_done=False, magnet=None):
    """A libtorrent session in the DHT (joined through `nodes`); with `torrent` it seeds it,
    with `magnet` it downloads it, with no tracker. Returns (proc, "127.0.0.1:port")."""
    argv = [DEBIAN_PYTHON, LT_DHT, "--port", "0"]
    for n in nodes:
        argv += ["--node", n]
    if torrent:
        argv += ["--torrent", torrent, "--dir", data_dir]
    if magnet:
        argv += ["--magnet", magnet, "--dir", data_dir]
    if exit_when_done:
        argv.append("--exit-when-done")
    proc = ctx.start(f"libtorrent dht {role}", argv, must_live=not exit_when_done)
    m = ctx.wait_line(proc, r"^listening on (\S+:\d+)\s*$", 20, "`listening on ADDR`")
    return proc, m.group(1)


def pm_node(ctx, role, data_dir, torrent, nodes, exit_when_done=False, magnet=None):
    """A piecemeal peer whose DHT bootstraps from `nodes`, seeding `torrent` or downloading
    `magnet`. Returns (proc, "127.0.0.1:port")."""
    if ctx.pm.self_check:
        raise CaseSkipped("the DHT cases need piecemeal itself (lt_peer.py stands in without a DHT)")
    ctx.pm.needs()
    source = ["--magnet", magnet] if magnet else ["--torrent", torrent]
    argv = [ctx.pm.binary, "peer", "--dir", data_dir, *source, "--bind", LOOPBACK, "--port", "0"]
    for n in nodes:
        argv += ["--dht-bootstrap", n]
    if exit_when_done:
        argv.append("--exit-when-done")
    proc = ctx.start(f"piecemeal dht {role}", argv, env={"RUST_LOG": "info"}, must_live=not exit_when_done)
    m = ctx.wait_line(proc, r"^listening on (\S+:\d+)\s*$", 20, "`listening on ADDR`")
    return proc, m.group(1)


def small_dht(ctx):
    """Two libtorrent nodes that know each other; returns the first's process and both
    addresses."""
    hub_a, a = lt_node(ctx, "hub-a")
    hub_b, b = lt_node(ctx, "hub-b", nodes=[a])
    ctx.wait_line(hub_b, r"^dht nodes [1-9]", 20, "hub-b knowing hub-a")
    return hub_a, [a, b]


def content(ctx):
    need(have_libtorrent(), missing_tool("mktorrent"))
    src = make_content(ctx.dir("seed"), "dht.bin", SIZE, seed="dht")
    return src, mktorrent(ctx, src, DEAD_TRACKER, 16, "dht.torrent")


def wait_pm_announced(ctx, proc):
    wait_file_line(
        proc.err_path, r"DHT lists \d+ peers \(\d+ nodes answered, announced to [1-9]", ctx.within(30),
        proc.label, "a DHT announce",
    )


def case_dht_libtorrent_seeds(ctx):
    """libtorrent seeds, announced only to the DHT; piecemeal and libtorrent, given the bare magnet link, find it there and download."""
    src, torrent = content(ctx)
    hub, hubs = small_dht(ctx)
    seeder, seeder_addr = lt_node(ctx, "seeder", nodes=hubs, torrent=torrent, data_dir=ctx.dir("seed"))
    ctx.wait_line(seeder, r"^checked \S+ have=(\d+)/\1$", 30, "the seeder's data checked whole")
    port = seeder_addr.rsplit(":", 1)[1]
    ctx.wait_line(hub, rf"^dht announced \S+ by \S+:{port}$", 30, "the seeder's announce")
    magnet = bare_magnet(torrent)
    pm, _ = pm_node(ctx, "magnet leecher", ctx.dir("pm"), None, hubs[:1], exit_when_done=True, magnet=magnet)
    lt, _ = lt_node(ctx, "magnet leecher", nodes=hubs[:1], data_dir=ctx.dir("lt"), exit_when_done=True, magnet=magnet)
    ours = timings(ctx, pm, torrent, "piecemeal magnet leecher", 40)
    theirs = timings(ctx, lt, torrent, "libtorrent magnet leecher", 40)
    expect_same(src, os.path.join(ctx.tmp, "pm", "dht.bin"))
    expect_same(src, os.path.join(ctx.tmp, "lt", "dht.bin"))
    return f"{fmt_times('piecemeal', ours)}; {fmt_times('libtorrent', theirs)} (same DHT, same seeder, same run)"


def case_dht_piecemeal_seeds(ctx):
    """piecemeal seeds and announces to the DHT; libtorrent, given the bare magnet link, finds it there and downloads."""
    src, torrent = content(ctx)
    _hub, hubs = small_dht(ctx)
    pm, pm_addr = pm_node(ctx, "seeder", ctx.dir("seed"), torrent, hubs)
    wait_pm_announced(ctx, pm)
    lt, _ = lt_node(ctx, "magnet leecher", nodes=hubs[1:], data_dir=ctx.dir("lt"), exit_when_done=True, magnet=bare_magnet(torrent))
    theirs = timings(ctx, lt, torrent, "libtorrent magnet leecher", 40)
    expect_same(src, os.path.join(ctx.tmp, "lt", "dht.bin"))
    return f"{fmt_times('libtorrent', theirs)} (piecemeal seeder {pm_addr})"


def case_dht_piecemeal_to_piecemeal(ctx):
    """piecemeal seeds, another piecemeal given the bare magnet link finds it through the DHT (libtorrent nodes between)."""
    src, torrent = content(ctx)
    _hub, hubs = small_dht(ctx)
    seeder, seeder_addr = pm_node(ctx, "seeder", ctx.dir("seed"), torrent, hubs[:1])
    wait_pm_announced(ctx, seeder)
    pm, _ = pm_node(ctx, "magnet leecher", ctx.dir("pm"), None, hubs[1:], exit_when_done=True, magnet=bare_magnet(torrent))
    ours = timings(ctx, pm, torrent, "piecemeal magnet leecher", 40)
    expect_same(src, os.path.join(ctx.tmp, "pm", "dht.bin"))
    return f"{fmt_times('piecemeal', ours)} (piecemeal seeder {seeder_addr})"


CASES = [
    (9, "dht-libtorrent-seeds", case_dht_libtorrent_seeds, 60),
    (9, "dht-piecemeal-seeds", case_dht_piecemeal_seeds, 60),
    (9, "dht-piecemeal-to-piecemeal", case_dht_piecemeal_to_piecemeal, 60),
]
