"""Interop cases for the tracker's timing: a running libtorrent peer stays listed.

Real numbers: the tracker asks for a 1800 s interval and forgets a peer after 1.5 intervals;
libtorrent never re-announces sooner than its min_announce_interval (300 s). The case runs the
same rule scaled down (interval 4 s, so a 6 s timeout from the tracker's own default rule, and
libtorrent's minimum scaled the same way) and checks that libtorrent's own re-announces keep
it in every scrape over several timeouts.
"""

import json
import os
import time
import urllib.request

from cases import DEBIAN_PYTHON, LOOPBACK, CaseFailed, CaseSkipped, have_libtorrent, info_hash
from cases import make_content, missing_tool, mktorrent, need, scrape_complete

REAL_INTERVAL = 1800  # the tracker's default
LT_MIN_ANNOUNCE = 300  # libtorrent's default min_announce_interval
SCALED_INTERVAL = 4
WATCH = 24  # seconds watched: four peer timeouts of 1.5 scaled intervals

LT_SEEDER = """
import sys, time
sys.path.insert(0, {here!r})
import libtorrent as lt
from lt_peer import session_for, wait_listening
ses = session_for({bind!r}, 0)
ses.apply_settings({{"min_announce_interval": {min_announce}}})
port = wait_listening(ses, time.monotonic() + 10)
print(f"listening on {bind}:{{port}}", flush=True)
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info({torrent!r})
atp.save_path = {data!r}
ses.add_torrent(atp)
while True:
    for a in ses.pop_alerts():
        if isinstance(a, lt.tracker_reply_alert):
            print(f"announced at {{time.monotonic():.2f}}", flush=True)
    ses.wait_for_alert(200)
"""


def stats(announce_url):
    with urllib.request.urlopen(announce_url.replace("/announce", "/stats"), timeout=3) as r:
        return json.load(r)


def case_tracker_keeps_libtorrent_listed(ctx):
    """libtorrent's own re-announce timing keeps it in the swarm under the default rule, scaled."""
    need(have_libtorrent(), missing_tool("mktorrent"))
    ctx.pm.needs()
    if ctx.pm.self_check:
        raise CaseSkipped("scaled intervals need piecemeal's tracker flags (opentracker's are fixed)")
    proc = ctx.start(
        "piecemeal tracker",
        [ctx.pm.binary, "tracker", "--bind", f"{LOOPBACK}:0", "--interval", str(SCALED_INTERVAL)],
        env={"RUST_LOG": "info"},
    )
    m = ctx.wait_line(proc, r"^tracker listening on (\S+:\d+)\s*$", 20, "`tracker listening on ADDR`")
    url = f"http://{m.group(1)}/announce"
    name = "listed.bin"
    src = make_content(ctx.dir("seed"), name, 1024 * 1024 + 17, seed=name)
    torrent = mktorrent(ctx, src, url, 16, f"{name}.torrent")
    hx = info_hash(torrent)
    # Rounded up: libtorrent takes whole seconds, and 0 would mean "no minimum" rather than 0.67.
    min_announce = max(1, round(LT_MIN_ANNOUNCE * SCALED_INTERVAL / REAL_INTERVAL))
    script = ctx.path("lt_seeder.py")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(script, "w") as f:
        f.write(
            LT_SEEDER.format(
                here=here, bind=LOOPBACK, min_announce=min_announce, torrent=torrent, data=ctx.dir("seed")
            )
        )
    seeder = ctx.start("libtorrent seeder", [DEBIAN_PYTHON, script])
    ctx.wait_line(seeder, r"^listening on", 20, "`listening on ADDR`")
    deadline = ctx.within(20)
    while not scrape_complete(url, hx):
        ctx.check_alive()
        if time.monotonic() > deadline:
            raise CaseFailed(f"the libtorrent seeder never showed in the scrape of {url}")
        time.sleep(0.2)
    first = stats(url)["http"]["announces"]
    watch_until = time.monotonic() + WATCH
    scrapes = 0
    while time.monotonic() < watch_until:
        ctx.check_alive()
        seen = scrape_complete(url, hx)
        if not seen:
            raise CaseFailed(
                f"the running libtorrent seeder dropped out of the swarm after {scrapes} scrapes "
                f"(tracker interval {SCALED_INTERVAL} s, libtorrent min_announce_interval {min_announce} s)"
            )
        scrapes += 1
        time.sleep(0.25)
    announces = stats(url)["http"]["announces"] - first
    # Over 24 s at a 4 s interval libtorrent announces about six times; fewer than four means it
    # was not re-announcing on the tracker's interval and the check above proved little.
    if announces < 4:
        raise CaseFailed(f"libtorrent re-announced only {announces} times in {WATCH} s")
    return f"listed in all {scrapes} scrapes over {WATCH} s; {announces} re-announces (min_announce_interval {min_announce} s)"


# (group number from the brief, name, function, time budget in seconds)
CASES = [
    (4, "tracker-keeps-libtorrent-listed", case_tracker_keeps_libtorrent_listed, 60),
]
