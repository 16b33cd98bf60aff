"""A network lab on one machine: peer namespaces around a hub that shapes their uploads.

    with Lab([4e6, 2e6, 2e6]) as lab:          # upload caps in bytes/s, one per peer
        argv = lab.exec_argv(0, ["piecemeal", "peer", "--bind", lab.addr(0), ...])
        ...
        lab.sent_bytes()                       # per peer, from the shaper's counters

Topology (everything lives in namespaces named `<PREFIX><pid>-...`; nothing is
added to the root namespace, whose routes stay untouched):

    peer i (10.199.i.2/24, veth v<i>) <--> hub (10.199.i.1/24, veth h<i>)
    hub lo also holds 10.199.255.1 (for a tracker); the hub forwards between peers.

Each peer's upload is what arrives at h<i> from it: the hub redirects that ingress
to one `ifb0` and gives each sender an `htb` class at its cap (like a home
router's uplink; a tbf on the sender's own veth starves some of its connections,
see network-lab notes). Downloads are not limited. `netem` is not available on
this kernel, so no latency is modelled. Every namespace's routes use `cubic`
(the machine's default here is bbr, which did badly behind the shaper).

The namespaces are torn down on exit (also on an exception or Ctrl-C, via the
context manager) and, at start, namespaces of earlier runs whose process is gone
are swept, so parallel runs and stale leftovers never collide.
"""

import json
import os
import re
import signal
import subprocess
import time

PREFIX = "pmlab"
SUBNET = "10.199"
HUB_ADDR = f"{SUBNET}.255.1"
IFB = "ifb0"
# Classids are hex in tc; sender i gets 1:<0x10 + i>, unclassified traffic (ARP) 1:ffff.
DEFAULT_CLASS = 0xFFFF
MAX_PEERS = 200
# The leaf queue of each sender: about 100 ms at its rate (a router's buffer), never
# less than a few 64 KiB GSO segments.
QUEUE_SECS = 0.1
MIN_QUEUE_BYTES = 256 * 1024


class LabUnavailable(Exception):
    """Namespaces cannot be made here (not root, no CAP_NET_ADMIN, no ifb...)."""


def _run(argv, check=True, timeout=20):
    cp = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if check and cp.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({cp.returncode}): {cp.stderr.strip() or cp.stdout.strip()}")
    return cp.stdout


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespaces():
    out = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _delete_namespace(name):
    """Kill whatever still runs in the namespace, then delete it."""
    pids = _run(["ip", "netns", "pids", name], check=False).split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _run(["ip", "netns", "delete", name], check=False)


def sweep_stale():
    """Delete lab namespaces left by runs whose process no longer exists; return their names."""
    swept = []
    rx = re.compile(rf"^{PREFIX}(\d+)-")
    for name in _namespaces():
        m = rx.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _delete_namespace(name)
            swept.append(name)
    return swept


def check_available():
    """Raise LabUnavailable with the reason unless this process can build a lab."""
    if os.geteuid() != 0:
        raise LabUnavailable(f"the network lab needs root (CAP_NET_ADMIN); running as uid {os.geteuid()}")
    for tool in ("ip", "tc"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            raise LabUnavailable(f"`{tool}` not found (Debian package iproute2)")


class Lab:
    """Peers 0..n-1 in their own namespaces around a hub; peer i's upload capped at rates[i] bytes/s."""

    def __init__(self, rates):
        if not 1 <= len(rates) <= MAX_PEERS:
            raise ValueError(f"between 1 and {MAX_PEERS} peers, not {len(rates)}")
        self.rates = list(rates)
        self.tag = f"{PREFIX}{os.getpid()}-{time.monotonic_ns() % 100000}"
        self.hub = f"{self.tag}-hub"
        self._made = []

    # ------------------------------------------------------------ naming

    def ns(self, i):
        return f"{self.tag}-p{i}"

    def addr(self, i):
        return f"{SUBNET}.{i}.2"

    @property
    def hub_addr(self):
        return HUB_ADDR

    def exec_argv(self, i, argv):
        """argv run inside peer i's namespace (`ip netns exec` execs it: the pid is the program's)."""
        return ["ip", "netns", "exec", self.ns(i)] + [str(a) for a in argv]

    def hub_exec_argv(self, argv):
        return ["ip", "netns", "exec", self.hub] + [str(a) for a in argv]

    # ------------------------------------------------------------ set-up

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    def _add_ns(self, name):
        cp = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
        if cp.returncode != 0:
            raise LabUnavailable(f"cannot create network namespace {name}: {cp.stderr.strip()}")
        self._made.append(name)

    def up(self):
        check_available()
        sweep_stale()
        try:
            self._build()
        except BaseException:
            self.down()
            raise

    def _build(self):
        hub = self.hub
        self._add_ns(hub)
        _run(["ip", "-n", hub, "link", "set", "lo", "up"])
        _run(["ip", "-n", hub, "addr", "add", f"{HUB_ADDR}/32", "dev", "lo"])
        _run(["ip", "netns", "exec", hub, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        cp = subprocess.run(["ip", "-n", hub, "link", "add", IFB, "type", "ifb"], capture_output=True, text=True)
        if cp.returncode != 0:
            raise LabUnavailable(f"cannot create an ifb device (kernel module ifb): {cp.stderr.strip()}")
        _run(["ip", "-n", hub, "link", "set", IFB, "up"])
        # r2q high so htb's per-class quantum stays sane at MB/s rates.
        _run(["tc", "-n", hub, "qdisc", "add", "dev", IFB, "root", "handle", "1:", "htb",
              "default", f"{DEFAULT_CLASS:x}", "r2q", "1000"])
        _run(["tc", "-n", hub, "class", "add", "dev", IFB, "parent", "1:", "classid",
              f"1:{DEFAULT_CLASS:x}", "htb", "rate", "1gbit"])
        for i, rate in enumerate(self.rates):
            self._add_peer(i, rate)

    def _add_peer(self, i, rate):
        hub, ns = self.hub, self.ns(i)
        self._add_ns(ns)
        h, v = f"h{i}", f"v{i}"
        _run(["ip", "-n", hub, "link", "add", h, "type", "veth", "peer", "name", v, "netns", ns])
        _run(["ip", "-n", hub, "addr", "add", f"{SUBNET}.{i}.1/24", "dev", h])
        _run(["ip", "-n", hub, "link", "set", h, "up"])
        _run(["ip", "-n", hub, "route", "change", f"{SUBNET}.{i}.0/24", "dev", h, "proto", "kernel",
              "scope", "link", "src", f"{SUBNET}.{i}.1", "congctl", "cubic"])
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(["ip", "-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", v])
        _run(["ip", "-n", ns, "link", "set", v, "up"])
        _run(["ip", "-n", ns, "route", "change", f"{SUBNET}.{i}.0/24", "dev", v, "proto", "kernel",
              "scope", "link", "src", self.addr(i), "congctl", "cubic"])
        _run(["ip", "-n", ns, "route", "add", f"{SUBNET}.0.0/16", "via", f"{SUBNET}.{i}.1", "congctl", "cubic"])
        cls = f"1:{0x10 + i:x}"
        bps = str(int(rate))
        _run(["tc", "-n", hub, "class", "add", "dev", IFB, "parent", "1:", "classid", cls,
              "htb", "rate", f"{bps}bps", "ceil", f"{bps}bps"])
        limit = max(MIN_QUEUE_BYTES, int(rate * QUEUE_SECS))
        _run(["tc", "-n", hub, "qdisc", "add", "dev", IFB, "parent", cls, "bfifo", "limit", str(limit)])
        _run(["tc", "-n", hub, "filter", "add", "dev", IFB, "parent", "1:", "protocol", "ip", "prio", "1",
              "u32", "match", "ip", "src", f"{self.addr(i)}/32", "flowid", cls])
        # Everything peer i sends enters the hub at h<i>; shape it on the ifb.
        _run(["tc", "-n", hub, "qdisc", "add", "dev", h, "handle", "ffff:", "ingress"])
        _run(["tc", "-n", hub, "filter", "add", "dev", h, "parent", "ffff:", "protocol", "all",
              "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", IFB])

    def down(self):
        """Kill what runs inside and delete every namespace this lab made (idempotent)."""
        # Peers first: deleting the hub would take their veths' other ends with it anyway.
        for name in reversed(self._made):
            _delete_namespace(name)
        self._made = []

    # ------------------------------------------------------------ counters

    def sent_bytes(self):
        """Bytes each peer has sent through its shaper (IP headers included), by peer index."""
        out = _run(["tc", "-n", self.hub, "-s", "class", "show", "dev", IFB])
        sent = {}
        for m in re.finditer(r"class htb 1:([0-9a-f]+) .*?\n\s*Sent (\d+) bytes", out):
            idx = int(m.group(1), 16) - 0x10
            if 0 <= idx < len(self.rates):
                sent[idx] = int(m.group(2))
        return sent

    def received_bytes(self):
        """Bytes the hub has delivered to each peer (frames, headers included), by peer index."""
        links = json.loads(_run(["ip", "-n", self.hub, "-s", "-j", "link", "show"]))
        got = {}
        for link in links:
            m = re.fullmatch(r"h(\d+)", link.get("ifname", ""))
            if m:
                got[int(m.group(1))] = link["stats64"]["tx"]["bytes"]
        return got

    def tcp_queues(self, i):
        """Peer i's established TCP connections: {(local, remote): (unread bytes, unsent bytes)}."""
        out = _run(self.exec_argv(i, ["ss", "-tnH", "state", "established"]), check=False)
        queues = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 4 and f[0].isdigit() and f[1].isdigit():
                queues[(f[2], f[3])] = (int(f[0]), int(f[1]))
        return queues
