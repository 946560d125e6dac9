"""The PostgreSQL lease as a daemon holds it: wait as a standby, go live, watch, step down.

A daemon whose log is on PostgreSQL takes the lease of its number
(``events.postgres.Lease``) before it opens the log or connects to WhatsApp. If
another daemon holds it, this one is a standby: it says so in one log line and
tries again every ``POLL`` seconds, through database outages too. Once it holds
the lease it waits ``SETTLE`` seconds, then goes live; at once when the last
holder released it cleanly (it had stopped, ``release(clean=True)``), as
there is nobody left to notice anything. While live, a thread
confirms the lease every ``CHECK`` seconds. If the lease connection is lost,
the thread tries every ``RETAKE`` seconds to take the lease back:

- taken back: nobody else took it meanwhile; the daemon carries on;
- held by another daemon: this one ends at once (exit status 4), as abruptly
  as ``kill -9``, which the log is built to survive: never two connected;
- database unreachable: with a standby waiting (seen at the last good check)
  the daemon ends once the lease has gone unconfirmed for ``GRACE`` seconds;
  with none it waits out the outage, since only a daemon that starts after the
  database is back could take over, and its ``SETTLE`` leaves time to notice.

Why no two are ever live: a holder that lost its connection is gone within
``GRACE`` (about 3 s, or ~3.5 s with the 2 s TCP timeout of a check) when
another could take over, or within ``RETAKE`` of the database answering again;
a new holder goes live only ``SETTLE`` (4 s) after it took the lock, so the
old one has always ended by then. Only a holder that had stopped (its transport
closed) records a clean release, on the session that still holds the lock, and
the next holder clears it as it takes the lock: a holder cut off records none,
so whoever takes over from it waits ``SETTLE``. A daemon killed with ``kill -9`` frees the
lock at once, so its standby is live about ``POLL + SETTLE`` later, plus its
start-up: well within 15 s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

from events.postgres import Lease
from events.protocol import LogError
from pipeline.daemon._exits import EXIT_LEASE_LOST
from pipeline.logs import get_logger

log = get_logger("wabot.lease")

POLL = 0.5
SETTLE = 4.0
CHECK = 1.0
RETAKE = 0.25
GRACE = 3.0


class LeaseLock:
    """The ``Lock`` of a daemon whose log is on PostgreSQL (see the module docstring)."""

    def __init__(
        self,
        url: str,
        number: str,
        *,
        settle: float = SETTLE,
        on_lost: Callable[[int], object] = os._exit,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._lease = Lease(url, name=number)
        self._who = f"pid {os.getpid()} on {socket.gethostname()}"
        self._settle = settle
        self._sleep = sleep
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.standbys = 0  # daemons seen waiting for the lease at the last good check

    def acquire(self) -> None:
        """Hold the lease, waiting as a standby while another daemon does.

        An unreachable database at the first try is a ``LogError`` (one line,
        exit 2); SIGTERM while waiting ends the process like Ctrl-C (exit 0).
        """
        with _stoppable():
            if not self._lease.take(self._who):
                self._wait_as_standby()
            released = self._lease.released
            if released is None:
                log.info("lease_taken", going_live_in_seconds=self._settle)
                self._sleep(self._settle)
            else:
                by, at = released
                log.info("lease_taken", going_live_in_seconds=0, released_by=by, at=at.isoformat())
        self._watcher = threading.Thread(target=self._watch, name="lease", daemon=True)
        self._watcher.start()

    def release(self, *, clean: bool = False) -> None:
        """``clean``: this daemon has stopped (its transport closed): the next holder
        may go live at once."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(CHECK + 5)
        self._lease.release(clean=clean)

    def _wait_as_standby(self) -> None:
        with contextlib.suppress(LogError):
            log.warning("standby", active=self._lease.holder() or "unknown")
        unreachable = False
        while True:
            time.sleep(POLL)
            try:
                if self._lease.take(self._who):
                    return
                unreachable = False
            except LogError as exc:
                if not unreachable:
                    log.warning("standby_database_unreachable", error=str(exc))
                unreachable = True

    def _watch(self) -> None:
        confirmed = time.monotonic()
        while not self._stop.wait(CHECK):
            try:
                self.standbys = self._lease.check()
                confirmed = time.monotonic()
                continue
            except LogError as exc:
                log.warning("lease_connection_lost", error=str(exc), standbys=self.standbys)
            if not self._retake(confirmed, self.standbys):
                return

    def _retake(self, confirmed: float, standbys: int) -> bool:
        """Take the lease back; False (after ending the process) when that is not safe."""
        while not self._stop.is_set():
            try:
                taken = self._lease.take(self._who)
            except LogError:
                taken = None  # the database is still away
            if taken:
                log.warning("lease_retaken")
                return True
            if taken is False:
                self._lost("another daemon took the lease")
                return False
            if standbys and time.monotonic() - confirmed > GRACE:
                self._lost(f"lease unconfirmed for {GRACE:g} s while a standby waits")
                return False
            self._stop.wait(RETAKE)
        return False

    def _lost(self, why: str) -> None:
        log.error("lease_lost", reason=why, exit_status=EXIT_LEASE_LOST)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._on_lost(EXIT_LEASE_LOST)


@contextlib.contextmanager
def _stoppable() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` meanwhile (only the main thread gets signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
