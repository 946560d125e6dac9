"""Folding the history into every projection, pure and from the SQLite log.

Baselines do the same iteration without the projections: a loop over the
decoded records for the pure fold, and ``log.read()`` (read + decode) for the
start-up fold, so each ratio is the share of time left after projection work.
"""

from __future__ import annotations

from pathlib import Path

from bench.measure import median_rates, seconds
from bench.report import Row
from bench.workspace import Workspace, progress
from events.backends import open_log
from events.model import Recorded
from projections.fold import ALL, fold
from projections.runner import Runner

NAME = "fold"
REFOLD_GOAL = 1.5  # Runner.start at most this many times read + decode alone (issue 19)


def run(ws: Workspace) -> list[Row]:
    records = ws.history()
    count = len(records)
    progress(f"{NAME}: pure fold of {count:,} records into {len(ALL)} projections")
    pure, loop = median_rates(
        count,
        lambda: seconds(lambda: _check(fold(records).seq, count)),
        lambda: seconds(lambda: _iterate(records)),
    )
    rows = [
        Row(
            bench=NAME,
            measure="projections.fold, all projections (pure)",
            value=pure,
            unit="ev/s",
            baseline=loop,
            baseline_label="plain loop over the records",
            target=500_000,
            note=f"{count:,} events, median of 3",
        )
    ]
    rows += _per_projection(records)
    store = ws.store()
    progress(f"{NAME}: Runner.start on the {count:,}-event log")
    started, read = median_rates(count, lambda: _start(store, count), lambda: _read(store, count))
    rows.append(
        Row(
            bench=NAME,
            measure="Runner.start: read + decode + fold from SQLite",
            value=started,
            unit="ev/s",
            baseline=read,
            baseline_label="log.read() read + decode",
            target=read / REFOLD_GOAL,
            note=f"{count:,} events, no snapshot, median of 3; goal {REFOLD_GOAL}x the read's time",
        )
    )
    return rows


def _per_projection(records: list[Recorded]) -> list[Row]:
    """Each projection folded alone (one run each): where the fold time goes."""
    count = len(records)
    loop = count / seconds(lambda: _iterate(records))
    return [
        Row(
            bench=NAME,
            measure=f"  {projection.name} alone",
            value=count / seconds(lambda: fold(records, [projection])),  # noqa: B023
            unit="ev/s",
            baseline=loop,
            baseline_label="plain loop",
            note="information, one run",
        )
        for projection in ALL
    ]


def _iterate(records: list[Recorded]) -> None:
    for rec in records:
        event = rec.event
        type(event)


def _check(seq: int, count: int) -> None:
    if seq != count:
        raise AssertionError(f"fold stopped at seq {seq} of {count}")


def _start(store: Path, count: int) -> float:
    log = open_log(store)
    try:
        took = seconds(lambda: _check(Runner.start(log).seq, count))
    finally:
        log.close()
    return took


def _read(store: Path, count: int) -> float:
    log = open_log(store)
    try:
        took = seconds(lambda: sum(1 for _ in log.read()))
    finally:
        log.close()
    return took
