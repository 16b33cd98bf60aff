"""Interop cases for the UDP tracker protocol (BEP 15), both ways.

- Transmission and libtorrent announce to the piecemeal tracker over UDP only and find each
  other there (the libtorrent leecher dials the Transmission seeder it learned of).
- piecemeal announces over UDP only to Debian's opentracker (`listen.udp`) and downloads from a
  libtorrent seeder it learned of there.

Each torrent lists a single `udp://` tracker, so every announce that shows up in a scrape (asked
over HTTP on the same port) travelled over UDP.
"""

import os
import time

from cases import (
    MULTI,
    SINGLE,
    expect_complete,
    expect_exit0,
    expect_same,
    fmt_peers,
    lt_peer,
    lt_seed,
    mktorrent,
    need,
    scrape_complete,
    start_opentracker,
    start_transmission,
)
from harness import (
    LOOPBACK,
    CaseFailed,
    have_libtorrent,
    info_hash,
    make_content,
    missing_tool,
    wait_file_line,
)


def udp_url(http_url):
    """The `udp://` URL of a tracker that answers BEP 15 on its HTTP port."""
    return "udp://" + http_url.split("://", 1)[1]


def wait_listed(ctx, http_url, hx, who):
    """Wait until the tracker's scrape counts a seeder for `hx`."""
    deadline = ctx.within(30)
    while not scrape_complete(http_url, hx):
        ctx.check_alive()
        if time.monotonic() > deadline:
            raise CaseFailed(f"{who} never showed up as a seeder in the scrape of {http_url} for {hx}")
        time.sleep(0.2)


def case_udp_tracker_serves_clients(ctx):
    """Transmission seeds and libtorrent leeches; they meet only through piecemeal's UDP tracker."""
    need(have_libtorrent(), missing_tool("transmission-cli"), missing_tool("mktorrent"))
    ctx.pm.needs()
    name = "udp-introduced"
    src = make_content(ctx.dir("seed"), name, MULTI, seed=name)
    probe = mktorrent(ctx, src, "http://127.0.0.1:1/announce", 16, "probe.torrent")
    hx = info_hash(probe)
    if ctx.pm.self_check:
        http_url = start_opentracker(ctx, [hx], udp=True)
    else:
        http_url = ctx.pm.tracker(ctx, [hx])
    url = udp_url(http_url)
    torrent = mktorrent(ctx, src, url, 16, f"{name}.torrent")
    tr, port = start_transmission(ctx, "seeder", torrent, ctx.dir("seed"))
    wait_listed(ctx, http_url, hx, "the Transmission seeder")
    # Transmission also scrapes the UDP tracker (BEP 15 scrape) shortly after announcing.
    reply = wait_file_line(
        tr.err_path, r"Scrape successful", ctx.within(20), "transmission-cli", f"a UDP scrape of {url}"
    )
    tr_addr = f"{LOOPBACK}:{port}"
    # No --connect: the leecher learns of the seeder only from the UDP tracker's reply.
    leech, _ = lt_peer(ctx, "leecher", ctx.dir("leech"), torrent, exit_when_done=True)
    # Transmission unchokes on its own 10 s pulse.
    c = expect_complete(leech, torrent, ctx, 60, "libtorrent leecher")
    expect_exit0(leech, ctx, "libtorrent leecher")
    expect_same(src, os.path.join(ctx.tmp, "leech", name))
    if c["peers"].get(tr_addr, 0) <= 0:
        raise CaseFailed(f"the leecher credits no bytes to the Transmission seeder {tr_addr}: peers={c['peers']}")
    return f"{c['bytes']} bytes in {c['secs']:.2f}s via {url}; Transmission: {reply!r}"


def case_udp_opentracker(ctx):
    """piecemeal finds a libtorrent seeder only through opentracker's UDP tracker."""
    need(have_libtorrent(), missing_tool("opentracker"), missing_tool("mktorrent"))
    ctx.pm.needs()
    name = "udp-tracked.bin"
    src = make_content(ctx.dir("seed"), name, SINGLE, seed=name)
    probe = mktorrent(ctx, src, "http://127.0.0.1:1/announce", 18, "probe.torrent")
    hx = info_hash(probe)
    http_url = start_opentracker(ctx, [hx], udp=True)
    url = udp_url(http_url)
    torrent = mktorrent(ctx, src, url, 18, f"{name}.torrent")
    _lt, lt_addr = lt_seed(ctx, ctx.dir("seed"), torrent)
    wait_listed(ctx, http_url, hx, "the libtorrent seeder")
    # No --connect: the only way to the seeder is the UDP tracker.
    pm, _ = ctx.pm.peer(ctx, "leecher", ctx.dir("leech"), torrent, exit_when_done=True)
    c = expect_complete(pm, torrent, ctx, 60, f"{ctx.pm.label} leecher")
    expect_exit0(pm, ctx, f"{ctx.pm.label} leecher")
    expect_same(src, os.path.join(ctx.tmp, "leech", name))
    if c["peers"].get(lt_addr, 0) <= 0:
        raise CaseFailed(f"complete line credits no bytes to the libtorrent seeder {lt_addr}: peers={c['peers']}")
    return f"{c['bytes']} bytes in {c['secs']:.2f}s via {url}, peers {fmt_peers(c['peers'], {lt_addr: 'libtorrent'})}"


# (group, name, function, time budget in seconds), as in cases.py
CASES = [
    (7, "udp-tracker-serves-clients", case_udp_tracker_serves_clients, 90),
    (7, "udp-opentracker", case_udp_opentracker, 60),
]
