"""Memory after start-up on the big log, each case in a fresh child process.

The baseline child only imports ``events``, ``projections`` and ``msgspec``;
the ratio is how many times that floor start-up costs. Starting without a
snapshot (a full refold) is the worst case and carries the issue's target;
starting from a snapshot is what a restart after a clean stop does.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import msgspec

from bench.report import Row
from bench.workspace import Workspace, progress

NAME = "rss"
TARGET_MB = 120.0
BASELINE = "bare import"
REPO = Path(__file__).resolve().parent.parent


class Memory(msgspec.Struct):
    vmrss_kb: int
    vmhwm_kb: int
    seq: int


def run(ws: Workspace) -> list[Row]:
    store = ws.store()
    count = len(ws.history())
    progress(f"{NAME}: child processes starting up on the {count:,}-event log")
    bare = measure()
    refold = measure("--store", str(store))
    measure("--store", str(store), "--save-snapshot")
    try:
        restored = measure("--store", str(store))
    finally:
        _drop_snapshots(store / "events.db")  # later runs must refold again
    for memory in (refold, restored):
        if memory.seq != count:
            raise AssertionError(f"start-up folded up to seq {memory.seq}, not {count}")
    return [
        *_rows("full refold", refold, bare, TARGET_MB),
        *_rows("from a snapshot", restored, bare, None),
    ]


def measure(*args: str) -> Memory:
    """Run the child with ``args`` and return what it reports."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.rss_child", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"rss child {' '.join(args)} failed: {tail[0]}")
    return msgspec.json.decode(done.stdout.strip().splitlines()[-1], type=Memory)


def _rows(how: str, memory: Memory, bare: Memory, target: float | None) -> list[Row]:
    now = Row(
        bench=NAME,
        measure=f"RSS after Runner.start, {how}",
        value=memory.vmrss_kb / 1024,
        unit="MB",
        baseline=bare.vmrss_kb / 1024,
        baseline_label=BASELINE,
        target=target,
        better="lower",
        note="VmRSS",
    )
    peak = Row(
        bench=NAME,
        measure="  peak RSS during it",
        value=memory.vmhwm_kb / 1024,
        unit="MB",
        baseline=bare.vmhwm_kb / 1024,
        baseline_label=BASELINE,
        better="lower",
        note="VmHWM",
    )
    return [now, peak]


def _drop_snapshots(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM snapshots")
