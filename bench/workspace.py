"""What one run shares: sizes, a scratch directory and the big event history."""

from __future__ import annotations

import gc
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.corpus import history, write_log
from events.model import Recorded


@dataclass(frozen=True)
class Sizes:
    """The issue's sizes, or small ones for a smoke run (``--quick``)."""

    history: int = 1_000_000
    append_burst: int = 100_000  # events per append run, bursts of 100
    append_single: int = 20_000  # events per run, one commit each (WAL NORMAL)
    append_single_full: int = 5_000  # the same under synchronous=FULL (fsync per commit)
    messages: int = 200  # latency: sequential messages through the daemon
    debounced: int = 100  # debounce: messages per debounce setting
    chats: int = 50  # concurrency: chats with one message each
    llm_delay: float = 1.0  # concurrency: seconds the fake LLM takes per answer
    throughput_messages: int = 20_000  # throughput: messages through the daemon
    throughput_chats: int = 200
    pg_burst: int = 50_000  # PostgreSQL: events per append run, bursts of 100
    pg_single: int = 5_000  # PostgreSQL: events per run, one commit each
    pg_follow: int = 1_000  # PostgreSQL: single-event appends per writer process (4 of them)


QUICK = Sizes(
    history=50_000,
    append_burst=10_000,
    append_single=2_000,
    append_single_full=500,
    messages=20,
    debounced=20,
    chats=16,
    throughput_messages=1_000,
    throughput_chats=50,
    pg_burst=5_000,
    pg_single=500,
    pg_follow=200,
)


class Workspace:
    """Scratch space under ``root``; the history and its log are built once, on first use."""

    def __init__(self, root: Path, sizes: Sizes) -> None:
        self.root = root
        self.sizes = sizes
        self._history: list[Recorded] | None = None
        self._store: Path | None = None
        self._serial = itertools.count(1)

    def history(self) -> list[Recorded]:
        if self._history is None:
            progress(f"building a {self.sizes.history:,}-event history")
            self._history = history(self.sizes.history)
            # Built once and only read after: keep the collector from rescanning
            # it, as a daemon's fold never holds the whole history either.
            gc.collect()
            gc.freeze()
        return self._history

    def store(self) -> Path:
        """A store directory whose ``events.db`` holds ``history()``, without snapshots."""
        if self._store is None:
            records = self.history()
            store = self.root / "history"
            store.mkdir()
            progress(f"writing it to {store / 'events.db'}")
            write_log(store / "events.db", records)
            self._store = store
        return self._store

    def scratch(self, name: str) -> Path:
        """A fresh, empty directory for one measurement."""
        path = self.root / f"{name}-{next(self._serial)}"
        path.mkdir()
        return path


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
