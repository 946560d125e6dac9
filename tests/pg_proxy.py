"""A TCP forwarder in front of PostgreSQL that a test can cut and restore: an outage on demand.

The server itself cannot be stopped here (other engineers' tests share it), so
a database that "goes away" is this proxy dropping every connection through
it and refusing new ones, until ``restore``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit


class PgProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to ``host:port``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 5432) -> None:
        self._upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self.accepted = 0  # connections forwarded
        self.refused = 0  # connections turned away while cut
        self._changed = threading.Condition(self._lock)
        threading.Thread(target=self._accept, name="pg-proxy", daemon=True).start()

    def url(self, dsn: str) -> str:
        """``dsn`` pointed at this proxy instead of the server."""
        parts = urlsplit(dsn)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def cut(self) -> None:
        """Drop every connection (both ends see it closed) and refuse new ones."""
        with self._lock:
            self._cut = True
            dropping, self._open = self._open, set()
        for sock in dropping:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def wait_refused(self, count: int, timeout: float = 30.0) -> None:
        """Until ``count`` connections were turned away: someone keeps trying."""
        with self._lock:
            if not self._changed.wait_for(lambda: self.refused >= count, timeout):
                raise AssertionError(f"only {self.refused} connection attempts in {timeout}s")

    def close(self) -> None:
        self.cut()
        _close(self._listener)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                refused = self._cut
                if refused:
                    self.refused += 1
                    self._changed.notify_all()
            if refused:
                _close(client)
                continue
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                self.accepted += 1
                self._open.update((client, server))
                self._changed.notify_all()
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
