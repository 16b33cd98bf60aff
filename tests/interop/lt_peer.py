#!/usr/bin/python3
"""A libtorrent-rasterbar peer that speaks piecemeal's command-line contract.

Run it with Debian's /usr/bin/python3 (python3-libtorrent is built for it).
It is the "other side" in the interop cases, and with the same stdout lines as
`piecemeal peer` (`listening on ADDR`, `complete <hash> <name> bytes=.. secs=..
peers=ip:port=bytes,...`) it can also stand in for piecemeal during the
harness's --self-check, which validates the harness against real programs only.

    lt_peer.py peer --dir DIR (--torrent FILE | --magnet URI) [--port N] [--tracker URL]
                    [--connect IP:PORT ...] [--exit-when-done] [--internet]
                    [--unchoke-slots N] [--upload-limit BYTES_PER_S] [--high-performance]
                    [--encryption forced] [--resume-file FILE]

With --magnet it prints `metadata <hash> <name> secs=..` once the metadata is in, and
either way `first-piece <hash> <name> secs=..` at its first verified piece, as piecemeal does.
With --resume-file, the torrent starts from libtorrent's resume data in FILE when it is there
(lt.read_resume_data: no re-hashing of what it vouches for), and FILE is rewritten at exit.
    lt_peer.py show FILE.torrent          (prints `Hash: <hex>` like piecemeal show)
    lt_peer.py create PATH --announce URL --output FILE [--piece-length BYTES]

Diagnostics (tracker replies, peer connects, errors) go to stderr.
"""

import argparse
import os
import signal
import sys
import time

import libtorrent as lt

# Re-dial peers given with --connect this often while we still lack data from
# them: the other side may not have been accepting yet (still hashing its files).
RECONNECT_SECS = 2.0
POLL_SECS = 0.1
BLOCK = 16 * 1024
LOGGED_ALERTS = (
    lt.tracker_reply_alert,
    lt.tracker_error_alert,
    lt.tracker_warning_alert,
    lt.tracker_announce_alert,
    lt.peer_connect_alert,
    lt.peer_disconnected_alert,
    lt.peer_error_alert,
    lt.torrent_error_alert,
    lt.file_error_alert,
    lt.hash_failed_alert,
    lt.state_changed_alert,
    lt.torrent_finished_alert,
    lt.incoming_connection_alert,
)


def log(msg):
    print(f"[lt_peer {time.monotonic():.2f}] {msg}", file=sys.stderr, flush=True)


def session_for(bind, port, internet=False, fast=False, encryption="default"):
    """A loopback-only libtorrent session with nothing that could leave the machine.

    With `internet`, loopback peers are not in libtorrent's "local" peer class (never choked,
    no rate limits, its own queueing) but in the global one, as peers on the internet are.
    With `fast`, libtorrent's high-performance preset (`high_performance_seed`) comes first.
    With encryption "forced", every connection in and out must be RC4-encrypted (MSE);
    "default" keeps libtorrent's own policy (encrypted first, plaintext allowed).
    """
    mask = (
        lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.connect_notification
        | lt.alert.category_t.peer_notification
        # block_finished_alert names the peer each block came from; peer_info
        # alone misses peers that disconnect the instant we complete.
        | lt.alert.category_t.block_progress_notification
    )
    preset = lt.high_performance_seed() if fast else {}
    ses = lt.session(
        {
            **preset,
            "listen_interfaces": f"{bind}:{port}",
            "outgoing_interfaces": bind,
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_incoming_utp": False,
            "enable_outgoing_utp": False,
            # Every peer in these tests is 127.0.0.1.
            "allow_multiple_connections_per_ip": True,
            "alert_mask": int(mask),
            "alert_queue_size": 100000,
            "announce_to_all_trackers": True,
            "announce_to_all_tiers": True,
            "min_reconnect_time": 1,
            "peer_connect_timeout": 5,
            "user_agent": "piecemeal-interop-libtorrent",
        }
    )
    for cid in (lt.session.global_peer_class_id, lt.session.local_peer_class_id):
        pc = ses.get_peer_class(cid)
        pc["upload_limit"] = 0
        pc["download_limit"] = 0
        ses.set_peer_class(cid, pc)
    if internet:
        everyone = lt.ip_filter()
        everyone.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(everyone)
    if encryption == "forced":
        ses.apply_settings(
            {
                "out_enc_policy": int(lt.enc_policy.forced),
                "in_enc_policy": int(lt.enc_policy.forced),
                "allowed_enc_level": int(lt.enc_level.rc4),
            }
        )
    return ses


def wait_listening(ses, deadline):
    """Return the bound TCP port once libtorrent reports it."""
    while time.monotonic() < deadline:
        for a in ses.pop_alerts():
            if isinstance(a, lt.listen_succeeded_alert) and a.socket_type == lt.socket_type_t.tcp:
                return a.port
            if isinstance(a, lt.listen_failed_alert):
                raise SystemExit(f"lt_peer: cannot listen: {a.message()}")
        ses.wait_for_alert(200)
    port = ses.listen_port()
    if port:
        return port
    raise SystemExit("lt_peer: no listen_succeeded_alert within time")


def block_len(ti, piece, block):
    """Payload length of one 16 KiB request block (the last one of a piece may be short)."""
    return max(0, min(BLOCK, ti.piece_size(piece) - block * BLOCK))


def parse_addr(text):
    host, _, port = text.rpartition(":")
    return (host, int(port))


def take_alerts(ses, ti, per_peer, first_block=None):
    """Log the interesting alerts and credit each finished block to the peer that sent it.

    With `first_block` (a dict holding "since", a monotonic time), the first block prints
    `first_byte secs=S`, S counted from "since".
    """
    for a in ses.pop_alerts():
        if isinstance(a, lt.block_finished_alert) and ti is not None:
            if first_block is not None and "printed" not in first_block:
                first_block["printed"] = True
                print(f"first_byte secs={time.monotonic() - first_block['since']:.3f}", flush=True)
            key = f"{a.endpoint[0]}:{a.endpoint[1]}"
            per_peer[key] = per_peer.get(key, 0) + block_len(ti, a.piece_index, a.block_index)
        elif isinstance(a, LOGGED_ALERTS):
            log(a.message())


def cmd_peer(args):
    stop = {"flag": False}

    def on_signal(_sig, _frm):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    ses = session_for(args.bind, args.port, args.internet, args.high_performance, args.encryption)
    if args.unchoke_slots is not None:
        ses.apply_settings({"unchoke_slots_limit": args.unchoke_slots})
    if args.upload_limit:
        # Loopback peers are in the global class with --internet, else in the local one.
        cid = lt.session.global_peer_class_id if args.internet else lt.session.local_peer_class_id
        pc = ses.get_peer_class(cid)
        pc["upload_limit"] = args.upload_limit
        ses.set_peer_class(cid, pc)
    port = wait_listening(ses, time.monotonic() + 10)
    print(f"listening on {args.bind}:{port}", flush=True)

    started = time.monotonic()
    if args.magnet:
        atp = lt.parse_magnet_uri(args.magnet)
        ti = None
        info_hash = str(atp.info_hashes.v1)
    else:
        ti = lt.torrent_info(args.torrent)
        atp = lt.add_torrent_params()
        if args.resume_file and os.path.exists(args.resume_file):
            with open(args.resume_file, "rb") as f:
                atp = lt.read_resume_data(f.read())
        atp.ti = ti
        info_hash = str(ti.info_hash())
    atp.save_path = args.dir
    h = ses.add_torrent(atp)
    if args.tracker:
        h.replace_trackers([lt.announce_entry(args.tracker)])
    if args.upload_limit:
        # The torrent's own limit too, so the cap holds whichever class a peer falls in.
        h.set_upload_limit(args.upload_limit)
    name = ti.name() if ti else None
    connects = [parse_addr(c) for c in args.connect]
    first_piece = False

    first_block = {"since": started}
    was_seed_at_start = None
    completed = False
    last_dial = 0.0
    per_peer = {}  # "ip:port" -> payload bytes of the blocks it sent us (block alerts)
    polled = {}  # "ip:port" -> the largest payload count its connection reported
    next_status = 0.0
    while not stop["flag"]:
        take_alerts(ses, ti, per_peer, first_block)
        st = h.status()
        if ti is None and st.has_metadata:
            ti = h.torrent_file()
            name = ti.name()
            print(f"metadata {info_hash} {name} secs={time.monotonic() - started:.2f}", flush=True)
        if ti is None or st.state in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data):
            ses.wait_for_alert(int(POLL_SECS * 1000))
            continue
        if was_seed_at_start is None:
            # A magnet link's data can arrive within one poll of its metadata.
            was_seed_at_start = st.is_seeding and not args.magnet
            # Not part of piecemeal's contract; lets the harness wait for a partial seed.
            print(f"checked {info_hash} have={st.total_wanted_done}/{st.total_wanted}", flush=True)
        if not first_piece and st.num_pieces > 0 and not was_seed_at_start:
            first_piece = True
            print(f"first-piece {info_hash} {name} secs={time.monotonic() - started:.2f}", flush=True)
        # Block alerts can miss a few blocks; a live connection's own count cannot.
        for p in h.get_peer_info():
            key = f"{p.ip[0]}:{p.ip[1]}"
            polled[key] = max(polled.get(key, 0), p.total_download)
        now = time.monotonic()
        if connects and now - last_dial >= RECONNECT_SECS:
            if last_dial == 0.0:
                first_block["since"] = now  # time to first byte counts from the first dial
            connected = {(p.ip[0], p.ip[1]) for p in h.get_peer_info()}
            for addr in connects:
                if addr not in connected:
                    h.connect_peer(addr)
            last_dial = now
        if now >= next_status:
            log(f"status state={st.state} done={st.total_wanted_done}/{st.total_wanted} peers={st.num_peers}")
            next_status = now + 2
        if st.is_seeding and not completed:
            completed = True
            # Alerts for the last blocks can trail the state change by a moment.
            ses.wait_for_alert(300)
            take_alerts(ses, ti, per_peer, first_block)
            secs = now - started
            got = 0 if was_seed_at_start else st.total_payload_download
            credit = {k: max(per_peer.get(k, 0), polled.get(k, 0)) for k in set(per_peer) | set(polled)}
            peers = ",".join(f"{k}={v}" for k, v in sorted(credit.items()) if v > 0)
            print(
                f"complete {info_hash} {name} bytes={got} secs={secs:.3f} peers={peers}",
                flush=True,
            )
            if args.exit_when_done:
                break
        ses.wait_for_alert(int(POLL_SECS * 1000))
    if args.resume_file:
        save_resume(ses, h, args.resume_file)
    # Tell trackers we are leaving, bounded so a dead tracker cannot hold us.
    ses.pause()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if any(isinstance(a, lt.tracker_reply_alert) for a in ses.pop_alerts()):
            break
        ses.wait_for_alert(100)
    return 0


def save_resume(ses, h, path):
    """Writes the torrent's resume data to `path` (temporary file, then rename), bounded."""
    h.save_resume_data(lt.torrent_handle.flush_disk_cache)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for a in ses.pop_alerts():
            if isinstance(a, lt.save_resume_data_alert):
                with open(path + ".tmp", "wb") as f:
                    f.write(lt.write_resume_data_buf(a.params))
                os.replace(path + ".tmp", path)
                return
            if isinstance(a, lt.save_resume_data_failed_alert):
                log(f"cannot save resume data: {a.message()}")
                return
        ses.wait_for_alert(100)
    log("no resume data within time")


def cmd_check(args):
    """Hash-check DIR against the torrent; exit 0 only if every piece verifies."""
    ses = session_for("127.0.0.1", 0)
    ti = lt.torrent_info(args.torrent)
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = args.dir
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        st = h.status()
        if st.errc.value() != 0:
            print(f"error: {st.errc.message()}")
            return 1
        if st.state not in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data):
            have = sum(1 for b in st.pieces if b)
            print(f"verified {have}/{ti.num_pieces()} pieces")
            return 0 if have == ti.num_pieces() else 1
        time.sleep(POLL_SECS)
    print("checking did not finish in time")
    return 1


def cmd_show(args):
    ti = lt.torrent_info(args.torrent)
    print(f"Name: {ti.name()}")
    print(f"Hash: {ti.info_hash()}")
    print(f"Total size: {ti.total_size()}")
    print(f"Pieces: {ti.num_pieces()} x {ti.piece_length()}")
    fs = ti.files()
    for i in range(fs.num_files()):
        print(f"File: {fs.file_path(i)} {fs.file_size(i)}")
    for t in ti.trackers():
        print(f"Tracker: {t.url}")
    return 0


def cmd_create(args):
    fs = lt.file_storage()
    lt.add_files(fs, args.path)
    ct = lt.create_torrent(fs, args.piece_length, flags=lt.create_torrent.v1_only)
    for url in args.announce:
        ct.add_tracker(url)
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(args.path)))
    with open(args.output, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("peer")
    p.add_argument("--dir", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--torrent")
    source.add_argument("--magnet")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tracker")
    p.add_argument("--connect", action="append", default=[])
    p.add_argument("--exit-when-done", action="store_true")
    p.add_argument("--internet", action="store_true", help="treat loopback peers as internet peers")
    p.add_argument("--unchoke-slots", type=int, help="libtorrent's unchoke_slots_limit")
    p.add_argument("--upload-limit", type=int, default=0, help="upload bytes/s to loopback peers")
    p.add_argument("--high-performance", action="store_true", help="libtorrent's high-performance preset")
    p.add_argument("--encryption", choices=["default", "forced"], default="default", help="MSE policy")
    p.add_argument("--resume-file", help="libtorrent resume data: read at start if present, written at exit")
    s = sub.add_parser("show")
    s.add_argument("torrent")
    k = sub.add_parser("check")
    k.add_argument("--dir", required=True)
    k.add_argument("--torrent", required=True)
    k.add_argument("--timeout", type=float, default=60)
    c = sub.add_parser("create")
    c.add_argument("path")
    c.add_argument("--announce", action="append", default=[])
    c.add_argument("--piece-length", type=int, default=256 * 1024)
    c.add_argument("--output", required=True)
    args = ap.parse_args()
    return {"peer": cmd_peer, "show": cmd_show, "create": cmd_create, "check": cmd_check}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
