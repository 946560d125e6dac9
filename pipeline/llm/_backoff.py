"""How long to wait before retrying an LLM call.

The policy copies Perplexity's official SDK: exponential backoff from 0.5 s
capped at 8 s, shortened by up to 25 % jitter, unless the server says how long
to wait (``retry-after-ms``, then ``retry-after``), which we honour up to 60 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime

INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
MAX_RETRY_AFTER = 60.0


def backoff_delay(retries_done: int, retry_after: float | None, jitter: float) -> float:
    """Seconds to sleep before retry number ``retries_done + 1``.

    ``jitter`` is a draw from [0, 1); it spreads clients that failed together.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
    base = min(INITIAL_DELAY * 2.0**retries_done, MAX_DELAY)
    return base * (1.0 - 0.25 * jitter)


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked us to wait, or None when it did not say.

    ``headers`` must look names up case-insensitively (httpx.Headers does).
    ``retry-after`` may be seconds or an HTTP date, compared with ``now``.
    """
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive, but HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value >= 0 else None
