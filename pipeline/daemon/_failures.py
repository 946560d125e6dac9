"""How a daemon loop reports a pass that failed, without flooding the log.

Every loop (agent, sender, scheduler, alerter) survives a failed pass and
tries again at its next wake-up, often every few seconds. A failure that
repeats (a database away for an hour, a full disk) is written once, then
once more when it clears, instead of a traceback per poll. The log's own
errors are expected conditions and get one line; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from events.protocol import LogError


class Failures:
    def __init__(self, log: structlog.stdlib.BoundLogger, event: str) -> None:
        self._log = log
        self._event = event
        self._failing: dict[str, str] = {}  # what failed (its fields) -> the error last logged

    @contextmanager
    def guard(self, **fields: str) -> Iterator[None]:
        """Run one pass; an exception is logged (unless it repeats) and swallowed."""
        key = _key(fields)
        try:
            yield
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if self._failing.get(key) == error:
                return
            self._failing[key] = error
            if isinstance(exc, LogError):
                self._log.warning(self._event, error=str(exc), **fields)
            else:
                self._log.exception(self._event, **fields)
        else:
            if self._failing.pop(key, None) is not None:
                self._log.info(f"{self._event.removesuffix('_failed')}_recovered", **fields)

    def forget(self, **fields: str) -> None:
        """Drop what failed with ``fields`` without a recovery: it will not run again soon
        (a chat with no work left). Should it fail again, that is logged anew."""
        self._failing.pop(_key(fields), None)


def _key(fields: dict[str, str]) -> str:
    return repr(sorted(fields.items()))
