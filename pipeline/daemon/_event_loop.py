"""The asyncio event loop the daemon runs on: uvloop where it is installed.

Under load the daemon spends much of its CPU in the event loop's own
machinery (tasks, callbacks, timers, sockets); uvloop implements the same
asyncio API in C, and the daemon answers ~5 % more messages a second on it
(``bench --only throughput``). Everything else (anyio, httpx, neonize's
callbacks from its Go thread) sees the asyncio API it expects.

``WABOT_EVENT_LOOP=asyncio`` runs the standard library's loop instead: the
way out should a library misbehave on uvloop. Where uvloop is not installed
(Windows has no wheel), the daemon runs on asyncio and its "started" line says so.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Mapping

VARIABLE = "WABOT_EVENT_LOOP"
CHOICES = ("uvloop", "asyncio")


class EventLoopError(ValueError):
    """``WABOT_EVENT_LOOP`` names no loop this machine has; the message says which."""


def event_loop_options(environ: Mapping[str, str]) -> dict[str, bool]:
    """anyio's asyncio ``backend_options`` for the loop ``environ`` asks for (unset: uvloop
    where installed, else asyncio)."""
    asked = environ.get(VARIABLE, "").strip().lower()
    if asked not in ("", *CHOICES):
        raise EventLoopError(f"{VARIABLE}={asked!r}: expected one of {', '.join(CHOICES)}")
    installed = importlib.util.find_spec("uvloop") is not None
    if asked == "uvloop" and not installed:
        raise EventLoopError(f"{VARIABLE}=uvloop: uvloop is not installed")
    return {"use_uvloop": installed and asked != "asyncio"}


def running() -> str:
    """The running loop's kind, for the "started" line: "uvloop" or "asyncio"."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"
