"""The compaction cases on PostgreSQL."""

from __future__ import annotations

from bench.report import Row
from bench.workspace import Workspace


def run(ws: Workspace) -> list[Row]:
    return []
