"""When a reminder is due: the model's ``at`` read as an instant, or why it cannot be.

The model writes ISO 8601: with an offset (``2026-12-08T09:00:00+01:00``, or
``Z``) it is that instant; naive, it is wall-clock time in
``vitality.timezone``, the owner's zone. Where the clocks jump, the rules are
the timetable's (``pipeline.daemon._timetable``): a time that happens twice
(the clocks go back) is its first occurrence; a time that does not exist (they
go forward) is the moment of the jump. A time in the past, or more than
``HORIZON`` ahead, is refused: a reminder nobody will get, or a typo of the year.
One in a year far from now's (``0001``, ``9999``) is refused as written, before
it is read in any zone: at the ends of ``datetime``'s range, years 1 and 9999,
moving it to another offset would leave the range.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from events.units import DAY

HORIZON = 365 * DAY
# A year this many from now's is past or beyond HORIZON in any offset: refused unread.
FAR_YEARS = 2


def parse(text: str, zone: ZoneInfo, now: float) -> float | str:
    """The instant ``text`` names (unix seconds), or why it is refused (one line)."""
    try:
        local = datetime.fromisoformat(text.strip())
    except ValueError:
        return f"{text!r} is not a time: write ISO 8601, such as 2026-12-08T09:00:00+01:00"
    year = datetime.fromtimestamp(now, zone).year
    if local.year < year - FAR_YEARS:
        return _past(local.isoformat(), now, zone)
    if local.year > year + FAR_YEARS:
        return _far(local.isoformat())
    at = _instant(local, zone)
    if at <= now:
        return _past(iso(at, zone), now, zone)
    if at > now + HORIZON:
        return _far(iso(at, zone))
    return at


def _past(shown: str, now: float, zone: ZoneInfo) -> str:
    return f"{shown} is in the past (now it is {iso(now, zone)})"


def _far(shown: str) -> str:
    return f"{shown} is more than a year ahead"


def _instant(local: datetime, zone: ZoneInfo) -> float:
    if local.tzinfo is not None:
        return local.timestamp()
    first = local.replace(tzinfo=zone, fold=0)
    if _wall(first.timestamp(), zone) == local:
        return first.timestamp()  # exists (the first of two, when it happens twice)
    return _jump(local, zone)


def _wall(at: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(at, zone).replace(tzinfo=None)


def _jump(local: datetime, zone: ZoneInfo) -> float:
    """The moment the clocks jumped over the non-existent wall time ``local``."""
    # With fold=1 the gap's time reads in the offset after the jump, with fold=0 in
    # the one before: the jump lies between those two instants.
    low = int(local.replace(tzinfo=zone, fold=1).timestamp())
    high = int(local.replace(tzinfo=zone, fold=0).timestamp())
    after = datetime.fromtimestamp(high, zone).utcoffset()
    while low < high:  # the first second already in the offset after the jump
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after:
            high = middle
        else:
            low = middle + 1
    return float(high)


def iso(at: float, zone: ZoneInfo) -> str:
    """``at`` as the model and the owner read it: ISO 8601 in ``zone``, with its offset."""
    return datetime.fromtimestamp(at, zone).replace(microsecond=0).isoformat()


def utc(at: float) -> str:
    """``at`` in UTC, for a log line or a test."""
    return datetime.fromtimestamp(at, UTC).isoformat()
