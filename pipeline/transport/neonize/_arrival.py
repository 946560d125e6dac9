"""Messages held on neonize's Go thread until the daemon has recorded them.

whatsmeow acknowledges a message (its delivery receipt) once neonize's Go
event handler has queued the event, and never sends it again. neonize's one
dispatch goroutine then calls ``client.event.execute`` for each event, in
order, on a Go thread; neonize's own ``execute`` only schedules the Python
handler and returns. ``Gate.execute`` replaces it: for an event that carries
a message it waits (on that Go thread, never on the event loop, and never
longer than ``RECORD_WAIT``) until the transport has handed the fact to the
daemon and the daemon has committed it, dropped it as unmonitored, or held it
while the log is away. Every other event goes through neonize's own code.

The wait also keeps the order: the next event is read only after this one.
What the wait cannot cover: the events neonize's Go side has already queued
(up to 100, acknowledged while this thread waits) and facts the daemon holds
in memory while its database is away.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import threading
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from neonize.events import INT_TO_EVENT

from pipeline.logs import get_logger

_log = get_logger(__name__)

# How long a Go callback waits for its message to be recorded. A commit takes
# milliseconds; the daemon holds a fact in memory rather than wait longer than
# a few seconds for a database that went away (its HOLD_AFTER).
RECORD_WAIT = 30.0

Handler = Callable[[Any, Any], Awaitable[None]]


class Arrival:
    """One message-bearing event on its way to the log; ``event`` is the parsed proto."""

    def __init__(self, code: int, event: Any) -> None:
        self.code = code
        self.event = event
        self.queued = False  # handed to the transport's queue: settled after the daemon
        self._settled = threading.Event()

    def settle(self) -> None:
        self._settled.set()

    def wait(self, timeout: float) -> bool:
        return self._settled.wait(timeout)


# The arrival whose handler is running: set for the handler's task only.
_current: contextvars.ContextVar[Arrival | None] = contextvars.ContextVar(
    "neonize_arrival", default=None
)


def current() -> Arrival | None:
    """The arrival the running handler is converting, if it carries a message."""
    return _current.get()


class Gate:
    """Stands in for neonize's Go callback of one client (``client.event.execute``).

    Bound before ``connect`` (neonize takes ``client.event.execute`` then), opened
    on the event loop that runs the transport, closed when it stops.
    """

    def __init__(
        self, client: Any, codes: Collection[int], *, record_wait: float = RECORD_WAIT
    ) -> None:
        self._client = client
        self._neonize_execute: Callable[[int, int, int, int], None] = client.event.execute
        self._codes = frozenset(codes)
        self._record_wait = record_wait
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._waiting: set[Arrival] = set()
        self._lock = threading.Lock()
        client.event.execute = self.execute

    def open(self) -> None:
        """From now on, wait for message-bearing events; call on the event loop."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def close(self) -> None:
        """Stop waiting: nothing will hand the queued events over any more."""
        with self._lock:
            self._loop = None
            waiting, self._waiting = self._waiting, set()
        for arrival in waiting:
            arrival.settle()

    def execute(self, uuid: int, binary: int, size: int, code: int) -> None:
        """neonize's Go callback: runs on Go's dispatch thread, one event at a time."""
        handler: Handler | None = self._client.event.list_func.get(code)
        loop = self._loop
        if (
            code not in self._codes
            or handler is None
            or loop is None
            or threading.get_ident() == self._loop_thread  # waiting here would deadlock
        ):
            self._neonize_execute(uuid, binary, size, code)
            return
        arrival = Arrival(code, INT_TO_EVENT[code].FromString(ctypes.string_at(binary, size)))
        with self._lock:
            if self._loop is None:  # closed meanwhile
                return
            self._waiting.add(arrival)
        try:
            asyncio.run_coroutine_threadsafe(self._arrive(handler, arrival), loop)
            if not arrival.wait(self._record_wait):
                _log.warning("message_not_recorded_in_time", waited_seconds=self._record_wait)
        except RuntimeError:  # the loop has closed
            pass
        finally:
            with self._lock:
                self._waiting.discard(arrival)

    async def _arrive(self, handler: Handler, arrival: Arrival) -> None:
        token = _current.set(arrival)
        try:
            await handler(self._client, arrival.event)
        finally:
            _current.reset(token)
            if not arrival.queued:  # nothing to record (a reaction, a chat we cannot name)
                arrival.settle()
