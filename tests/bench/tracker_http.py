#!/usr/bin/env python3
"""HTTP announce load: Debian's opentracker and piecemeal's tracker, one after the other.

Each tracker is started fresh for each load (pinned to CPU 0 when there are two or more, wrk
to CPU 1), then wrk makes BEP 3 announces with random peer ids (compact, numwant=50) for
DURATION seconds. Printed per tracker and load: announces/s, CPU seconds per announce (the
tracker's user+system time over the run), p50/p99 latency, errors (socket errors, non-200
answers and `failure reason` replies; wrk's "read" errors are listed apart as closes, since
opentracker closes every connection after its reply, HTTP/1.0 style, and wrk counts each close
as a read error), the tracker's resident memory after the run and its growth per peer held
(`bytes/peer`; every announce has the same port and a fresh peer id, so opentracker, which keys
peers by address and port, holds one peer per swarm there while piecemeal holds each: compare
memory per peer in the UDP half, whose peers differ in port too); then piecemeal/opentracker
ratios. Figures on a shared machine are noisy: run it once or twice.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

LOADS = [  # (swarms, wrk threads, connections)
    (1, 1, 50),
    (1, 2, 200),
    (1000, 1, 50),
    (1000, 2, 200),
]

LUA = r"""
local swarms = tonumber(os.getenv("SWARMS"))
local hashes = {}
for i = 1, swarms do
  local hex = string.format("%040x", i)
  hashes[i] = hex:gsub("(%x%x)", "%%%1")
end
local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end
function init(args)
  failures = 0
  math.randomseed(os.time() * 1000 + id)
end
function request()
  local pid = {}
  for i = 1, 20 do pid[i] = string.format("%%%02x", math.random(0, 255)) end
  return wrk.format("GET", "/announce?info_hash=" .. hashes[math.random(swarms)] ..
    "&peer_id=" .. table.concat(pid) ..
    "&port=6881&uploaded=0&downloaded=0&left=1000&compact=1&numwant=50&event=started")
end
function response(status, headers, body)
  if status ~= 200 or body:find("failure reason", 1, true) then failures = failures + 1 end
end
function done(summary, latency, requests)
  local failed = 0
  for _, t in ipairs(threads) do failed = failed + t:get("failures") end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "closed": %d, "non_200_or_failure": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.write + e.timeout, e.read, failed))
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_accepting(port, secs, what):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"tracker_http: {what} did not accept connections on port {port} within {secs} s")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) / 1024 if m else float("nan")


def pin(cpu):
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) >= 2 else []


def start_opentracker(work, port, swarms):
    """Debian's opentracker is built in whitelist mode: list every hash the load uses."""
    root = tempfile.mkdtemp(dir=work)
    os.chmod(root, 0o755)  # it drops to user nobody, who must read the whitelist
    wl = os.path.join(root, "whitelist.txt")
    with open(wl, "w") as f:
        f.writelines(f"{i:040x}\n" for i in range(1, swarms + 1))
    os.chmod(wl, 0o644)
    seen = "/whitelist.txt" if os.geteuid() == 0 else wl  # as root it chroots into rootdir
    conf = os.path.join(root, "opentracker.conf")
    with open(conf, "w") as f:
        f.write(f"listen.tcp 127.0.0.1:{port}\naccess.whitelist {seen}\ntracker.rootdir {root}\n"
                "access.stats 127.0.0.1\n")
    return subprocess.Popen(pin(0) + ["opentracker", "-f", conf], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def peers_held(tracker, port):
    """The peers the tracker says it holds: opentracker's `/stats?mode=peer`, piecemeal's `/stats`."""
    if tracker == "opentracker":
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats?mode=peer", timeout=10) as r:
            return int(r.read().split()[0])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as r:
        stats = json.load(r)
    return stats["seeders"] + stats["leechers"]


def start_piecemeal(binary, port):
    # Every announce comes from 127.0.0.1: lift the per-address budget, keep every other default.
    argv = [binary, "tracker", "--bind", f"127.0.0.1:{port}", "--max-announces-per-ip", "0"]
    return subprocess.Popen(pin(0) + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_load(tracker, start, work, lua, swarms, threads, conns, duration):
    port = free_port()
    proc = start(port)
    try:
        wait_accepting(port, 10, tracker)
        rss0 = rss_mib(proc.pid)
        cpu0 = cpu_seconds(proc.pid)
        out = subprocess.run(
            pin(1) + ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "2s",
                      "-s", lua, f"http://127.0.0.1:{port}/announce"],
            env={**os.environ, "SWARMS": str(swarms)}, capture_output=True, text=True,
            timeout=duration + 60,
        )
        cpu = cpu_seconds(proc.pid) - cpu0
        rss = rss_mib(proc.pid)
        held = peers_held(tracker, port)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    m = re.search(r"^RESULT (\{.*\})$", out.stdout, re.M)
    if not m:
        sys.exit(f"tracker_http: wrk gave no result against {tracker}:\n{out.stdout}\n{out.stderr}")
    r = json.loads(m.group(1))
    secs = r["duration_us"] / 1e6
    good = max(r["requests"] - r["non_200_or_failure"], 0)
    return {
        "per_s": good / secs,
        "cpu_us": cpu / good * 1e6 if good else float("nan"),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "errors": r["socket_errors"] + r["non_200_or_failure"],
        "closed": r["closed"],
        "rss": rss,
        # RSS growth per peer held: the registry's cost per peer (noisy with few peers).
        "bpp": (rss - rss0) * 1024 * 1024 / held if held else float("nan"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="the piecemeal binary")
    ap.add_argument("--duration", type=int, default=8, help="seconds per load (default 8)")
    args = ap.parse_args()
    for tool in ("wrk", "opentracker"):
        if not shutil.which(tool):
            sys.exit(f"tracker_http: {tool} not found; run `bash tests/interop/install.sh` first")
    work = tempfile.mkdtemp(prefix="bench-tracker-http-")
    lua = os.path.join(work, "announce.lua")
    with open(lua, "w") as f:
        f.write(LUA)
    print(f"HTTP announces, wrk {args.duration} s per load, tracker on CPU 0, wrk on CPU 1 "
          "(shared machine: figures are noisy)")
    head = (f"{'load':<22} {'tracker':<12} {'announces/s':>11} {'CPU µs/ann':>10} {'p50 ms':>7} "
            f"{'p99 ms':>7} {'errors':>7} {'closes':>7} {'RSS MiB':>8} {'bytes/peer':>10}")
    print(head)
    print("-" * len(head))
    try:
        for swarms, threads, conns in LOADS:
            load = f"{swarms} swarm{'s' if swarms > 1 else ''} -t{threads} -c{conns}"
            got = {}
            for name, start in (
                ("opentracker", lambda port, s=swarms: start_opentracker(work, port, s)),
                ("piecemeal", lambda port: start_piecemeal(args.bin, port)),
            ):
                r = run_load(name, start, work, lua, swarms, threads, conns, args.duration)
                got[name] = r
                print(f"{load:<22} {name:<12} {r['per_s']:>11.0f} {r['cpu_us']:>10.1f} "
                      f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['errors']:>7} {r['closed']:>7} "
                      f"{r['rss']:>8.1f} {r['bpp']:>10.1f}",
                      flush=True)
            p, o = got["piecemeal"], got["opentracker"]

            def ratio(k):
                return p[k] / o[k] if o[k] else float("nan")

            print(f"{'':<22} {'pm/ot':<12} {ratio('per_s'):>11.2f} {ratio('cpu_us'):>10.2f} "
                  f"{ratio('p50_ms'):>7.2f} {ratio('p99_ms'):>7.2f} {'':>7} {'':>7} {ratio('rss'):>8.2f} {ratio('bpp'):>10.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
