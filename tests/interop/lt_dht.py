#!/usr/bin/python3
"""A libtorrent-rasterbar session whose DHT runs on loopback, for the DHT interop cases.

Run it with Debian's /usr/bin/python3 (python3-libtorrent is built for it).

    lt_dht.py --port 0 [--node IP:PORT ...] [(--torrent FILE | --magnet URI) --dir DIR]

It joins the DHT only through the --node addresses (nothing public: dht_bootstrap_nodes is
empty), accepts many nodes on one IP (the dht_restrict_* settings off, the per-IP rate limit
raised), and with --torrent seeds or downloads it with no tracker at all: peers come from
the DHT alone; with --magnet it fetches the metadata from peers the DHT names too. Stdout lines: `listening on ADDR` (TCP and DHT UDP share the port), `dht nodes
N` when the routing table's size changes, `dht peers N` for each DHT reply with peers,
`dht announced HASH by IP:PORT` for each announce this node receives, `metadata <hash>
<name> secs=..` (--magnet), `checked <hash> have=X/Y`, `first-piece <hash> <name> secs=..`
(when it downloads; seconds from the start, as piecemeal counts them), `complete <hash>
<name> bytes=.. secs=.. peers=ip:port=bytes,..`. Diagnostics go to stderr.
"""

import argparse
import sys
import time

import libtorrent as lt

# Tests must not write into the source tree, bytecode caches included.
sys.dont_write_bytecode = True
from lt_peer import session_for  # noqa: E402

ANNOUNCE_EVERY = 2.0


def out(line):
    print(line, flush=True)


def session(port):
    """lt_peer's loopback session with its DHT switched on and opened up to loopback nodes."""
    ses = session_for("127.0.0.1", port)
    ses.apply_settings(
        {
            "enable_dht": True,
            "dht_bootstrap_nodes": "",
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_prefer_verified_node_ids": False,
            "dht_ignore_dark_internet": False,
            "dht_block_ratelimit": 100000,
            "alert_mask": 0x7FFFFFFF,
            "user_agent": "piecemeal-interop-libtorrent-dht",
        }
    )
    return ses


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--node", action="append", default=[])
    source = ap.add_mutually_exclusive_group()
    source.add_argument("--torrent")
    source.add_argument("--magnet")
    ap.add_argument("--dir")
    ap.add_argument("--exit-when-done", action="store_true")
    args = ap.parse_args()

    started = time.monotonic()
    ses = session(args.port)
    port = None
    deadline = time.monotonic() + 20
    while port is None and time.monotonic() < deadline:
        for a in ses.pop_alerts():
            if isinstance(a, lt.listen_succeeded_alert) and a.socket_type == lt.socket_type_t.tcp:
                port = a.port
        ses.wait_for_alert(200)
    if port is None:
        sys.exit("lt_dht: not listening")
    out(f"listening on 127.0.0.1:{port}")
    for node in args.node:
        host, p = node.rsplit(":", 1)
        ses.add_dht_node((host, int(p)))

    handle = None
    ti = None
    info_hash = None
    if args.torrent or args.magnet:
        if args.magnet:
            atp = lt.parse_magnet_uri(args.magnet)
            info_hash = str(atp.info_hashes.v1)
        else:
            ti = lt.torrent_info(args.torrent)
            atp = lt.add_torrent_params()
            atp.ti = ti
            info_hash = str(ti.info_hashes().v1)
        atp.save_path = args.dir
        handle = ses.add_torrent(atp)
        handle.replace_trackers([])  # the DHT alone

    def since():
        return f"secs={time.monotonic() - started:.2f}"

    shown_nodes = -1
    checked = done = first_piece = False
    seed_at_start = None
    got = {}  # "ip:port" -> the most payload its connection reported
    next_announce = 0.0
    while True:
        now = time.monotonic()
        ses.post_session_stats()
        if handle is not None and now >= next_announce and not done:
            handle.force_dht_announce()
            next_announce = now + ANNOUNCE_EVERY
        ses.wait_for_alert(250)
        for a in ses.pop_alerts():
            if isinstance(a, lt.session_stats_alert):
                n = a.values.get("dht.dht_nodes", 0)
                if n != shown_nodes:
                    shown_nodes = n
                    out(f"dht nodes {n}")
            elif isinstance(a, lt.dht_reply_alert):
                out(f"dht peers {a.num_peers}")
            elif isinstance(a, lt.dht_announce_alert):
                out(f"dht announced {a.info_hash} by {a.ip}:{a.port}")
            elif isinstance(a, (lt.peer_connect_alert, lt.peer_disconnected_alert)):
                print(f"lt_dht: {a.message()}", file=sys.stderr, flush=True)
        if handle is None:
            continue
        st = handle.status()
        if ti is None and st.has_metadata:
            ti = handle.torrent_file()
            out(f"metadata {info_hash} {ti.name()} {since()}")
        if not checked and st.state not in (
            lt.torrent_status.checking_files,
            lt.torrent_status.checking_resume_data,
        ) and st.has_metadata:
            checked = True
            seed_at_start = st.is_seeding and not args.magnet
            out(f"checked {info_hash} have={st.total_wanted_done}/{st.total_wanted}")
        if checked and not first_piece and not seed_at_start and st.num_pieces > 0:
            first_piece = True
            out(f"first-piece {info_hash} {ti.name()} {since()}")
        for p in handle.get_peer_info():
            key = f"{p.ip[0]}:{p.ip[1]}"
            got[key] = max(got.get(key, 0), p.total_download)
        if checked and not done and st.is_seeding and st.total_payload_download > 0:
            done = True
            peers = ",".join(f"{k}={v}" for k, v in sorted(got.items()) if v > 0)
            out(f"complete {info_hash} {ti.name()} bytes={st.total_payload_download} {since()} peers={peers}")
            if args.exit_when_done:
                return


if __name__ == "__main__":
    main()
