"""Child process of the ``roundtrips`` benchmark: the real daemon, its log calls counted.

``python -m bench.counting_daemon COUNTS_FILE run --transport stdio …`` runs
``python -m pipeline`` with every log the daemon opens wrapped in a counter.
On SIGUSR1 it writes the counts so far to COUNTS_FILE as one JSON object, so
the benchmark can read them before and after the messages it times and leave
start-up out. A read is one call that goes to the database (``read``,
``last_seq``, ``wait``); a commit is one ``append`` call. On PostgreSQL it
also counts the SQL statements sent (each one a round trip to the server: a
commit may take several), all of them and those sent inside an ``append``,
by counting psycopg's calls that send one (a cursor's ``execute`` and
``copy``, and the connection's own ``BEGIN``/``COMMIT``).

With ``WABOT_BENCH_MODULES=1`` it also notes which of the project's modules
run code (a profile hook on every thread, which slows everything: a run of
its own); SIGUSR2 starts the noting afresh.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec


class Counts(msgspec.Struct):
    reads: int = 0
    empty_reads: int = 0  # reads that returned nothing
    commits: int = 0
    records_read: int = 0
    statements: int = 0  # SQL statements sent to PostgreSQL, one round trip each
    append_statements: int = 0  # of them, sent inside an ``append`` (its commit)
    modules: list[str] = []  # the project's modules that ran code since SIGUSR2


_ROOT = str(Path(__file__).resolve().parent.parent) + "/"
_PACKAGES = ("events/", "projections/", "pipeline/")


class ModuleTrace:
    """The project's modules whose functions are called, noted by a profile hook."""

    def __init__(self) -> None:
        self.on = False
        self.files: set[str] = set()

    def hook(self, frame: Any, event: str, _arg: object) -> None:
        if self.on and event == "call":
            self.files.add(frame.f_code.co_filename)

    def install(self) -> None:
        sys.setprofile(self.hook)
        threading.setprofile(self.hook)

    def restart(self) -> None:
        self.files = set()
        self.on = True

    def modules(self) -> list[str]:
        found = set()
        for name in list(self.files):
            rel = name.removeprefix(_ROOT)
            if rel != name and rel.startswith(_PACKAGES):
                found.add(rel.removesuffix(".py").removesuffix("/__init__").replace("/", "."))
        return sorted(found)


_appending = threading.local()  # ``on`` while this thread is inside a counted append


def count_statements(counts: Counts, lock: threading.Lock) -> None:
    """Count every SQL statement psycopg sends from here on (see the module's docstring)."""
    import psycopg  # noqa: PLC0415 (a SQLite run never needs it before this)

    def counted(send: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(send)
        def call(*args: Any, **kw: Any) -> Any:
            with lock:
                counts.statements += 1
                counts.append_statements += bool(getattr(_appending, "on", False))
            return send(*args, **kw)

        return call

    for cls, name in (
        (psycopg.Cursor, "execute"),
        (psycopg.Cursor, "copy"),
        (psycopg.Connection, "_exec_command"),  # BEGIN, COMMIT of ``conn.transaction()``
    ):
        setattr(cls, name, counted(getattr(cls, name)))


class CountingLog:
    """A log whose calls to the database are counted; everything else passes through."""

    def __init__(self, log: Any, counts: Counts, lock: threading.Lock) -> None:
        self._log = log
        self._counts = counts
        self._lock = lock

    def read(self, after: int = 0, **kw: Any) -> Iterator[Any]:
        records = list(self._log.read(after, **kw))
        with self._lock:
            self._counts.reads += 1
            self._counts.records_read += len(records)
            self._counts.empty_reads += not records
        return iter(records)

    def last_seq(self) -> int:
        with self._lock:
            self._counts.reads += 1
        seq: int = self._log.last_seq()
        return seq

    def wait(self, after: int, timeout: float | None = None) -> bool:
        with self._lock:
            self._counts.reads += 1
        done: bool = self._log.wait(after, timeout)
        return done

    def append(self, *items: Any, **kw: Any) -> Any:
        with self._lock:
            self._counts.commits += 1
        _appending.on = True
        try:
            return self._log.append(*items, **kw)
        finally:
            _appending.on = False

    def append_now(self, *items: Any, **kw: Any) -> Any:
        """A commit on the caller's thread (``events.protocol.AppendsNow``), counted too."""
        now = getattr(self._log, "append_now", None)
        _appending.on = True
        try:
            records = None if now is None else now(*items, **kw)
        finally:
            _appending.on = False
        if records is not None:
            with self._lock:
                self._counts.commits += 1
        return records

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)

    def __enter__(self) -> CountingLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self._log.close()


def main() -> int:
    out = Path(sys.argv[1])
    counts, lock = Counts(), threading.Lock()
    trace = ModuleTrace()

    def dump(_signum: int, _frame: object) -> None:
        with lock:
            counts.modules = trace.modules()
            data = msgspec.json.encode(counts)
        out.write_bytes(data)

    signal.signal(signal.SIGUSR1, dump)
    signal.signal(signal.SIGUSR2, lambda _signum, _frame: trace.restart())
    if os.environ.get("WABOT_BENCH_MODULES") == "1":
        trace.install()
    count_statements(counts, lock)
    from pipeline import cli  # noqa: PLC0415 (after the handler: a signal may come early)

    opened = vars(cli)["open_log"]

    def counting_open_log(*args: Any, **kw: Any) -> Any:
        return CountingLog(opened(*args, **kw), counts, lock)

    # The daemon's own command line, with the one log it opens counted.
    setattr(cli, "open_log", counting_open_log)  # noqa: B010
    return cli.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
