"""Message stream encryption (MSE/PE) against libtorrent.

libtorrent forced to encrypt (RC4 only, both directions) seeds to piecemeal and leeches from
it; and libtorrent with its default policy (encrypted first, plaintext allowed) reaches its
first byte from a piecemeal seeder without the plaintext retry a plaintext-only piecemeal
(--encryption off, the behaviour before MSE) costs it: both times are printed.
"""

import os
import re

from harness import (
    DEBIAN_PYTHON,
    LOOPBACK,
    LT_PEER,
    CaseFailed,
    CaseSkipped,
    have_libtorrent,
    make_content,
    missing_tool,
    wait_file_line,
)
from cases import MiB, expect_complete, expect_exit0, expect_same, mktorrent, need

SIZE = 2 * MiB + 777


def _needs(ctx):
    need(have_libtorrent(), missing_tool("mktorrent"))
    ctx.pm.needs()
    if ctx.pm.self_check:
        raise CaseSkipped("MSE cases drive piecemeal's own --encryption flag; no stand-in has it")


def _torrent(ctx, name):
    src = make_content(ctx.dir("seed"), name, SIZE, seed=name)
    return src, mktorrent(ctx, src, ctx.null_tracker(), 16, f"{name}.torrent")


def _pm(ctx, role, data_dir, torrent, encryption, connect=(), exit_when_done=False):
    """A piecemeal peer with `--encryption encryption`; (proc, "127.0.0.1:port")."""
    argv = [ctx.pm.binary, "peer", "--dir", data_dir, "--torrent", torrent, "--bind", LOOPBACK, "--port", "0"]
    argv += ["--encryption", encryption]
    for addr in connect:
        argv += ["--connect", addr]
    if exit_when_done:
        argv.append("--exit-when-done")
    env = {"RUST_LOG": os.environ.get("RUST_LOG", "info")}
    proc = ctx.start(f"piecemeal {role} ({encryption})", argv, env=env, must_live=not exit_when_done)
    m = ctx.wait_line(proc, r"^listening on (\S+:\d+)\s*$", 20, "`listening on ADDR`")
    return proc, m.group(1)


def _lt(ctx, role, data_dir, torrent, encryption, connect=(), exit_when_done=False):
    """A libtorrent peer with lt_peer.py's `--encryption`; (proc, "127.0.0.1:port")."""
    argv = [DEBIAN_PYTHON, LT_PEER, "peer", "--dir", data_dir, "--torrent", torrent, "--bind", LOOPBACK]
    argv += ["--port", "0", "--encryption", encryption]
    for addr in connect:
        argv += ["--connect", addr]
    if exit_when_done:
        argv.append("--exit-when-done")
    proc = ctx.start(f"libtorrent {role} ({encryption})", argv, must_live=not exit_when_done)
    m = ctx.wait_line(proc, r"^listening on (\S+:\d+)\s*$", 20, "`listening on ADDR`")
    return proc, m.group(1)


def _rc4_logged(ctx, pm, line, who):
    """Wait for piecemeal to log an RC4 connection: `line` (a regex) then " (RC4)"."""
    return wait_file_line(pm.err_path, line + r" \(RC4\)", ctx.within(10), who, "an RC4 connection")


def case_mse_libtorrent_forced_seeds(ctx):
    """libtorrent that requires encryption seeds; piecemeal with --encryption require dials it and downloads."""
    _needs(ctx)
    src, torrent = _torrent(ctx, "forced-seed.bin")
    lt, lt_addr = _lt(ctx, "seeder", ctx.dir("seed"), torrent, "forced")
    ctx.wait_line(lt, r"^checked \S+ have=(\d+)/\1\b", 30, "`checked` with every byte")
    pm, _ = _pm(ctx, "leecher", ctx.dir("leech"), torrent, "require", connect=[lt_addr], exit_when_done=True)
    c = expect_complete(pm, torrent, ctx, 60, "piecemeal leecher")
    expect_exit0(pm, ctx, "piecemeal leecher")
    expect_same(src, os.path.join(ctx.tmp, "leech", "forced-seed.bin"))
    _rc4_logged(ctx, pm, "connected to " + re.escape(lt_addr), "piecemeal leecher")
    return f"{c['bytes']} bytes over RC4 in {c['secs']:.2f}s"


def case_mse_libtorrent_forced_leeches(ctx):
    """libtorrent that requires encryption dials a piecemeal seeder (default --encryption) and downloads."""
    _needs(ctx)
    src, torrent = _torrent(ctx, "forced-leech.bin")
    pm, pm_addr = _pm(ctx, "seeder", ctx.dir("seed"), torrent, "prefer")
    lt, _ = _lt(ctx, "leecher", ctx.dir("leech"), torrent, "forced", connect=[pm_addr], exit_when_done=True)
    c = expect_complete(lt, torrent, ctx, 60, "libtorrent leecher")
    expect_exit0(lt, ctx, "libtorrent leecher")
    expect_same(src, os.path.join(ctx.tmp, "leech", "forced-leech.bin"))
    _rc4_logged(ctx, pm, r"incoming peer 127\.0\.0\.1:\d+", "piecemeal seeder")
    return f"{c['bytes']} bytes over RC4 in {c['secs']:.2f}s"


def _first_byte(ctx, name, encryption):
    """libtorrent (default policy) downloads from a piecemeal seeder with `encryption`; returns
    its seconds from dialling to the first block, and the seeder's stderr path."""
    src, torrent = _torrent(ctx, name)
    pm, pm_addr = _pm(ctx, f"seeder-{name}", ctx.dir("seed"), torrent, encryption)
    lt, _ = _lt(ctx, f"leecher-{name}", ctx.dir(f"leech-{name}"), torrent, "default", [pm_addr], True)
    secs = float(ctx.wait_line(lt, r"^first_byte secs=([\d.]+)", 30, "`first_byte`").group(1))
    expect_complete(lt, torrent, ctx, 60, "libtorrent leecher")
    expect_same(src, os.path.join(ctx.tmp, f"leech-{name}", name))
    pm.must_live = False
    pm.stop()
    return secs, pm.err_path


def case_mse_first_byte_without_plaintext_retry(ctx):
    """libtorrent's default policy reaches piecemeal encrypted at once; without MSE it first fails and retries."""
    _needs(ctx)
    plain_secs, plain_log = _first_byte(ctx, "plain.bin", "off")
    mse_secs, mse_log = _first_byte(ctx, "mse.bin", "prefer")
    with open(plain_log, "rb") as f:
        plain = f.read().decode("utf-8", "replace")
    with open(mse_log, "rb") as f:
        mse = f.read().decode("utf-8", "replace")
    if "handshake refused" not in plain:
        raise CaseFailed("the baseline is void: libtorrent never tried MSE on the plaintext-only piecemeal")
    if "handshake refused" in mse:
        refused = [line for line in mse.splitlines() if "handshake refused" in line]
        raise CaseFailed(f"piecemeal still refused a handshake from libtorrent: {refused[0]}")
    if mse_secs >= plain_secs:
        raise CaseFailed(f"first byte after {mse_secs:.3f}s with MSE, not sooner than {plain_secs:.3f}s without")
    return f"libtorrent's first byte: {plain_secs:.3f}s from plaintext-only piecemeal (MSE refused, retried), {mse_secs:.3f}s with MSE"


CASES = [
    (7, "mse-libtorrent-forced-seeds", case_mse_libtorrent_forced_seeds, 60),
    (7, "mse-libtorrent-forced-leeches", case_mse_libtorrent_forced_leeches, 60),
    (7, "mse-first-byte", case_mse_first_byte_without_plaintext_retry, 90),
]
