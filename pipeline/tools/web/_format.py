"""How the pages write times, money and durations (Jinja filters)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def when(ts: float | None, zone: ZoneInfo) -> str:
    """A log time in the owner's zone, to the second, with the zone's abbreviation."""
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def usd(value: float | None) -> str:
    return "cost unknown" if value is None else f"${value:.4f}"


def ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"
