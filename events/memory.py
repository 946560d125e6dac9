"""An in-memory event log: the SQLite log's twin for tests and experiments.

Same API and same in-process guarantees (``events.testing.LogContract`` runs
against both); nothing survives the process, so the durability half of the
contract does not apply.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Self

from events.compaction import forgets, removed
from events.model import (
    AnyEvent,
    Compacted,
    MediaFetched,
    MessageReceived,
    Recorded,
    SpeechSynthesized,
)
from events.protocol import CompactReason, Guard, Keyed, Progress, Selection

_US = 1_000_000


class MemoryLog:
    """Events in a list, guarded by one lock; ``path`` is accepted and ignored."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._events: list[Recorded] = []
        self._by_key: dict[str, Recorded] = {}
        self._snapshots: dict[tuple[str, int], tuple[int, bytes]] = {}
        self._next = 1
        self._changed = threading.Condition()
        self._listeners: list[Callable[[int], None]] = []
        self._closed = False

    def append(self, *items: AnyEvent | Keyed, guard: Guard | None = None) -> list[Recorded]:
        if not items:
            return []
        with self._changed:
            if guard is not None and self._forgets(guard):
                raise guard.refusal()
            result = self._append_locked(items)
        self._published()
        return result

    def _append_locked(self, items: tuple[AnyEvent | Keyed, ...]) -> list[Recorded]:
        ts = round(self._clock() * _US) / _US
        result = []
        for item in items:
            event, key = (item.event, item.key) if isinstance(item, Keyed) else (item, None)
            existing = self._by_key.get(key) if key is not None else None
            result.append(existing or self._add(Recorded(self._next, ts, event, key)))
        self._changed.notify_all()
        return result

    def _forgets(self, guard: Guard) -> bool:
        """A compaction here is one step under the lock: never under way, only recorded."""
        after = (r.event for r in self._events if r.seq > guard.seen)
        return forgets(guard, (e for e in after if isinstance(e, Compacted)), ())

    def _published(self) -> None:
        last = self.last_seq()
        for listener in list(self._listeners):
            listener(last)

    def _add(self, rec: Recorded) -> Recorded:
        self._events.append(rec)
        if rec.key is not None:
            self._by_key[rec.key] = rec
        self._next += 1
        return rec

    def read(
        self, after: int = 0, *, chats: Collection[str] | None = None, limit: int | None = None
    ) -> Iterator[Recorded]:
        with self._changed:
            found = [
                r for r in self._events if r.seq > after and (chats is None or r.chat in chats)
            ]
        return iter(found[:limit] if limit is not None else found)

    def chats(self) -> set[str]:
        with self._changed:
            return {r.chat for r in self._events if r.chat}

    def media(self) -> set[str]:
        with self._changed:
            found = {
                r.event.media.sha256
                for r in self._events
                if isinstance(r.event, MessageReceived | MediaFetched)
                and r.event.media is not None
                and r.event.media.sha256
            }
            return found | {
                r.event.sha256 for r in self._events if isinstance(r.event, SpeechSynthesized)
            }

    def size_bytes(self) -> int:
        """Nothing is stored anywhere: zero."""
        return 0

    def last_seq(self) -> int:
        with self._changed:
            return self._next - 1

    def wait(self, after: int, timeout: float | None = None) -> bool:
        with self._changed:
            self._changed.wait_for(lambda: self._next - 1 > after or self._closed, timeout)
            return self._next - 1 > after

    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def compact(
        self, reason: CompactReason, selection: Selection, *, progress: Progress | None = None
    ) -> Recorded | None:
        """All at once under the lock: one chunk, reported to ``progress``."""
        with self._changed:
            doomed = [r for r in self._events if selection.matches(r)]
            marker = removed(
                selection,
                reason,
                [(r.seq, type(r.event).__name__, r.chat) for r in doomed],
                progress,
            )
            if marker is None:
                return None
            gone = {r.seq for r in doomed}
            self._events = [r for r in self._events if r.seq not in gone]
            self._by_key = {k: r for k, r in self._by_key.items() if r.seq not in gone}
            recorded = self._append_locked((marker,))[0]
            # Folded before the marker: they may hold what went.
            self._snapshots = {k: v for k, v in self._snapshots.items() if v[0] >= recorded.seq}
        self._published()
        return recorded

    def finish_compactions(self) -> list[Recorded]:
        """None is ever left unfinished: a compaction here is one step under the lock."""
        return []

    def save_snapshot(self, name: str, version: int, seq: int, state: bytes) -> None:
        with self._changed:
            if not any(isinstance(r.event, Compacted) and r.seq > seq for r in self._events):
                self._snapshots[(name, version)] = (seq, state)

    def purge(self) -> None:
        with self._changed:
            self._snapshots.clear()

    def load_snapshot(self, name: str, version: int) -> tuple[int, bytes] | None:
        with self._changed:
            return self._snapshots.get((name, version))

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
