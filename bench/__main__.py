"""``python -m bench [--quick] [--only NAME ...] [--out FILE]``: run, print, save.

A benchmark that fails is reported (one line) and the others still run; the
exit status is 1 if any failed, else 0. Missed targets do not change it: the
table and the JSON say which were missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from bench import (
    compaction,
    concurrency,
    debounce,
    fold,
    latency,
    log_append,
    media,
    pg_append,
    pg_daemons,
    pg_fold,
    reminders,
    roundtrips,
    rss,
    speech,
    throughput,
)
from bench.report import Results, Row, save, table
from bench.workspace import QUICK, Sizes, Workspace, progress

BENCHMARKS: dict[str, Callable[[Workspace], list[Row]]] = {
    log_append.NAME: log_append.run,
    pg_append.NAME: pg_append.run,
    fold.NAME: fold.run,
    pg_fold.NAME: pg_fold.run,
    rss.NAME: rss.run,
    latency.NAME: latency.run,
    debounce.NAME: debounce.run,
    concurrency.NAME: concurrency.run,
    pg_daemons.NAME: pg_daemons.run,
    media.NAME: media.run,
    speech.NAME: speech.run,
    compaction.NAME: compaction.run,
    roundtrips.NAME: roundtrips.run,
    throughput.NAME: throughput.run,
    reminders.NAME: reminders.run,
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only these ({', '.join(BENCHMARKS)})",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    return parser


def machine() -> dict[str, str]:
    """What the figures depend on, so a result file explains itself."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "msgspec": msgspec.__version__,
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "loadavg_at_start": load,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes: Sizes = QUICK if args.quick else Sizes()
    names = args.only or list(BENCHMARKS)
    info = machine()
    rows: list[Row] = []
    errors: dict[str, str] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wabot-bench-") as root:
        ws = Workspace(Path(root), sizes)
        for name in names:
            try:
                rows += BENCHMARKS[name](ws)
            except Exception as exc:  # one broken benchmark must not hide the others
                errors[name] = f"{type(exc).__name__}: {exc}"
                progress(f"{name} FAILED: {errors[name]}")
    results = Results(
        machine=info,
        command=shlex.join(["python", "-m", "bench", *(argv or sys.argv[1:])]),
        quick=args.quick,
        seconds=round(time.perf_counter() - started, 1),
        rows=rows,
        errors=errors,
    )
    print(table(rows))
    for name, error in errors.items():
        print(f"{name}: FAILED: {error}")
    print(f"\n{results.seconds:.0f} s; results in {args.out}")
    save(args.out, results)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
