"""Durations in seconds, the unit of every time in the log (``Recorded.ts``, ``sent_at``)."""

MINUTE = 60.0
HOUR = 60 * MINUTE
DAY = 24 * HOUR
