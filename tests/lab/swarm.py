"""One swarm in the lab: a tracker in the hub, a seeder in peer 0, leechers in peers 1..N.

The clients are told apart only by the command that starts a peer (piecemeal, or
libtorrent through lt_lab_peer.py); both print `listening on ADDR` and
`complete HASH NAME bytes=.. secs=.. peers=ip:port=bytes,...` on stdout.
While the swarm runs, the hub's counters are sampled: bytes each peer sent
through its shaper and bytes the hub delivered to each peer.
"""

import os
import sys
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))

from harness import (  # noqa: E402
    DEBIAN_PYTHON,
    CaseFailed,
    Proc,
    compare_trees,
    make_content,
    parse_complete,
    run_tool,
    wait_file_line,
)

LT_LAB_PEER = os.path.join(HERE, "lt_lab_peer.py")
PEER_PORT = 6881
TRACKER_PORT = 6969
SAMPLE_SECS = 0.25
MB = 1e6
# Unread bytes sitting unchanged in a receive queue this long: the reading side is stuck
# (e.g. its thread blocks in a write to the same peer, who is blocked writing to it).
STUCK_SECS = 5.0
QUEUE_EVERY = 1.0
# Less than this sent by the whole swarm (keep-alives, announces) counts as standing still.
STALL_BYTES = 64 * 1024


class TimedProc(Proc):
    """A Proc that also keeps when each stdout line arrived (time.monotonic())."""

    def __init__(self, *args, **kwargs):
        self.stamps = []
        super().__init__(*args, **kwargs)

    def _add(self, lines):
        # Stamps first: a reader of `lines` under the condition then always finds its stamp.
        self.stamps.extend([time.monotonic()] * len(lines))
        super()._add(lines)

    def first_line(self, prefix):
        """(time, line) of the first stdout line starting with prefix, or None."""
        for stamp, line in zip(self.stamps, list(self.lines)):
            if line.startswith(prefix):
                return stamp, line
        return None


@dataclass
class Client:
    """How to start one client's peer; `name` labels output."""

    name: str
    argv: list  # the command before `peer --dir ...`
    env: dict = field(default_factory=dict)


def piecemeal_client(binary):
    return Client("piecemeal", [binary], {"RUST_LOG": os.environ.get("RUST_LOG", "info")})


def libtorrent_client():
    return Client("libtorrent", [DEBIAN_PYTHON, LT_LAB_PEER])


def kurose_ross_bound(size, rates):
    """Minimum distribution time (s) of `size` bytes from rates[0] (seeder) to the others; downloads free."""
    n = len(rates) - 1
    return max(size / rates[0], n * size / sum(rates))


@dataclass
class Sample:
    t: float  # seconds since the leechers were started
    sent: dict  # peer index -> bytes sent through its shaper
    received: dict  # peer index -> bytes the hub delivered to it


@dataclass
class SwarmRun:
    """What one swarm did; times are seconds since the leechers were started."""

    client: str
    size: int
    rates: list
    addrs: list  # peer index -> its address in the lab
    done: dict  # leecher index -> (secs, parsed complete line)
    samples: list
    procs: dict  # peer index -> TimedProc, "tracker" -> Proc
    started: float
    stuck: dict = field(default_factory=dict)  # (peer, local, remote) -> (first seen, secs, unread bytes)
    crashed: str = ""  # which process exited while the swarm ran, and how
    dead: list = field(default_factory=list)  # the labels of those processes

    @property
    def leechers(self):
        return list(range(1, len(self.rates)))

    @property
    def bound(self):
        return kurose_ross_bound(self.size, self.rates)

    def missing(self):
        return [i for i in self.leechers if i not in self.done]

    def distribution_time(self):
        return max(s for s, _ in self.done.values()) if not self.missing() else None

    def seeder_copies(self):
        return self.samples[-1].sent.get(0, 0) / self.size if self.samples else 0.0

    def recent_sent(self, secs):
        """Bytes each peer sent through its shaper over the last `secs` seconds of samples."""
        if not self.samples:
            return {}
        last = self.samples[-1]
        past = next((s for s in reversed(self.samples) if s.t <= last.t - secs), self.samples[0])
        return {i: last.sent.get(i, 0) - past.sent.get(i, 0) for i in last.sent}

    def progress_text(self):
        """One line per peer: its last status line, bytes sent lately, done or not."""
        rows = []
        recent = self.recent_sent(10)
        for i in range(len(self.rates)):
            proc = self.procs.get(i)
            status = next((ln for ln in reversed(proc.lines) if not ln.startswith("complete")), "-") if proc else "-"
            state = "seeder" if i == 0 else (f"done at {self.done[i][0]:.1f}s" if i in self.done else "NOT DONE")
            rows.append(
                f"    peer {i} {self.addrs[i]} cap {self.rates[i] / MB:.1f} MB/s, {state}, "
                f"sent {recent.get(i, 0) / MB:.2f} MB in the last 10 s; last status: {status}"
            )
        return "\n".join(rows)

    def stuck_text(self):
        """One line per connection whose reader sat on unread bytes for STUCK_SECS or more."""
        return "\n".join(
            f"    peer {i} ({local} <- {remote}): {unread} bytes unread for {held:.0f}s from {first:.1f}s on"
            for (i, local, remote), (first, held, unread) in sorted(self.stuck.items())
        )

    def tails(self, n=15):
        return "\n".join(p.tail(n) for p in self.procs.values())


def prepare_content(workdir, binary, size, piece_length, tracker_url, seed=7):
    """The seeder's folder with a random file of `size` bytes, and its .torrent (made by piecemeal)."""
    seed_dir = os.path.join(workdir, "seed")
    content = make_content(seed_dir, "swarm.bin", size, seed)
    torrent = os.path.join(workdir, "swarm.torrent")
    run_tool(
        [binary, "create", content, "--announce", tracker_url, "--output", torrent, "--piece-length", piece_length],
        60,
        "piecemeal create",
    )
    return seed_dir, content, torrent


def run_swarm(lab, client, binary, workdir, torrent, seed_dir, size, budget, stall_secs=None):
    """Run the swarm until every leecher prints `complete`, `budget` seconds pass, nothing
    moves for `stall_secs`, or a process exits; return a SwarmRun either way (the caller
    judges it).

    The tracker (piecemeal's, for every client) runs in the hub; peer 0 seeds from
    `seed_dir`, peers 1.. start empty. All are stopped before returning.
    """
    logdir = os.path.join(workdir, f"logs-{client.name}")
    os.makedirs(logdir, exist_ok=True)
    tracker_url = f"http://{lab.hub_addr}:{TRACKER_PORT}/announce"
    procs = {}
    addrs = [lab.addr(i) for i in range(len(lab.rates))]
    run = SwarmRun(client.name, size, lab.rates, addrs, {}, [], procs, time.monotonic())
    try:
        tracker = Proc(
            "tracker",
            lab.hub_exec_argv([binary, "tracker", "--bind", f"{lab.hub_addr}:{TRACKER_PORT}"]),
            logdir,
            env={"RUST_LOG": "info"},
        )
        procs["tracker"] = tracker
        wait_file_line(tracker.err_path, r"tracker listening on", time.monotonic() + 15, "tracker", "its address")

        def start(i, folder):
            argv = client.argv + ["peer", "--dir", folder, "--torrent", torrent, "--bind", lab.addr(i),
                                  "--port", PEER_PORT, "--tracker", tracker_url]
            procs[i] = TimedProc(f"{client.name}-p{i}", lab.exec_argv(i, argv), logdir, env=client.env)
            return procs[i]

        seeder = start(0, seed_dir)
        seeder.wait_line(r"^listening on ", time.monotonic() + 60, "`listening on ADDR`")
        for i in run.leechers:
            folder = os.path.join(workdir, f"{client.name}-leecher{i}")
            os.makedirs(folder, exist_ok=True)
            start(i, folder)
        run.started = time.monotonic()
        _watch(lab, run, budget, stall_secs)
    finally:
        for p in procs.values():
            p.stop(grace=2)
    return run


class StuckWatch:
    """Finds connections whose receive queue holds the same unread bytes for STUCK_SECS or more."""

    def __init__(self, lab, run):
        self.lab, self.run = lab, run
        self.since = {}  # (peer, local, remote) -> (unread bytes, since when)
        self.next = 0.0

    def poll(self, now):
        if now < self.next:
            return
        self.next = now + QUEUE_EVERY
        seen = {}
        for i in range(len(self.run.rates)):
            for (local, remote), (unread, _unsent) in self.lab.tcp_queues(i).items():
                key = (i, local, remote)
                prev = self.since.get(key)
                seen[key] = prev if prev and prev[0] == unread and unread > 0 else (unread, now)
                held = now - seen[key][1]
                if unread > 0 and held >= STUCK_SECS:
                    first = self.run.stuck.get(key, (seen[key][1] - self.run.started,))[0]
                    self.run.stuck[key] = (first, held, unread)
        self.since = seen


def _watch(lab, run, budget, stall_secs):
    deadline = run.started + budget
    moved_at, last_total = time.monotonic(), 0
    stuck = StuckWatch(lab, run)
    while True:
        now = time.monotonic()
        run.samples.append(Sample(now - run.started, lab.sent_bytes(), lab.received_bytes()))
        stuck.poll(now)
        for i in run.leechers:
            hit = i not in run.done and run.procs[i].first_line("complete ")
            if hit:
                run.done[i] = (hit[0] - run.started, parse_complete(hit[1]))
        if not run.missing():
            return
        dead = [p for p in run.procs.values() if p.exited()]
        if dead:
            run.dead = [p.label for p in dead]
            run.crashed = "; ".join(f"{p.label} exited with status {p.popen.returncode} at {now - run.started:.1f}s"
                                    for p in dead)
            return
        total = sum(run.samples[-1].sent.values())
        if total - last_total >= STALL_BYTES:
            moved_at, last_total = now, total
        if now >= deadline or (stall_secs and now - moved_at >= stall_secs):
            return
        time.sleep(SAMPLE_SECS)


def verify_copies(run, workdir, content):
    """None if every leecher that completed holds the seeder's bytes, else what differs."""
    problems = []
    for i in run.done:
        got = os.path.join(workdir, f"{run.client}-leecher{i}", os.path.basename(content))
        diff = compare_trees(content, got)
        if diff:
            problems.append(f"leecher {i}: {diff}")
    return "; ".join(problems) or None
