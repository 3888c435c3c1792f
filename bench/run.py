"""`python -m bench [--quick] [--size N] [--sizes 1000,10000,100000] [--only P1,P4]`

Runs the measurements against real Mosquitto brokers (tests/support/mosquitto.py) and the Plex
stand-in (tests/support/plex_standin.py), then prints measure | value | target | pass/fail.
Exit code 0 when every target is met, 1 otherwise. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import shutil
import subprocess
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from mosquitto import find_mosquitto

from . import REPO
from .common import temp_root
from .measures import (
    Context,
    Row,
    p1_full_sync,
    p2_p3_plex,
    p4_change_latency,
    p4_second_edit,
    p5_idle,
    p6_first_publish,
    p7_scaling,
    say,
)

ALL = ("P1", "P2", "P3", "P4", "P5", "P6", "P7")


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 1000,10000") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def _only(text: str) -> list[str]:
    names = [part.strip().upper() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown measure(s) {unknown}; choose from {ALL}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run (~30 s): 1,000 items, one trial each, P7 at 1,000 only")
    parser.add_argument("--size", type=int,
                        help="library size for P1-P5 (default 10000; --quick 1000)")
    parser.add_argument("--sizes", type=_sizes,
                        help="P7 sizes, comma-separated (default 1000,10000,100000; "
                             "--quick 1000)")
    parser.add_argument("--repeat", type=int,
                        help="trials of P1/P2/P3, the median is reported (default 3; --quick 1)")
    parser.add_argument("--trials", type=int,
                        help="P4 relabel trials (default 20; --quick 5)")
    parser.add_argument("--debounce", type=float, default=0.5,
                        help="the service's debounce in P4, seconds (default 0.5)")
    parser.add_argument("--idle", type=float,
                        help="P5 idle window for wake-ups, seconds (default 10; --quick 3)")
    parser.add_argument("--plex-latency", type=float, default=0.005,
                        help="Plex stand-in latency per request, seconds (default 0.005)")
    parser.add_argument("--only", type=_only, default=list(ALL),
                        help="run only these, e.g. P1,P4 (P2 and P3 run together)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON to this file")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch directory (libraries, broker logs)")
    return parser


def _revision() -> str:
    """The commit measured, and whether src/ differs from it."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src")
    return commit + (" + uncommitted changes in src/" if dirty else "")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    header = ("measure", "value", "target", "pass/fail")
    cells = [(r.measure, r.value, r.target or "-",
              "-" if r.passed is None else ("PASS" if r.passed else "FAIL")) for r in rows]
    widths = [max(len(header[i]), *(len(c[i]) for c in cells)) for i in range(4)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(c) for c in cells)])


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options left unset from --quick or the full run's defaults."""
    quick = args.quick
    args.size = args.size or (1000 if quick else 10000)
    args.sizes = args.sizes or ([1000] if quick else [1000, 10000, 100000])
    args.repeat = args.repeat or (1 if quick else 3)
    args.trials = args.trials or (5 if quick else 20)
    args.idle = args.idle or (3.0 if quick else 10.0)
    wanted = set(args.only)
    if wanted & {"P2", "P3"}:
        wanted |= {"P2", "P3"}
    args.only = wanted
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _defaults(_parser().parse_args(argv))
    quick, size, sizes, repeat = args.quick, args.size, args.sizes, args.repeat
    trials, idle, wanted = args.trials, args.idle, args.only
    find_mosquitto()
    if shutil.which("mosquitto_pub") is None:
        raise SystemExit("mosquitto_pub is missing: apt-get install mosquitto-clients")
    # The service's own warnings stay visible (stderr); the benchmark's output is stdout.
    logging.basicConfig(level=logging.WARNING, format="  [%(name)s] %(message)s")
    os.chdir(REPO)
    root = temp_root()
    started = time.monotonic()
    rows: list[Row] = []
    say(f"benchmark: {os.cpu_count()} CPUs, library {size} items, P7 sizes {sizes}, "
        f"repeat {repeat}" + (f", scratch kept in {root}" if args.keep else ""))
    say(f"measuring src/ at commit {_revision()}")
    say(f"load average at start: {_load()}" + ("  (other processes are using the CPUs: "
                                               "timings will be pessimistic)"
                                               if os.getloadavg()[0] > 0.5 else ""))
    try:
        ctx = Context(root=root, size=size, repeat=repeat, plex_latency=args.plex_latency,
                      quick=quick)
        with contextlib.closing(ctx):
            p1_reference = float("nan")

            def run(name: str, measure: Callable[[], list[Row]]) -> None:
                if name not in wanted:
                    return
                began = time.monotonic()
                try:
                    rows.extend(measure())
                except Exception as exc:
                    traceback.print_exc()
                    rows.append(Row(f"{name} (failed to run)", type(exc).__name__, "runs",
                                    False))
                say(f"  ({name} took {time.monotonic() - began:.1f} s)")

            def p1() -> list[Row]:
                nonlocal p1_reference
                p1_rows, p1_reference = p1_full_sync(ctx)
                return p1_rows

            # P4 first: its service runs in this process, and what P1-P3 leave in this
            # process's heap slowed its syncs by up to 2x (a user's service has its own).
            for p4_size in sorted({min(size, 1000), size}):
                run("P4", functools.partial(p4_change_latency, ctx, p4_size, args.debounce,
                                            trials))
            run("P4", functools.partial(p4_second_edit, ctx, min(size, 1000), args.debounce,
                                        1 if quick else 3))
            run("P1", p1)
            run("P2", lambda: p2_p3_plex(ctx, p1_reference))
            run("P5", lambda: p5_idle(ctx, 0, 3.0) + p5_idle(ctx, size, idle))
            run("P6", lambda: p6_first_publish(ctx, 1000, 1 if quick else 3))
            run("P7", lambda: p7_scaling(ctx, sizes))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    say(f"\nTotal {time.monotonic() - started:.0f} s on {os.cpu_count()} CPUs; load average "
        f"at the end: {_load()}.\n")
    say(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0 if all(r.passed is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
