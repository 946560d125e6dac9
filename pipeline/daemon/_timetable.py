"""When the scheduler's jobs are due: pure functions of the config, the log's record and now.

Vitality runs at each occurrence of ``vitality.cron_expression`` in
``vitality.timezone``. An occurrence is done once a vitality message was
planned at or after it. One missed while the daemon was down is still sent at
start-up if it is less than ``CATCH_UP`` old (a late check-in is news;
yesterday's at noon is noise); several missed ones make one message. When the
clocks go back, a wall-clock time that happens twice runs once, the first
time; when they go forward, a time that does not exist runs at the jump.

Rotation runs every ``rotation.interval_hours`` after the last one; before the
first, counted from when the log began (its oldest event), not from the
daemon's start, so a bot restarted more often than the interval rotates all the
same.

The startup message goes out at a start at most once per ``STARTUP_QUIET``:
a bot that crashes and is restarted every few seconds must not message the
owner each time.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from events.units import HOUR, MINUTE
from pipeline.config import RotationConfig, VitalityConfig

# A check-in missed by less than this (the daemon was down) is still sent.
CATCH_UP = HOUR
# At most one startup message in this long (README: "Command line").
STARTUP_QUIET = 10 * MINUTE
# A check-in due at start waits this long at most for the transport's first
# report, so it tells the connection as it is, not as the last run left it.
TRANSPORT_GRACE = MINUTE


def next_occurrence(expr: str, zone: ZoneInfo, after: float) -> float:
    """The first run of ``expr`` in ``zone`` strictly after unix time ``after``.

    Raises ``croniter.CroniterBadDateError`` for a valid expression that never
    matches (``0 0 31 2 *``).
    """
    runs = croniter(expr, datetime.fromtimestamp(after, zone))
    while True:
        at: float = runs.get_next(float)
        if not _repeated(at, zone):
            return at


def _repeated(at: float, zone: ZoneInfo) -> bool:
    """Whether ``at`` is the second time its wall-clock time happens that night."""
    local = datetime.fromtimestamp(at, zone)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def vitality_due(vitality: VitalityConfig, done: float, now: float) -> float:
    """When the next check-in is due; at or before ``now`` means one is due now.

    ``done`` is when the last check-in was planned (0: never).
    """
    return next_occurrence(vitality.cron_expression, vitality.zone, max(done, now - CATCH_UP))


def rotation_due(rotation: RotationConfig, last: float) -> float:
    """When the rotation after one at ``last`` is due."""
    return last + rotation.interval_hours * HOUR


def rotation_since(last_rotation: float, log_began: float | None, started: float) -> float:
    """What the next rotation counts from: the last one (``last_rotation``, 0: none);
    with none, when the log began (``log_began``, its oldest event's time; None: empty)
    or the daemon ``started``, whichever came first. A start must not put it off."""
    if last_rotation:
        return last_rotation
    return started if log_began is None else min(log_began, started)


def startup_due(last: float, now: float) -> bool:
    """Whether a start at ``now`` says so; ``last`` is when the last startup message was
    planned (0: never)."""
    # A clock set back is no reason for silence.
    return not last or not 0 <= now - last < STARTUP_QUIET
