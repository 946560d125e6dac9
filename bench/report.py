"""Result rows, the stdout table and the JSON file they end up in."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import msgspec

Unit = Literal["ev/s", "ms", "MB", "s", "calls"]
Better = Literal["higher", "lower"]


class Row(msgspec.Struct, kw_only=True):
    """One figure, its same-run baseline and, where the issue sets one, its target.

    ``ratio`` (``value / baseline``) and ``ok`` are derived, and written to
    JSON so a reader needs no arithmetic.
    """

    bench: str
    measure: str
    value: float
    unit: Unit
    baseline: float | None = None
    baseline_label: str = ""
    target: float | None = None
    better: Better = "higher"
    note: str = ""
    ratio: float | None = None
    ok: bool | None = None

    def __post_init__(self) -> None:
        if self.baseline:
            self.ratio = self.value / self.baseline
        if self.target is not None:
            higher = self.better == "higher"
            self.ok = self.value >= self.target if higher else self.value <= self.target


class Results(msgspec.Struct, kw_only=True):
    machine: dict[str, str]
    command: str
    quick: bool
    seconds: float
    rows: list[Row]
    errors: dict[str, str]


def amount(value: float, unit: str) -> str:
    """``162k ev/s``, ``48.1 ms``, ``95.2 MB``, ``7.31 s``."""
    if unit == "ev/s":
        if value >= 1e6:
            return f"{value / 1e6:.2f}M ev/s"
        return f"{value / 1e3:.0f}k ev/s" if value >= 1e5 else f"{value / 1e3:.1f}k ev/s"
    if unit == "calls":
        return f"{value:.0f}" if value >= 100 or value == int(value) else f"{value:.1f}"
    digits = 2 if value < 10 else 1 if value < 1000 else 0
    return f"{value:.{digits}f} {unit}"


def _vs(row: Row) -> str:
    if row.baseline is None:
        return ""
    times = "n/a" if row.ratio is None else f"{row.ratio:.2f}"
    return f"= {times}x {row.baseline_label} {amount(row.baseline, row.unit)}"


def _target(row: Row) -> str:
    if row.target is None:
        return ""
    sign = "≥" if row.better == "higher" else "≤"
    return f"{sign} {amount(row.target, row.unit)} {'ok' if row.ok else 'MISSED'}"


def table(rows: Sequence[Row]) -> str:
    """Aligned plain-text table, one row per figure."""
    cells = [
        (f"{r.bench}: {r.measure}", amount(r.value, r.unit), _vs(r), _target(r), r.note)
        for r in rows
    ]
    head = ("benchmark", "value", "vs same-run baseline", "target", "note")
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip()
        for cell in [head, *cells]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def save(path: Path, results: Results) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(results)) + b"\n")
