"""The daemon's reply latency while its scheduled rotation runs, against a run without one."""

from __future__ import annotations

from pathlib import Path

from bench.report import Row
from bench.workspace import Workspace


def run(ws: Workspace, master: Path, cutoff: float) -> list[Row]:
    return []
