#!/usr/bin/env python3
"""Run piecemeal against real BitTorrent programs on 127.0.0.1.

    python3 tests/interop/run.py --bin target/release/piecemeal [--only NAME|GROUP ...] [--keep]
    python3 tests/interop/run.py --self-check    # libtorrent/opentracker play piecemeal's part

Every case uses its own temp folder and ephemeral ports, stops every process it
started, and has a time budget. Cases whose other program is not installed are
skipped with the reason (tests/interop/install.sh installs them). The last line
is `interop: N passed, N failed, N skipped`; the exit status is 1 if any failed.
"""

import argparse
import os
import signal
import sys
import time
import traceback

# Tests must not write into the source tree, bytecode caches included.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cases import CASES, Ctx, Piecemeal  # noqa: E402
from harness import CaseFailed, CaseSkipped  # noqa: E402


def selected(only):
    if not only:
        return CASES
    chosen = [c for c in CASES if any(o == str(c[0]) or o in c[1] for o in only)]
    if not chosen:
        names = ", ".join(f"{g}:{n}" for g, n, _, _ in CASES)
        sys.exit(f"run.py: --only {only} matches no case; cases are {names}")
    return chosen


def on_sigterm(_sig, _frame):
    raise KeyboardInterrupt("SIGTERM")


def report(ctx):
    """Print the log tails of every program the failed case started."""
    text = ctx.report()
    if text:
        print(text, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", help="path to the piecemeal binary")
    ap.add_argument("--only", action="append", default=[], help="case name substring or group number (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep temp folders and logs (their paths are printed)")
    ap.add_argument(
        "--self-check",
        action="store_true",
        help="validate the harness: libtorrent (and opentracker) stand in for piecemeal",
    )
    args = ap.parse_args()
    # The programs run in their own process groups, so a killed harness would leave them
    # behind; turning SIGTERM into an exception lets each case's cleanup run.
    signal.signal(signal.SIGTERM, on_sigterm)
    if not args.bin and not args.self_check:
        ap.error("--bin PATH is required (or --self-check)")
    pm = Piecemeal(os.path.abspath(args.bin) if args.bin else None, args.self_check)
    if args.self_check:
        print("interop: SELF-CHECK mode, libtorrent/opentracker stand in for piecemeal")

    counts = {"passed": 0, "failed": 0, "skipped": 0}
    t0 = time.monotonic()
    for group, name, fn, budget in selected(args.only):
        print(f"[{group}] {name}: {fn.__doc__.split(chr(10))[0]}", flush=True)
        ctx = Ctx(name, budget, pm, args.keep)
        started = time.monotonic()
        try:
            detail = fn(ctx)
            counts["passed"] += 1
            print(f"    PASS ({time.monotonic() - started:.1f}s) {detail}", flush=True)
        except CaseSkipped as e:
            counts["skipped"] += 1
            print(f"    SKIP: {e}", flush=True)
        except CaseFailed as e:
            counts["failed"] += 1
            print(f"    FAIL ({time.monotonic() - started:.1f}s): {e}", flush=True)
            report(ctx)
        except Exception:  # a harness bug must not stop the other cases or leak processes
            counts["failed"] += 1
            print(f"    FAIL (harness error):\n{traceback.format_exc()}", flush=True)
            report(ctx)
        except KeyboardInterrupt:
            counts["failed"] += 1
            print("    INTERRUPTED: stopping its programs and the run", flush=True)
            break
        finally:
            ctx.close()
            if args.keep:
                print(f"    kept {ctx.tmp}", flush=True)
    print(f"(total {time.monotonic() - t0:.1f}s)")
    print(f"interop: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped", flush=True)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
