"""Waking a PostgreSQL log's waiters when another connection commits.

Writers ``NOTIFY`` the log's channel in the transaction that appends, so the
signal arrives after the commit. The payload is empty and nothing depends on
it arriving: on every signal, and at least every ``poll`` seconds without
one, the listener reads the log's counter and publishes it. A lost signal (a
dropped connection, a server restart, a notification queue that was full)
therefore only delays a waiter by ``poll``; it never hides an event.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from events.protocol import LogError

_STOP_GRACE = 5.0  # seconds close() waits for the listener thread to leave


def channel(schema: str, name: str) -> str:
    """A NOTIFY channel per log: a fixed-length identifier whatever the log's name."""
    digest = hashlib.sha1(f"{schema}/{name}".encode(), usedforsecurity=False).hexdigest()
    return f"wabot_{digest[:24]}"


class Listener:
    """A daemon thread that LISTENs on one channel and publishes the log's counter.

    Started on the first ``wait`` that has to block, so logs that never wait
    (writer processes, one-shot tools) hold no extra connection.
    """

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        channel: str,
        counter: Callable[[psycopg.Connection[Any]], int],
        publish: Callable[[int], object],
        poll: float,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._counter = counter
        self._publish = publish
        self._poll = poll
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name=f"listen-{self._channel}", daemon=True
                )
                self._thread.start()

    def stop(self, wake: Callable[[], None]) -> None:
        """Stop the thread; ``wake`` sends a NOTIFY so it need not sit out its poll."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is None:
            return
        with contextlib.suppress(LogError):  # server gone: the thread leaves at its next poll
            wake()
        thread.join(_STOP_GRACE)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except LogError:
                self._stop.wait(self._poll)  # keep trying: the server may come back
                continue
            try:
                with conn:
                    self._listen(conn)
            except psycopg.Error:
                self._stop.wait(self._poll)  # connection lost: reconnect after a poll

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        # LISTEN before the first read: a commit after that read is signalled.
        conn.execute(f"LISTEN {self._channel}")
        while not self._stop.is_set():
            self._publish(self._counter(conn))
            for _ in conn.notifies(timeout=self._poll, stop_after=1):
                pass
            # Signals carry nothing: those queued meanwhile need no read of their own.
            for _ in conn.notifies(timeout=0):
                pass
