#!/usr/bin/env python3
"""UDP half of `make bench-tracker`: Debian's opentracker and piecemeal's tracker, one after the
other, under the same BEP 15 announce load, printed side by side.

The tracker runs pinned to CPU 0 (taskset) and the load generator (benches/udp_load.rs, built
with `cargo bench --no-run`) pinned to CPU 1, for two scenarios: one swarm, and 1,000 swarms,
with 1,000 distinct peers. Figures: announces answered per second, tracker CPU time per
announce (utime + stime from /proc, all threads), error replies, requests left unanswered,
the tracker's resident memory at the end and at its peak, the peers it holds at the end (its
own count: opentracker's `/stats?mode=peer`, piecemeal's `/stats`) and the memory each costs:
(RSS at the end - RSS before the load) / peers held.

    python3 tests/bench/tracker_udp.py --bin target/release/piecemeal [--seconds 10]

Everything listens on 127.0.0.1 and is stopped at the end. The machine's other load shows in
the figures: run it on a quiet machine, and not in a loop.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

LOOPBACK = "127.0.0.1"
TRACKER_CPU, LOAD_CPU = "0", "1"
SCENARIOS = [("one swarm", 1), ("1,000 swarms", 1000)]
PEERS = 1000


def fail(msg):
    sys.exit(f"tracker_udp: {msg}")


def free_port():
    # A port free for both TCP and UDP, as both trackers listen on both.
    while True:
        with socket.socket() as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind((LOOPBACK, port))
                return port
            except OSError:
                continue


def info_hash_hex(i):
    """Torrent i's info hash, as benches/udp_load.rs makes it."""
    return (struct.pack(">I", i) + b"\x5a" * 16).hex()


def load_generator(repo):
    out = subprocess.run(
        ["cargo", "bench", "--bench", "udp_load", "--no-run", "--message-format=json"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        fail(f"cannot build the load generator:\n{out.stderr[-2000:]}")
    for line in out.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "udp_load":
            if msg.get("executable"):
                return msg["executable"]
    fail("cargo built no udp_load executable")


def wait_udp(port, deadline, who, proc):
    """Wait until a BEP 15 connect to port is answered."""
    request = struct.pack(">QII", 0x41727101980, 0, 7)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                fail(f"{who} exited with status {proc.returncode} before answering UDP")
            s.sendto(request, (LOOPBACK, port))
            try:
                reply = s.recv(64)
                if len(reply) == 16 and reply[:8] == struct.pack(">II", 0, 7):
                    return
            except OSError:
                pass
    fail(f"{who} did not answer a UDP connect on port {port}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid):
    got = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                got[key] = int(value.split()[0])
    return got.get("VmRSS", 0), got.get("VmHWM", 0)


def start_opentracker(tmp, port, torrents):
    root = os.path.join(tmp, "opentracker")
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)  # it drops to user nobody, who must read the whitelist
    whitelist = os.path.join(root, "whitelist.txt")
    with open(whitelist, "w") as f:
        f.writelines(info_hash_hex(i) + "\n" for i in range(torrents))
    os.chmod(whitelist, 0o644)
    seen = "/whitelist.txt" if os.geteuid() == 0 else whitelist  # it chroots as root
    conf = os.path.join(root, "opentracker.conf")
    with open(conf, "w") as f:
        f.write(f"listen.tcp {LOOPBACK}:{port}\nlisten.udp {LOOPBACK}:{port}\n")
        f.write(f"access.whitelist {seen}\ntracker.rootdir {root}\naccess.stats {LOOPBACK}\n")
    return ["opentracker", "-f", conf], root


def peers_held(name, port):
    """The peers the tracker says it holds (seeders and leechers of every torrent)."""
    if name == "opentracker":
        url = f"http://{LOOPBACK}:{port}/stats?mode=peer"
        with urllib.request.urlopen(url, timeout=10) as r:
            return int(r.read().split()[0])
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/stats", timeout=10) as r:
        stats = json.load(r)
    return stats["seeders"] + stats["leechers"]


def start_piecemeal(binary, port, udp_threads):
    argv = [binary, "tracker", "--bind", f"{LOOPBACK}:{port}", "--udp-threads", str(udp_threads)]
    # Every announce comes from 127.0.0.1: lift the per-address budget (default 2,000 per interval).
    argv += ["--max-announces-per-ip", "0"]
    return argv, None


def measure(name, argv, cwd, port, args, load, torrents):
    proc = subprocess.Popen(
        ["taskset", "-c", TRACKER_CPU] + argv,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_udp(port, time.monotonic() + 15, name, proc)
        rss_before, _ = memory_kib(proc.pid)
        cpu_before = cpu_seconds(proc.pid)
        run = subprocess.run(
            ["taskset", "-c", LOAD_CPU, load, "--tracker", f"{LOOPBACK}:{port}",
             "--seconds", str(args.seconds), "--threads", str(args.load_threads),
             "--window", str(args.window), "--torrents", str(torrents), "--peers", str(PEERS)],
            capture_output=True,
            text=True,
            timeout=args.seconds + 30,
        )
        if run.returncode != 0:
            fail(f"load generator against {name} failed: {run.stderr.strip()}")
        cpu = cpu_seconds(proc.pid) - cpu_before
        rss, peak = memory_kib(proc.pid)
        if proc.poll() is not None:
            fail(f"{name} exited during the load")
        held = peers_held(name, port)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    got = json.loads(run.stdout)
    answered = got["announces"]
    return {
        "announces/s": answered / got["seconds"],
        "CPU µs/announce": cpu * 1e6 / answered if answered else float("inf"),
        "error replies": got["errors"],
        "unanswered": got["lost"],
        "RSS MiB (end)": rss / 1024,
        "RSS MiB (peak)": peak / 1024,
        "peers held": held,
        "bytes/peer": (rss - rss_before) * 1024 / held if held else float("inf"),
    }


def fmt(value):
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="the piecemeal binary (release build)")
    ap.add_argument("--seconds", type=int, default=10, help="load per tracker and scenario")
    ap.add_argument("--load-threads", type=int, default=2)
    ap.add_argument("--window", type=int, default=64, help="announces in flight per load thread")
    ap.add_argument("--udp-threads", type=int, default=1, help="piecemeal's --udp-threads")
    args = ap.parse_args()
    for tool in ("opentracker", "taskset", "cargo"):
        if not shutil.which(tool):
            fail(f"{tool} is not installed (tests/interop/install.sh installs opentracker)")
    if (os.cpu_count() or 1) < 2:
        fail("needs two CPUs: one for the tracker, one for the load")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    load = load_generator(repo)
    binary = os.path.abspath(args.bin)
    print(
        f"UDP (BEP 15) announces: tracker on CPU {TRACKER_CPU}, load on CPU {LOAD_CPU} "
        f"(udp_load: {args.load_threads} threads x {args.window} in flight, {PEERS} peers), "
        f"{args.seconds} s per run; piecemeal --udp-threads {args.udp_threads}",
        flush=True,
    )
    tmp = tempfile.mkdtemp(prefix="piecemeal-bench-udp-")
    try:
        rows = []
        for scenario, torrents in SCENARIOS:
            results = {}
            for name in ("opentracker", "piecemeal"):
                port = free_port()
                if name == "opentracker":
                    argv, cwd = start_opentracker(tmp, port, torrents)
                else:
                    argv, cwd = start_piecemeal(binary, port, args.udp_threads)
                results[name] = measure(name, argv, cwd, port, args, load, torrents)
            rows.append((scenario, results))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    header = f"{'scenario':<14} {'':<18} {'opentracker':>12} {'piecemeal':>12} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for scenario, results in rows:
        for i, metric in enumerate(results["opentracker"]):
            ot, pm = results["opentracker"][metric], results["piecemeal"][metric]
            ratio = f"{pm / ot:.2f}" if ot else "-"
            print(f"{scenario if i == 0 else '':<14} {metric:<18} {fmt(ot):>12} {fmt(pm):>12} {ratio:>7}")
    print("ratio = piecemeal / opentracker (above 1 is better for announces/s, worse for the rest)")


if __name__ == "__main__":
    main()
