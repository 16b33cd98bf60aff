"""The interop cases: piecemeal against libtorrent, Transmission, opentracker, mktorrent.

Each case is a function taking a Ctx; it returns a one-line detail on success
and raises CaseFailed / CaseSkipped otherwise. The piecemeal side goes through
`Piecemeal`, which in --self-check mode is played by libtorrent (and
opentracker for the tracker), so the harness itself can be validated against
real programs before piecemeal exists.
"""

import json
import os
import re
import shutil
import tempfile
import time
import urllib.parse
import urllib.request

from harness import (
    DEBIAN_PYTHON,
    LOOPBACK,
    LT_PEER,
    CaseFailed,
    CaseSkipped,
    NullTracker,
    Proc,
    compare_trees,
    free_port,
    have_libtorrent,
    info_hash,
    make_content,
    missing_tool,
    parse_complete,
    parse_hash_line,
    run_tool,
    zero_range,
    wait_accepting,
    wait_file_line,
)

MiB = 1024 * 1024

# Odd sizes so that last pieces are short and pieces straddle file boundaries.
SINGLE = 3 * MiB + 12345
MULTI = {
    "a.bin": 1 * MiB + 7,
    "empty.txt": 0,
    "sub/b.bin": 2 * MiB + 999,
    "sub/deeper/c.txt": 5000,
    "d.bin": 300001,
}
MIXED = 24 * MiB + 4321
MIXED_PIECE = 256 * 1024  # mktorrent -l 18


class Ctx:
    """One case's temp folder, logs, deadline and started processes (all stopped by close())."""

    def __init__(self, name, budget, pm, keep):
        self.name = name
        self.pm = pm
        self.keep = keep
        self.tmp = tempfile.mkdtemp(prefix=f"piecemeal-interop-{name}-")
        self.logdir = os.path.join(self.tmp, "logs")
        os.makedirs(self.logdir)
        self.procs = []
        self.closers = []
        self.deadline = time.monotonic() + budget

    def path(self, *parts):
        p = os.path.join(self.tmp, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def dir(self, *parts):
        p = os.path.join(self.tmp, *parts)
        os.makedirs(p, exist_ok=True)
        return p

    def within(self, secs):
        """A deadline `secs` from now, but never past the case's own deadline."""
        return min(self.deadline, time.monotonic() + secs)

    def left(self):
        return max(1.0, self.deadline - time.monotonic())

    def start(self, label, argv, env=None, cwd=None, must_live=True):
        """Start a program; with must_live, its exit fails every later wait of the case."""
        p = Proc(label, argv, self.logdir, env=env, cwd=cwd)
        p.must_live = must_live
        self.procs.append(p)
        return p

    def wait_line(self, proc, pattern, secs, what):
        """proc.wait_line, also failing as soon as another must-live program of the case exits."""
        watch = [p for p in self.procs if p is not proc and p.must_live]
        return proc.wait_line(pattern, self.within(secs), what, watch)

    def check_alive(self):
        for p in self.procs:
            if p.must_live and p.exited():
                raise CaseFailed(f"{p.label} exited with status {p.popen.returncode}")

    def null_tracker(self):
        """Announce URL of a tracker that knows no peers (see NullTracker)."""
        t = NullTracker()
        self.closers.append(t.close)
        return t.url

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        for close in self.closers:
            close()
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def report(self):
        return "\n".join(p.tail() for p in self.procs)


# ---------------------------------------------------------------- the piecemeal side


class Piecemeal:
    """How to run piecemeal's subcommands (or, with self_check, libtorrent/opentracker in its place)."""

    def __init__(self, binary, self_check):
        self.binary = binary
        self.self_check = self_check

    @property
    def label(self):
        return "piecemeal(libtorrent stand-in)" if self.self_check else "piecemeal"

    def needs(self):
        """Raise CaseFailed unless the piecemeal side can run."""
        if self.self_check:
            reason = have_libtorrent() or missing_tool("opentracker")
            if reason:
                raise CaseSkipped(f"self-check stand-in unavailable: {reason}")
            return
        if not self.binary or not os.path.isfile(self.binary) or not os.access(self.binary, os.X_OK):
            raise CaseFailed(
                f"piecemeal binary not found or not executable at {self.binary!r}; "
                "build it with `cargo build --release` and pass --bin target/release/piecemeal"
            )

    def _argv(self):
        return [DEBIAN_PYTHON, LT_PEER] if self.self_check else [self.binary]

    def _env(self):
        return None if self.self_check else {"RUST_LOG": os.environ.get("RUST_LOG", "info")}

    def peer(self, ctx, role, data_dir, torrent, connect=(), tracker=None, exit_when_done=False):
        """Start a peer; return (proc, "127.0.0.1:port") once it listens."""
        argv = self._argv() + ["peer", "--dir", data_dir, "--torrent", torrent, "--bind", LOOPBACK, "--port", "0"]
        for addr in connect:
            argv += ["--connect", addr]
        if tracker:
            argv += ["--tracker", tracker]
        if exit_when_done:
            argv.append("--exit-when-done")
        proc = ctx.start(f"{self.label} {role}", argv, env=self._env(), must_live=not exit_when_done)
        m = ctx.wait_line(proc, r"^listening on (\S+:\d+)\s*$", 20, "`listening on ADDR`")
        return proc, m.group(1)

    def tracker(self, ctx, whitelist):
        """Start a tracker; return its announce URL. `whitelist` only matters for the stand-in."""
        if self.self_check:
            return start_opentracker(ctx, whitelist)
        proc = ctx.start(
            f"{self.label} tracker",
            self._argv() + ["tracker", "--bind", f"{LOOPBACK}:0", "--interval", "5"],
            env=self._env(),
        )
        m = ctx.wait_line(proc, r"^tracker listening on (\S+:\d+)\s*$", 20, "`tracker listening on ADDR`")
        return f"http://{m.group(1)}/announce"

    def show_hash(self, torrent):
        out = run_tool(self._argv() + ["show", torrent], 30, f"{self.label} show")
        return parse_hash_line(out, f"{self.label} show {torrent}")

    def create(self, path, announces, output, piece_length):
        argv = self._argv() + ["create", path]
        for url in announces:
            argv += ["--announce", url]
        argv += ["--piece-length", str(piece_length), "--output", output]
        run_tool(argv, 60, f"{self.label} create")
        if not os.path.isfile(output):
            raise CaseFailed(f"{self.label} create exited 0 but wrote no {output}")


# ---------------------------------------------------------------- the other programs


def need(*reasons):
    """Skip the case with every reason that is not None."""
    reasons = [r for r in reasons if r]
    if reasons:
        raise CaseSkipped("; ".join(reasons))


def mktorrent(ctx, path, announce, piece_exp, out_name):
    out = ctx.path("torrents", out_name)
    run_tool(["mktorrent", "-a", announce, "-l", str(piece_exp), "-o", out, path], 60, "mktorrent")
    return out


def lt_peer(ctx, role, data_dir, torrent, connect=(), tracker=None, exit_when_done=False, internet=False):
    """Start a libtorrent peer; return (proc, "127.0.0.1:port") once it listens.

    With `internet`, it treats loopback peers as it would peers on the internet (see lt_peer.py).
    """
    argv = [DEBIAN_PYTHON, LT_PEER, "peer", "--dir", data_dir, "--torrent", torrent, "--bind", LOOPBACK, "--port", "0"]
    if internet:
        argv.append("--internet")
    for addr in connect:
        argv += ["--connect", addr]
    if tracker:
        argv += ["--tracker", tracker]
    if exit_when_done:
        argv.append("--exit-when-done")
    proc = ctx.start(f"libtorrent {role}", argv, must_live=not exit_when_done)
    m = ctx.wait_line(proc, r"^listening on (\S+:\d+)\s*$", 20, "`listening on ADDR`")
    return proc, m.group(1)


def lt_seed(ctx, data_dir, torrent, role="seeder", want=None, internet=False):
    """A libtorrent peer that has checked its data and found `want` bytes (default: all)."""
    proc, addr = lt_peer(ctx, role, data_dir, torrent, internet=internet)
    m = ctx.wait_line(proc, r"^checked \S+ have=(\d+)/(\d+)", 30, "`checked` after checking its data")
    have, total = int(m.group(1)), int(m.group(2))
    if have != (total if want is None else want):
        raise CaseFailed(f"libtorrent {role} found {have} of {total} bytes valid, want {want or total}")
    return proc, addr


def start_opentracker(ctx, whitelist, udp=False):
    """Start Debian's (whitelist-only) opentracker on a free loopback port; return its announce URL.

    With `udp`, it also answers BEP 15 on the same port number."""
    port = free_port()
    root = ctx.dir("opentracker")
    os.chmod(root, 0o755)  # it drops to user nobody, who must read the whitelist
    wl = os.path.join(root, "whitelist.txt")
    with open(wl, "w") as f:
        f.writelines(h + "\n" for h in whitelist)
    os.chmod(wl, 0o644)
    # As root it chroots into tracker.rootdir, so the whitelist path is seen from there.
    wl_seen = "/whitelist.txt" if os.geteuid() == 0 else wl
    conf = os.path.join(root, "opentracker.conf")
    with open(conf, "w") as f:
        f.write(f"listen.tcp {LOOPBACK}:{port}\naccess.whitelist {wl_seen}\ntracker.rootdir {root}\n")
        if udp:
            f.write(f"listen.udp {LOOPBACK}:{port}\n")
    ctx.start("opentracker", ["opentracker", "-f", conf], cwd=root)
    wait_accepting(port, ctx.within(10), "opentracker")
    return f"http://{LOOPBACK}:{port}/announce"


def scrape_complete(announce_url, hex_hash):
    """Seeder count a tracker reports for one torrent (BEP 48 scrape), or None if it would not say."""
    url = announce_url.replace("/announce", "/scrape") + "?info_hash=" + urllib.parse.quote(bytes.fromhex(hex_hash))
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            body = r.read()
    except OSError:
        return None
    m = re.search(rb"8:completei(\d+)e", body)
    return int(m.group(1)) if m else None


def transmission_hash(torrent):
    return parse_hash_line(run_tool(["transmission-show", torrent], 30, "transmission-show"), "transmission-show")


def libtorrent_show(torrent):
    out = run_tool([DEBIAN_PYTHON, LT_PEER, "show", torrent], 30, "libtorrent show")
    files = {}
    for m in re.finditer(r"^File: (.*) (\d+)$", out, re.M):
        files[m.group(1)] = int(m.group(2))
    return parse_hash_line(out, "libtorrent show"), files


def expect_complete(proc, torrent, ctx, secs, who):
    """Wait for `who`'s complete line for `torrent`; return its parsed fields."""
    line = ctx.wait_line(proc, r"^complete ", secs, "`complete ...` for the torrent").string
    c = parse_complete(line)
    want = info_hash(torrent)
    if c["hash"] != want:
        raise CaseFailed(f"{who} completed info hash {c['hash']}, the torrent's is {want}: {line}")
    return c


def expect_exit0(proc, ctx, who):
    status = proc.wait_exit(ctx.within(15))
    if status is None:
        raise CaseFailed(f"{who} was given --exit-when-done but still runs 15 s after completing")
    if status != 0:
        raise CaseFailed(f"{who} exited with status {status} after completing")


def expect_same(src, got):
    problem = compare_trees(src, got)
    if problem:
        raise CaseFailed(f"downloaded data differs from the original: {problem}")


def fmt_peers(peers, names):
    return ", ".join(f"{names.get(a, a)}={n}" for a, n in sorted(peers.items())) or "(none)"


# ---------------------------------------------------------------- cases


def _lt_seeds(ctx, layout, name):
    need(have_libtorrent(), missing_tool("mktorrent"))
    ctx.pm.needs()
    src = make_content(ctx.dir("seed"), name, layout, seed=name)
    torrent = mktorrent(ctx, src, ctx.null_tracker(), 16 if isinstance(layout, dict) else 18, f"{name}.torrent")
    _lt, lt_addr = lt_seed(ctx, ctx.dir("seed"), torrent)
    pm, _ = ctx.pm.peer(ctx, "leecher", ctx.dir("leech"), torrent, connect=[lt_addr], exit_when_done=True)
    c = expect_complete(pm, torrent, ctx, 60, f"{ctx.pm.label} leecher")
    expect_exit0(pm, ctx, f"{ctx.pm.label} leecher")
    expect_same(src, os.path.join(ctx.tmp, "leech", name))
    return f"{c['bytes']} bytes in {c['secs']:.2f}s, peers {fmt_peers(c['peers'], {lt_addr: 'libtorrent'})}"


def case_libtorrent_seeds_single(ctx):
    """libtorrent seeds a single-file torrent, piecemeal downloads it."""
    return _lt_seeds(ctx, SINGLE, "single.bin")


def case_libtorrent_seeds_multi(ctx):
    """libtorrent seeds a multi-file torrent, piecemeal downloads it."""
    return _lt_seeds(ctx, MULTI, "multi")


def _pm_seeds(ctx, layout, name):
    need(have_libtorrent(), missing_tool("mktorrent"))
    ctx.pm.needs()
    src = make_content(ctx.dir("seed"), name, layout, seed=name)
    torrent = mktorrent(ctx, src, ctx.null_tracker(), 16 if isinstance(layout, dict) else 18, f"{name}.torrent")
    _pm, pm_addr = ctx.pm.peer(ctx, "seeder", ctx.dir("seed"), torrent)
    lt, _ = lt_peer(ctx, "leecher", ctx.dir("leech"), torrent, connect=[pm_addr], exit_when_done=True)
    c = expect_complete(lt, torrent, ctx, 60, "libtorrent leecher")
    expect_exit0(lt, ctx, "libtorrent leecher")
    expect_same(src, os.path.join(ctx.tmp, "leech", name))
    return f"{c['bytes']} bytes in {c['secs']:.2f}s, peers {fmt_peers(c['peers'], {pm_addr: ctx.pm.label})}"


def case_piecemeal_seeds_single(ctx):
    """piecemeal seeds a single-file torrent, libtorrent downloads it."""
    return _pm_seeds(ctx, SINGLE, "single.bin")


def case_piecemeal_seeds_multi(ctx):
    """piecemeal seeds a multi-file torrent, libtorrent downloads it."""
    return _pm_seeds(ctx, MULTI, "multi")


def start_transmission(ctx, role, torrent, data_dir):
    """Start transmission-cli on `torrent` with its own config folder; return (proc, port).

    Loopback-only settings, no rate limits, and Transmission's default encryption
    setting ("preferred", which falls back to plaintext for peers without it).
    """
    cfg = ctx.dir(f"transmission-{role}-config")
    port = free_port()
    settings = {
        "dht-enabled": False,
        "lpd-enabled": False,
        "pex-enabled": False,
        "utp-enabled": False,
        "port-forwarding-enabled": False,
        "blocklist-enabled": False,
        "bind-address-ipv4": LOOPBACK,
        "bind-address-ipv6": "::1",
        "peer-port": port,
        "download-dir": data_dir,
        "incomplete-dir-enabled": False,
        "speed-limit-down-enabled": False,
        "speed-limit-up-enabled": False,
        "ratio-limit-enabled": False,
        "message-level": 3,
    }
    with open(os.path.join(cfg, "settings.json"), "w") as f:
        json.dump(settings, f)
    proc = ctx.start(f"transmission-cli {role}", ["transmission-cli", "-g", cfg, "-w", data_dir, "-p", port, torrent])
    wait_accepting(port, ctx.within(15), "transmission-cli")
    return proc, port


def case_transmission_leeches(ctx):
    """Transmission, announcing to the piecemeal tracker, downloads from a piecemeal seeder."""
    need(missing_tool("transmission-cli"), missing_tool("mktorrent"))
    ctx.pm.needs()
    # Transmission discards 127.0.0.0/8 peers from tracker replies as "martian", so it never
    # dials the seeder itself. Everything stays on loopback: the tracker lists Transmission
    # to the piecemeal seeder, which dials it, as seeders of other clients do.
    name = "transmitted"
    src = make_content(ctx.dir("seed"), name, MULTI, seed=name)
    # The info hash does not depend on the announce URL; the stand-in tracker needs it up front.
    probe = mktorrent(ctx, src, "http://127.0.0.1:1/announce", 16, "probe.torrent")
    url = ctx.pm.tracker(ctx, [info_hash(probe)])
    torrent = mktorrent(ctx, src, url, 16, f"{name}.torrent")
    dl = ctx.dir("leech")
    tr, port = start_transmission(ctx, "leecher", torrent, dl)
    # The self-check's stand-in (libtorrent) does not dial peers it learns as a seeder.
    connect = [f"{LOOPBACK}:{port}"] if ctx.pm.self_check else []
    _pm, pm_addr = ctx.pm.peer(ctx, "seeder", ctx.dir("seed"), torrent, connect=connect)
    started = time.monotonic()
    deadline = ctx.within(60)
    got = os.path.join(dl, name)
    while compare_trees(src, got, skip_empty=True):
        ctx.check_alive()
        if time.monotonic() > deadline:
            problem = compare_trees(src, got, skip_empty=True)
            raise CaseFailed(f"Transmission did not finish downloading in time: {problem}")
        time.sleep(0.5)
    took = time.monotonic() - started
    # Transmission logs this only for a tracker reply it parsed and that listed peers
    # (before it drops loopback ones). The tracker's 5 s interval brings a second try.
    reply = wait_file_line(
        tr.err_path,
        r"Got \d+ (peers|seeds) from tracker",
        ctx.within(15),
        "transmission-cli",
        f"a tracker reply listing peers from {url}",
    )
    how = "which found it through the tracker and dialed it"
    return f"byte-identical after {took:.1f}s from seeder {pm_addr} {how}; tracker {url}: {reply!r}"


def case_transmission_seeds(ctx):
    """Transmission seeds, piecemeal downloads (dialing Transmission directly)."""
    need(missing_tool("transmission-cli"), missing_tool("mktorrent"))
    ctx.pm.needs()
    name = "from-transmission"
    src = make_content(ctx.dir("seed"), name, MULTI, seed=name)
    torrent = mktorrent(ctx, src, ctx.null_tracker(), 16, f"{name}.torrent")
    tr, port = start_transmission(ctx, "seeder", torrent, ctx.dir("seed"))
    # Wait until the torrent runs: before that Transmission drops handshakes for it, and
    # piecemeal dials a --connect address only once. Its first announce marks the start.
    # (Its stdout status line is block-buffered into the pipe, its log is not.)
    wait_file_line(tr.err_path, r"Announcing to tracker", ctx.within(30), "transmission-cli", "its first announce")
    tr_addr = f"127.0.0.1:{port}"
    pm, _ = ctx.pm.peer(ctx, "leecher", ctx.dir("leech"), torrent, connect=[tr_addr], exit_when_done=True)
    # Transmission unchokes on its own 10 s pulse, so this takes over 10 s.
    c = expect_complete(pm, torrent, ctx, 60, f"{ctx.pm.label} leecher")
    expect_exit0(pm, ctx, f"{ctx.pm.label} leecher")
    expect_same(src, os.path.join(ctx.tmp, "leech", name))
    return f"{c['bytes']} bytes in {c['secs']:.2f}s, peers {fmt_peers(c['peers'], {tr_addr: 'transmission'})}"


def case_opentracker(ctx):
    """piecemeal finds a libtorrent seeder only through opentracker, and downloads from it."""
    need(have_libtorrent(), missing_tool("opentracker"), missing_tool("mktorrent"))
    ctx.pm.needs()
    name = "tracked.bin"
    src = make_content(ctx.dir("seed"), name, SINGLE, seed=name)
    # Debian's opentracker only serves whitelisted hashes, and the hash ignores the announce URL.
    probe = mktorrent(ctx, src, "http://127.0.0.1:1/announce", 18, "probe.torrent")
    url = start_opentracker(ctx, [info_hash(probe)])
    torrent = mktorrent(ctx, src, url, 18, f"{name}.torrent")
    hx = info_hash(torrent)
    _lt, lt_addr = lt_seed(ctx, ctx.dir("seed"), torrent)
    deadline = ctx.within(20)
    while not scrape_complete(url, hx):
        if time.monotonic() > deadline:
            raise CaseFailed(f"the libtorrent seeder never showed up in opentracker's scrape of {hx}")
        time.sleep(0.2)
    # No --connect: the only way to the seeder is the tracker.
    pm, _ = ctx.pm.peer(ctx, "leecher", ctx.dir("leech"), torrent, exit_when_done=True)
    c = expect_complete(pm, torrent, ctx, 60, f"{ctx.pm.label} leecher")
    expect_exit0(pm, ctx, f"{ctx.pm.label} leecher")
    expect_same(src, os.path.join(ctx.tmp, "leech", name))
    if c["peers"].get(lt_addr, 0) <= 0:
        raise CaseFailed(
            f"complete line credits no bytes to the libtorrent seeder {lt_addr}: peers={c['peers']}"
        )
    return f"{c['bytes']} bytes in {c['secs']:.2f}s via {url}, peers {fmt_peers(c['peers'], {lt_addr: 'libtorrent'})}"


def case_tracker_serves_libtorrent(ctx):
    """Two libtorrent peers find each other only through the piecemeal tracker."""
    need(have_libtorrent(), missing_tool("mktorrent"))
    ctx.pm.needs()
    name = "introduced.bin"
    src = make_content(ctx.dir("seed"), name, SINGLE, seed=name)
    probe = mktorrent(ctx, src, "http://127.0.0.1:1/announce", 18, "probe.torrent")
    hx = info_hash(probe)
    url = ctx.pm.tracker(ctx, [hx])
    torrent = mktorrent(ctx, src, url, 18, f"{name}.torrent")
    _lt, seed_addr = lt_seed(ctx, ctx.dir("seed"), torrent)
    deadline = ctx.within(20)
    while not scrape_complete(url, hx):
        ctx.check_alive()
        if time.monotonic() > deadline:
            raise CaseFailed(f"the libtorrent seeder's announce never showed in the scrape of {url} for {hx}")
        time.sleep(0.2)
    # No --connect: the leecher learns of the seeder only from the tracker's reply.
    leech, _ = lt_peer(ctx, "leecher", ctx.dir("leech"), torrent, exit_when_done=True)
    c = expect_complete(leech, torrent, ctx, 60, "libtorrent leecher")
    expect_exit0(leech, ctx, "libtorrent leecher")
    expect_same(src, os.path.join(ctx.tmp, "leech", name))
    if c["peers"].get(seed_addr, 0) <= 0:
        raise CaseFailed(f"the leecher credits no bytes to the seeder {seed_addr}: peers={c['peers']}")
    return f"{c['bytes']} bytes in {c['secs']:.2f}s via {url}; scrape listed the seeder"


def case_mixed_swarm(ctx):
    """A piecemeal leecher completes a torrent from a libtorrent peer and a piecemeal peer together.

    On loopback either one alone could deliver 24 MiB in about 0.1 s, before the other's
    connection is even up, so "both contributed" would be luck. Instead each of them
    holds a different half of the pieces, with the other half zeroed, so each must serve.
    """
    need(have_libtorrent(), missing_tool("mktorrent"))
    ctx.pm.needs()
    name = "mixed.bin"
    src = make_content(ctx.dir("orig"), name, MIXED, seed=name)
    torrent = mktorrent(ctx, src, ctx.null_tracker(), 18, f"{name}.torrent")
    cut = (MIXED // MIXED_PIECE // 2) * MIXED_PIECE  # a piece boundary near the middle
    for holder, blank in (("lt", (cut, MIXED)), ("pm", (0, cut))):
        copy = os.path.join(ctx.dir(f"seed-{holder}"), name)
        shutil.copyfile(src, copy)
        zero_range(copy, *blank)
    _lt, lt_addr = lt_seed(ctx, ctx.dir("seed-lt"), torrent, role="peer (first half)", want=cut)
    _pm, pm_addr = ctx.pm.peer(ctx, "peer (second half)", ctx.dir("seed-pm"), torrent)
    leech, _ = ctx.pm.peer(ctx, "leecher", ctx.dir("leech"), torrent, connect=[lt_addr, pm_addr], exit_when_done=True)
    c = expect_complete(leech, torrent, ctx, 90, f"{ctx.pm.label} leecher")
    expect_exit0(leech, ctx, f"{ctx.pm.label} leecher")
    expect_same(src, os.path.join(ctx.tmp, "leech", name))
    names = {lt_addr: "libtorrent", pm_addr: ctx.pm.label}
    shares = fmt_peers(c["peers"], names)
    print(f"    per-peer bytes: {shares}")
    holds = {lt_addr: cut, pm_addr: MIXED - cut}
    short = {names[a]: c["peers"].get(a, 0) for a, want in holds.items() if c["peers"].get(a, 0) < want}
    if short:
        raise CaseFailed(
            f"each peer alone holds its half ({cut} and {MIXED - cut} bytes), yet the leecher "
            f"credits less to {short}: peers={c['peers']}"
        )
    return f"{c['bytes']} bytes in {c['secs']:.2f}s, {shares}"


SMALL_PIECES = 8 * MiB + 4321
SMALL_PIECE = 16 * 1024  # one block per piece


def case_small_pieces(ctx):
    """piecemeal downloads a torrent of 16 KiB pieces from libtorrent at most 2x as slowly as libtorrent.

    Both leechers fetch from the same libtorrent seeder, one after the other, and each
    times itself (its `complete` line's secs). With one block per piece, a downloader that
    keeps few requests in flight crawls: the seeder answers a lone request 20-45 ms late.
    The seeder treats loopback as the internet (no "local" peer class).
    """
    need(have_libtorrent())
    ctx.pm.needs()
    name = "small-pieces.bin"
    src = make_content(ctx.dir("seed"), name, SMALL_PIECES, seed=name)
    # mktorrent makes no pieces under 32 KiB; libtorrent does.
    torrent = ctx.path("torrents", f"{name}.torrent")
    argv = [DEBIAN_PYTHON, LT_PEER, "create", src, "--announce", ctx.null_tracker()]
    run_tool(argv + ["--piece-length", SMALL_PIECE, "--output", torrent], 60, "libtorrent create")
    _lt, seed_addr = lt_seed(ctx, ctx.dir("seed"), torrent, internet=True)
    times = {}
    for who in ("piecemeal", "libtorrent"):
        folder = ctx.dir(f"leech-{who}")
        if who == "piecemeal":
            proc, _ = ctx.pm.peer(ctx, "leecher", folder, torrent, connect=[seed_addr], exit_when_done=True)
        else:
            proc, _ = lt_peer(ctx, "leecher", folder, torrent, connect=[seed_addr], exit_when_done=True, internet=True)
        c = expect_complete(proc, torrent, ctx, 60, f"{who} leecher")
        expect_exit0(proc, ctx, f"{who} leecher")
        expect_same(src, os.path.join(folder, name))
        times[who] = c["secs"]
    pm, lt = times["piecemeal"], times["libtorrent"]
    detail = f"{SMALL_PIECES} bytes in 16 KiB pieces: piecemeal {pm:.2f}s, libtorrent {lt:.2f}s"
    print(f"    {detail}")
    if pm > 2 * lt:
        raise CaseFailed(f"piecemeal took over twice libtorrent's time: {detail}")
    return detail


def case_metainfo_mktorrent(ctx):
    """piecemeal show reads mktorrent's torrents with the info hash Transmission and libtorrent see."""
    need(missing_tool("mktorrent"), missing_tool("transmission-show"), have_libtorrent())
    ctx.pm.needs()
    details = []
    for name, layout, exp in (("one.bin", SINGLE, 18), ("many", MULTI, 15)):
        src = make_content(ctx.dir("data"), name, layout, seed=name)
        torrent = mktorrent(ctx, src, "http://127.0.0.1:1/announce", exp, f"{name}.torrent")
        ours = ctx.pm.show_hash(torrent)
        theirs = {"transmission-show": transmission_hash(torrent), "libtorrent": libtorrent_show(torrent)[0]}
        bad = {k: v for k, v in theirs.items() if v != ours}
        if bad:
            raise CaseFailed(f"{name}: {ctx.pm.label} show says {ours}, but {bad}")
        details.append(f"{name} {ours}")
    return "; ".join(details)


def case_metainfo_create(ctx):
    """piecemeal create's torrents carry piecemeal's hash in Transmission and libtorrent, and verify.

    libtorrent hash-checks the original data against each torrent, so a wrong
    piece hash or file layout fails here.
    """
    need(missing_tool("transmission-show"), have_libtorrent())
    ctx.pm.needs()
    details = []
    for name, layout, plen in (("one.bin", SINGLE, 65536), ("many", MULTI, 32768)):
        src = make_content(ctx.dir("data"), name, layout, seed=name)
        torrent = ctx.path("torrents", f"{name}.torrent")
        ctx.pm.create(src, ["http://127.0.0.1:1/announce", "http://127.0.0.1:2/announce"], torrent, plen)
        ours = ctx.pm.show_hash(torrent)
        lt_hash, lt_files = libtorrent_show(torrent)
        theirs = {"transmission-show": transmission_hash(torrent), "libtorrent": lt_hash}
        bad = {k: v for k, v in theirs.items() if v != ours}
        if bad:
            raise CaseFailed(f"{name}: {ctx.pm.label} show says {ours}, but {bad}")
        if isinstance(layout, int):
            want_files = {name: layout}
        else:
            want_files = {f"{name}/{rel}": size for rel, size in layout.items()}
        if lt_files != want_files:
            raise CaseFailed(f"{name}: libtorrent sees files {lt_files}, want {want_files}")
        out = run_tool(
            [DEBIAN_PYTHON, LT_PEER, "check", "--dir", ctx.dir("data"), "--torrent", torrent, "--timeout", "30"],
            40,
            "libtorrent hash check of the original data",
        )
        details.append(f"{name} {ours} ({out.strip()})")
    return "; ".join(details)


# (group number from the brief, name, function, time budget in seconds)
CASES = [
    (1, "libtorrent-seeds-single", case_libtorrent_seeds_single, 60),
    (1, "libtorrent-seeds-multi", case_libtorrent_seeds_multi, 60),
    (2, "piecemeal-seeds-single", case_piecemeal_seeds_single, 60),
    (2, "piecemeal-seeds-multi", case_piecemeal_seeds_multi, 60),
    (3, "transmission-leeches", case_transmission_leeches, 120),
    (3, "transmission-seeds", case_transmission_seeds, 90),
    (4, "opentracker", case_opentracker, 90),
    (4, "tracker-serves-libtorrent", case_tracker_serves_libtorrent, 90),
    (5, "mixed-swarm", case_mixed_swarm, 120),
    (5, "small-pieces", case_small_pieces, 120),
    (6, "metainfo-mktorrent", case_metainfo_mktorrent, 60),
    (6, "metainfo-create", case_metainfo_create, 60),
]
from cases_udp import CASES as _udp; CASES += _udp  # noqa: E402,E702
from cases_choking import CASES as _choking; CASES += _choking  # noqa: E402, E702
from cases_magnet import CASES as _magnet; CASES += _magnet  # noqa: E402,E702
