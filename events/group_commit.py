"""Group commit, shared by the backends that write: one transaction for concurrent appends.

Concurrent ``append`` calls queue their batches, and whichever caller takes the
write lock first commits every queued batch in one transaction (the leader);
the others find their batch done when they get the lock (followers). There is
one writer per process without a thread hand-off on the uncontended path. Each
batch stays contiguous and all-or-nothing: when a group fails, its batches are
tried one by one, so one bad batch never fails its neighbours.

``append_now`` is the same commit for a caller that must not wait (an event
loop): it goes ahead only when no one holds or waits for the lock and the
backend can begin without waiting, and otherwise says so at once, so the
caller can append from a thread instead.

A batch may carry a ``Guard``: the backend checks it inside the group's
transaction, after taking its write lock, and leaves a refused batch out
(``refuse``) while its neighbours commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from events.model import AnyEvent, Recorded
from events.protocol import Guard, Keyed

Row = tuple[AnyEvent, str | None, str]  # event, idempotency key, encoded body


class Batch:
    """One ``append`` call's events, waiting for whichever caller commits the group."""

    __slots__ = ("done", "error", "guard", "result", "rows", "ts")

    def __init__(self, rows: list[Row], guard: Guard | None = None) -> None:
        self.rows = rows
        self.guard = guard
        self.ts = 0  # UTC microseconds, where a backend fixes it before the first attempt
        self.done = False
        self.result: list[Recorded] = []
        self.error: BaseException | None = None

    def refuse(self) -> None:
        """Its guard refused it (in the transaction): nothing of it is written."""
        assert self.guard is not None
        self.result = []
        self.error = self.guard.refusal()


class GroupCommit:
    """``commit(group)`` fills each batch's ``result`` or raises; ``published(seq)`` follows.

    ``alone(exc)``: a failure that would fail each batch alike (the database is
    away), so the group is not retried batch by batch. ``error(exc)``: what the
    caller of ``append`` gets for ``exc``. ``commit_now(group)``: ``commit``
    if it can begin at once, else False with nothing written (None: never).
    """

    def __init__(
        self,
        commit: Callable[[list[Batch]], None],
        published: Callable[[int], None],
        *,
        commit_now: Callable[[list[Batch]], bool] | None = None,
        alone: Callable[[BaseException], bool] = lambda _exc: False,
        error: Callable[[BaseException], BaseException] = lambda exc: exc,
    ) -> None:
        self.lock = threading.Lock()  # held by the leader; compaction chunks take it too
        self._commit = commit
        self._commit_now = commit_now
        self._published = published
        self._alone = alone
        self._error = error
        self._pending_lock = threading.Lock()
        self._pending: list[Batch] = []

    @property
    def waiting(self) -> bool:
        """Whether appends are queued for the lock (a compaction lets them go first)."""
        return bool(self._pending)

    def append(
        self,
        items: tuple[AnyEvent | Keyed, ...],
        encode: Callable[[AnyEvent], str],
        guard: Guard | None = None,
    ) -> list[Recorded]:
        """Commit ``items`` as one batch (within some group); their records, in order."""
        batch = Batch(_rows(items, encode), guard)
        with self._pending_lock:
            self._pending.append(batch)
        with self.lock:
            if not batch.done:
                with self._pending_lock:
                    group, self._pending = self._pending, []
                self._run(group)
        if batch.error is not None:
            raise batch.error
        return batch.result

    def append_now(
        self,
        items: tuple[AnyEvent | Keyed, ...],
        encode: Callable[[AnyEvent], str],
        guard: Guard | None = None,
    ) -> list[Recorded] | None:
        """``append`` without waiting: None, nothing written, if it would wait for
        the lock, for batches queued before it, or for the backend."""
        if self._commit_now is None or self._pending or not self.lock.acquire(blocking=False):
            return None
        try:
            if self._pending:  # queued meanwhile: their leader goes first
                return None
            batch = Batch(_rows(items, encode), guard)
            if not self._run([batch], self._commit_now):
                return None
        finally:
            self.lock.release()
        if batch.error is not None:
            raise batch.error
        return batch.result

    def _run(
        self, group: list[Batch], commit_now: Callable[[list[Batch]], bool] | None = None
    ) -> bool:
        """Commit ``group``; False only when ``commit_now`` found it had to wait."""
        try:
            if commit_now is None:
                self._commit(group)
            elif not commit_now(group):
                return False
        except BaseException as exc:
            if len(group) == 1 or self._alone(exc):
                for batch in group:
                    batch.error = self._error(exc)
                    batch.done = True
                return True
            for batch in group:
                batch.result, batch.error = [], None  # a refusal is decided again
                self._run([batch])
            return True
        for batch in group:
            batch.done = True
        seqs = [r.seq for b in group for r in b.result]
        if seqs:
            self._published(max(seqs))
        return True


def _rows(items: tuple[AnyEvent | Keyed, ...], encode: Callable[[AnyEvent], str]) -> list[Row]:
    rows: list[Row] = []
    for item in items:
        event, key = (item.event, item.key) if isinstance(item, Keyed) else (item, None)
        rows.append((event, key, encode(event)))
    return rows
