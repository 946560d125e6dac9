"""The event log on PostgreSQL: read-only (``PostgresReader``) and read-write (``PostgresLog``).

One database holds many logs (one per owner's number), selected by a DSN and a
log name; they share the tables of one schema (``_schema``).

**No reader skips an event.** Sequence-numbered inserts commit out of order
in PostgreSQL, so a reader tailing by seq could pass 6 before 5 commits and
never see 5. Here each log has a counter row (``logs.last_seq``) that every
appending transaction updates *before* it inserts, and the row lock is held
to commit: appends to one log are serialised, seq order is commit order, and
a snapshot that shows seq N shows everything below it. This is eventsourcing's
``LOCK TABLE ... IN EXCLUSIVE MODE`` narrowed to one log, so logs of other
numbers in the same tables never wait for each other. The counter is bumped
in the same transaction, so seq has no gaps and is never reused after
compaction (it only grows, like AUTOINCREMENT). ``lock_timeout`` (the
``busy_timeout`` of SQLite's API) turns a stuck lock holder into a ``LogError``.

Writes are group-committed as in ``SQLiteLog``: concurrent ``append`` calls of
one process queue their batches and the first to take the write lock commits
them all in one transaction. Without idempotency keys a few rows go in one
statement that is its own transaction (one round trip) and many by COPY (a
page per WAL record, not a row); with keys the transaction locks the counter,
looks the keys up, then inserts only the new ones. A guarded append (``Guard``)
takes the one statement too, which writes nothing if a forget may refuse it
(``_one_shot``); then the locked transaction checks it exactly.
Readers read in keyset chunks on an autocommit connection, so no transaction
stays open between chunks. ``wait`` is woken by LISTEN/NOTIFY (``_wait``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import psycopg
from psycopg.pq import TransactionStatus

from events.codec import US, encode, record, type_name
from events.compaction import (
    Pacer,
    Pending,
    Running,
    Tally,
    announces,
    answer,
    finish_left,
    forgets,
)
from events.group_commit import Batch, GroupCommit
from events.model import AnyEvent, Compacted, Recorded
from events.postgres._commit_check import backoff, committed
from events.postgres._reader import POLL, Link, PostgresReader
from events.postgres._schema import connect, log_id, migrate, target
from events.protocol import (
    CompactReason,
    Guard,
    Keyed,
    LogError,
    LogUnavailable,
    Progress,
    Selection,
)

__all__ = ["PostgresLog", "PostgresReader"]

Synchronous = Literal["NORMAL", "FULL"]
_COPY_FROM = 16  # rows from which COPY's three round trips beat one INSERT ... SELECT unnest
_Row = tuple[int, int, AnyEvent, str | None, str]  # seq, ts, event, key, body
# A chunk's commit does not wait for its WAL to reach the disk (the marker's
# does, and the WAL is flushed in order: a marker on disk means every chunk
# before it is). A crash of the server before then may bring back events of the
# last chunks: a correct log all the same, no marker says they went, and the
# next compaction removes them. So a compaction of many chunks pays one flush,
# as one DELETE does, and not one per chunk.
_UNFLUSHED = "SET LOCAL synchronous_commit = off"
RETRY_FOR = 30.0  # seconds an append waits for a database that went away (None: until closed)
_log = logging.getLogger("wabot.log")


class _FinishedElsewhere(Exception):
    """Another process recorded the marker of the compaction this one was running."""


class PostgresLog(PostgresReader):
    """One named log in a PostgreSQL database, created if missing; safe to share between threads.

    ``synchronous="FULL"`` forces ``synchronous_commit = on`` for this log's
    writes; ``"NORMAL"`` keeps the server's setting (its administrator's call).
    ``busy_timeout`` bounds how long an append waits for another writer's lock.
    ``retry_for`` bounds how long it waits, with backoff, for a database that
    went away (``None``: until the log is closed); a commit whose answer was
    lost with the connection is looked for, never written twice (``_commit_check``).
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        schema: str | None = None,
        synchronous: Synchronous = "NORMAL",
        busy_timeout: float = 5.0,
        retry_for: float | None = RETRY_FOR,
        clock: Callable[[], float] = time.time,
        poll: float = POLL,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        where = target(url, schema)
        settings = {"lock_timeout": f"{max(1, round(busy_timeout * 1000))}ms"}
        if synchronous == "FULL":
            settings["synchronous_commit"] = "on"
        writer = connect(where, settings=settings)
        try:
            migrate(writer, where)
            found = log_id(writer, where, name, create=True)
            reader = connect(where)
        except BaseException:
            writer.close()
            raise
        self._setup(where, name, found, Link(reader, lambda: connect(where)), poll)
        self._writer = Link(writer, lambda: connect(where, settings=settings))
        self._clock = clock
        self._retry_for = retry_for
        self._closing = threading.Event()
        self._group = GroupCommit(
            self._commit_patiently,
            self._published,
            alone=lambda exc: isinstance(exc, LogUnavailable),
        )
        self._write_lock = self._group.lock
        self._listeners: list[Callable[[int], None]] = []
        self._running = Running()  # the compactions this process runs
        self.last_seq()

    # -- writing ---------------------------------------------------------

    def append(self, *items: AnyEvent | Keyed, guard: Guard | None = None) -> list[Recorded]:
        """Append a burst atomically; returns the events as recorded, in order.

        An item whose key is already in the log is not added again: its slot in
        the result holds the event recorded earlier under that key. ``guard``:
        checked once the counter is locked, ``Forgotten`` when it refuses.
        """
        return self._group.append(items, encode, guard) if items else []

    def _commit_patiently(self, group: list[Batch]) -> None:
        """Commit ``group``, waiting out a database that went away, never twice."""
        for batch in group:
            batch.ts = batch.ts or round(self._clock() * US)
        floor = self._last  # every seq this group can take is above it
        deadline = None if self._retry_for is None else time.monotonic() + self._retry_for
        pauses = backoff()
        failures = 0
        while True:
            try:
                with self._writer.use(self.where) as conn:
                    # A failed attempt may have committed before its connection went.
                    if failures and committed(conn, self._q, self._log, floor, group):
                        break
                    self._insert(conn, group)
                break
            except LogUnavailable as exc:
                failures += 1
                pause = next(pauses)
                late = deadline is not None and time.monotonic() + pause > deadline
                if late or self._closing.is_set():
                    raise
                if failures == 1:
                    _log.warning("event log unreachable, retrying with backoff: %s", exc)
                self._closing.wait(pause)
        if failures:
            _log.warning(
                "event log reachable again after %d tries: %s", failures + 1, self.where.where
            )

    def _insert(self, conn: psycopg.Connection[Any], group: list[Batch]) -> None:
        """Keys: the locked path. Guards: the one statement if nothing was forgotten lately
        (its pre-check), else the locked path, which decides exactly. Neither: one statement."""
        seens = [b.guard.seen for b in group if b.guard is not None]
        if any(key is not None for b in group for _, key, _ in b.rows):
            self._insert_keyed(conn, group)
        elif not seens:
            self._insert_plain(conn, group)
        elif not self._insert_plain(conn, group, min(seens)):
            self._insert_keyed(conn, group)

    def _insert_plain(
        self, conn: psycopg.Connection[Any], group: list[Batch], seen: int | None = None
    ) -> bool:
        """No keys: the numbers are the counter's next ones, contiguous in group order.

        ``seen``: the group's guards' earliest decision; False, nothing written, when
        the pre-check of ``_one_shot`` finds a forget that may refuse one (or the group
        is too large for one statement)."""
        stamps = [batch.ts for batch in group]
        flat = [(ts, e, body) for ts, b in zip(stamps, group, strict=True) for e, _, body in b.rows]
        if len(flat) < _COPY_FROM:
            seq = self._one_shot(conn, flat, seen)
            if seq is None:
                return False
        elif seen is None:
            seq = self._copy_plain(conn, flat)
        else:
            return False
        for ts, batch in zip(stamps, group, strict=True):
            batch.result = [
                Recorded(seq + i, ts / US, e) for i, (e, _, _) in enumerate(batch.rows, 1)
            ]
            seq += len(batch.rows)
        return True

    def _one_shot(
        self, conn: psycopg.Connection[Any], flat: list[tuple[int, AnyEvent, str]], seen: int | None
    ) -> int | None:
        """Few rows: one statement that is its own transaction (one round trip).

        With ``seen`` (guarded) the counter's UPDATE also requires that no forget
        announced itself at or after ``seen`` (``logs.forget_top``), that none is
        under way and that no marker came after ``seen``: None, nothing written,
        when one did (the caller then decides exactly). Why a forget cannot slip
        past, though the statement's snapshot is taken before it waits for the
        counter's lock and a forget may commit in between:
        - A forget of chats writes its ``top`` to ``forget_top`` in the one
          transaction that fixes it and adds its ``compactions`` row, holding the
          counter row's lock. READ COMMITTED evaluates this UPDATE's condition on
          the row's newest version once it holds the lock, so ``forget_top`` is
          that of every forget committed before this append takes its seq, even
          one the snapshot misses. A forget committed after has a ``top`` of at
          least this append's seq: it removes the append with the chat.
        - ``top`` >= ``seen``: ``forget_top`` >= ``seen``, the condition fails.
        - ``top`` < ``seen``: an append took a seq above ``top`` after the forget
          committed (seq order is commit order) and was read before this
          statement began, so the snapshot holds the forget's row or, once it is
          over, its marker (one transaction swaps them), which is above ``seen``
          unless the decision saw it.
        """
        when = {} if seen is None else {"seen": seen}
        if len(flat) == 1:
            ((ts, event, body),) = flat
            one = {"ts": ts, "type": type_name(event), "chat": event.chat, "body": body}
            query = self._q.append_one if seen is None else self._q.append_one_guarded
            args = {"log": self._log, "channel": self._channel, **one, **when}
        else:
            query = self._q.append if seen is None else self._q.append_guarded
            args = {
                "n": len(flat),
                "log": self._log,
                "ts": [ts for ts, _, _ in flat],
                "types": [type_name(e) for _, e, _ in flat],
                "chats": [e.chat for _, e, _ in flat],
                "bodies": [body for _, _, body in flat],
                "channel": self._channel,
                **when,
            }
        row = conn.execute(query, args).fetchone()
        return None if row is None and seen is not None else self._counted(row)

    def _counted(self, row: tuple[Any, ...] | None) -> int:
        """The counter value a statement returned; its log row is never deleted by wabot."""
        if row is None:
            raise LogError(f"{self.where.where}: log {self.name!r} vanished from {self._q.schema}")
        return int(row[0])

    def _copy_plain(
        self, conn: psycopg.Connection[Any], flat: list[tuple[int, AnyEvent, str]]
    ) -> int:
        """Many rows: COPY, which PostgreSQL writes a page at a time, not a row at a time.

        BEGIN travels with the counter's UPDATE, and the NOTIFY with COMMIT
        (simple-protocol statements carrying only integers and our own channel
        name), so the transaction costs the round trips of a bare COPY.
        """
        try:
            cur = conn.execute(self._q.begin_bump.format(n=len(flat), log=self._log).encode())
            base = self._counted(cur.fetchone() if cur.nextset() else None)
            self._copy(
                conn, [(base + i, ts, e, None, body) for i, (ts, e, body) in enumerate(flat, 1)]
            )
            conn.execute(self._q.notify_commit.format(channel=self._channel).encode())
        except BaseException:
            # A failed UPDATE (lock_timeout) or COPY leaves the transaction aborted:
            # end it, or every later statement on this connection would fail too.
            if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute(b"ROLLBACK")
            raise
        return base

    def _insert_keyed(self, conn: psycopg.Connection[Any], group: list[Batch]) -> None:
        """Lock the counter, then look the keys up and check the guards: nothing can be
        added meanwhile (each later statement reads what committed before the lock)."""
        with conn.transaction():
            seq = self._counted(conn.execute(self._q.lock, (self._log,)).fetchone())
            self._check_guards(conn, group)
            keys = [key for b in group for _, key, _ in b.rows if key is not None]
            known = (
                {
                    str(row[2]): record(row)
                    for row in conn.execute(self._q.by_keys, (self._log, keys)).fetchall()
                }
                if keys
                else {}
            )
            fresh: list[_Row] = []
            for batch in group:
                ts = batch.ts
                if batch.error is not None:
                    continue  # refused by its guard
                batch.result = []
                for event, key, body in batch.rows:
                    if key is not None and key in known:
                        batch.result.append(known[key])
                        continue
                    seq += 1
                    rec = Recorded(seq, ts / US, event, key)
                    if key is not None:
                        known[key] = rec
                    fresh.append((seq, ts, event, key, body))
                    batch.result.append(rec)
            if fresh:
                self._insert_rows(conn, fresh)
                conn.execute(self._q.advance, (seq, self._log))
                conn.execute(self._q.notify, (self._channel,))

    def _check_guards(self, conn: psycopg.Connection[Any], group: list[Batch]) -> None:
        """Refuse each batch whose guard a forget recorded or under way refuses."""
        seens = [b.guard.seen for b in group if b.guard is not None]
        if not seens:
            return
        args = {"log": self._log, "seen": min(seens)}
        rows = conn.execute(self._q.forgets, args).fetchall()
        under_way = [Pending.decode(str(row[3])) for row in rows if row[0] == 0]
        markers = [(r.seq, r.event) for r in (record(row) for row in rows if row[0])]
        for batch in group:
            if batch.guard is None:
                continue
            seen = batch.guard.seen
            after = [e for seq, e in markers if seq > seen and isinstance(e, Compacted)]
            if forgets(batch.guard, after, under_way):
                batch.refuse()

    def _insert_rows(self, conn: psycopg.Connection[Any], rows: list[_Row]) -> None:
        if len(rows) >= _COPY_FROM:
            self._copy(conn, rows)
            return
        conn.execute(
            self._q.insert,
            {
                "log": self._log,
                "seqs": [seq for seq, *_ in rows],
                "ts": [ts for _, ts, *_ in rows],
                "types": [type_name(e) for _, _, e, _, _ in rows],
                "chats": [e.chat for _, _, e, _, _ in rows],
                "keys": [key for *_, key, _ in rows],
                "bodies": [body for *_, body in rows],
            },
        )

    def _copy(self, conn: psycopg.Connection[Any], rows: list[_Row]) -> None:
        log = self._log
        with conn.cursor().copy(self._q.copy) as copy:
            for seq, ts, event, key, body in rows:
                copy.write_row((log, seq, ts, type_name(event), event.chat, key, body))

    def _published(self, seq: int) -> None:
        last = self._heard(seq)
        for listener in list(self._listeners):
            listener(last)

    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(last_seq)`` after every commit of this process, from its thread."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    # -- compaction and snapshots ---------------------------------------

    def compact(
        self, reason: CompactReason, selection: Selection, *, progress: Progress | None = None
    ) -> Recorded | None:
        """Delete the selected events in short transactions, then record one ``Compacted``.

        Deletes lock only the rows they delete, never the counter row, so
        appends go on meanwhile and readers see what is left, in order. Each
        chunk is the next range of positions (sized by ``Pacer``), so it never
        walks over the rows earlier chunks left dead for VACUUM. Each chunk's
        transaction adds what it removed to the compaction's row of
        ``compactions``, and the marker's turns that row into the event: a
        failure between (a full disk, a crash, a lost connection) leaves the
        row, and the next compaction or start finishes it
        (``finish_compactions``, run first). Only the marker's commit waits
        for the disk (``_UNFLUSHED``). It also drops the snapshots folded
        before the marker.
        """
        finished = self._finish_left()
        pending = Pending.start(reason, selection, self.last_seq())
        pending_id = self._announce(pending) if announces(reason, selection) else None
        own = self._compact(pending, pending_id, progress)
        return answer(own, finished, reason, selection)

    def _announce(self, pending: Pending) -> int:
        """Add the compaction's row before anything goes, its ``top`` read with the counter
        locked (``announces``): an append commits before, or sees the row. Drops the
        snapshots, as a first chunk would."""
        with self._writer.use(self.where) as conn, conn.transaction():
            pending.top = self._counted(conn.execute(self._q.announce, (self._log,)).fetchone())
            row = conn.execute(self._q.pending_add, (self._log, pending.encode())).fetchone()
            assert row is not None
            conn.execute(self._q.drop_snapshots, (self._log,))
        return int(row[0])

    def finish_compactions(self) -> list[Recorded]:
        """Finish each compaction of this log a failure left in ``compactions``; their markers."""
        return [recorded for _, recorded in self._finish_left()]

    def _finish_left(self) -> list[tuple[Pending, Recorded]]:
        with self._writer.use(self.where) as conn:
            rows = conn.execute(self._q.pending, (self._log,)).fetchall()
        return finish_left(
            [(int(row_id), str(state)) for row_id, state in rows], self._running, self._compact
        )

    def _compact(
        self, pending: Pending, pending_id: int | None, progress: Progress | None
    ) -> Recorded | None:
        """Run ``pending`` (from its ``upto``) to its marker; the marker, None if none."""
        if pending_id is not None:
            self._running.add(pending_id)
        ran = pending_id
        try:
            pacer, tally = Pacer(), Tally(progress)
            first = self._fetch(self._q.read, (self._log, pending.upto, 1))
            # Earlier compactions left a gap (or this one, before it failed).
            after = int(first[0][0]) - 1 if first else pending.top
            while after < pending.top:
                upto = min(pending.top, after + pacer.size)
                sql, args = self._q.delete(self._log, pending.selection, after, upto)
                try:
                    with self._writer.use(self.where) as conn:
                        started = time.perf_counter()
                        with conn.transaction():
                            conn.execute(_UNFLUSHED)
                            # (type, chat, count, highest seq) come back as str, str, int, int.
                            groups: list[tuple[str, str, int, int]] = conn.execute(
                                sql, args
                            ).fetchall()
                            if groups:
                                pending_id = self._note(conn, pending, pending_id, groups, upto)
                                ran = pending_id
                        held = time.perf_counter() - started
                except _FinishedElsewhere:
                    break
                if groups:
                    tally.add_counted(groups, held)
                pacer.took(upto - after, held)
                after = upto
            if pending_id is None:
                return None  # nothing went
            with self._writer.use(self.where) as conn:
                recorded = self._record_marker(conn, pending_id, pending)
            if recorded is not None:
                self._published(recorded.seq)
            return recorded
        finally:
            if ran is not None:
                self._running.discard([ran])

    def _note(
        self,
        conn: psycopg.Connection[Any],
        pending: Pending,
        pending_id: int | None,
        groups: list[tuple[str, str, int, int]],
        upto: int,
    ) -> int:
        """Add ``groups`` to the compaction's row in the chunk's transaction; its id.

        The first adds the row and drops the snapshots (folded before, they may
        hold what goes; none is stored until the marker is). Later ones lock it
        and add to it as stored: another process may be finishing it too.
        """
        if pending_id is None:
            pending.add_counted(groups, upto)
            row = conn.execute(self._q.pending_add, (self._log, pending.encode())).fetchone()
            assert row is not None
            added = int(row[0])
            self._running.add(added)
            conn.execute(self._q.drop_snapshots, (self._log,))
            return added
        row = conn.execute(self._q.pending_lock, (pending_id,)).fetchone()
        if row is None:
            raise _FinishedElsewhere
        stored = Pending.decode(row[0])
        stored.add_counted(groups, upto)
        conn.execute(self._q.pending_set, (stored.encode(), pending_id))
        return pending_id

    def _record_marker(
        self, conn: psycopg.Connection[Any], pending_id: int, pending: Pending
    ) -> Recorded | None:
        """In one transaction: the marker recorded, the compaction's row removed, the
        snapshots folded before dropped. Finished by another process already: its marker."""
        with conn.transaction():
            row = conn.execute(self._q.pending_lock, (pending_id,)).fetchone()
            if row is None:
                found = conn.execute(self._q.by_keys, (self._log, [pending.key])).fetchall()
                return record(found[0]) if found else None
            stored = Pending.decode(row[0])
            conn.execute(self._q.pending_done, (pending_id,))
            marker = stored.marker()
            if marker is None:
                return None
            seq = self._counted(conn.execute(self._q.lock, (self._log,)).fetchone()) + 1
            ts = round(self._clock() * US)
            conn.execute(
                self._q.insert_one,
                (self._log, seq, ts, type_name(marker), marker.chat, stored.key, encode(marker)),
            )
            conn.execute(self._q.advance, (seq, self._log))
            conn.execute(self._q.notify, (self._channel,))
            conn.execute(self._q.drop_snapshots_before, (self._log, seq))
        return Recorded(seq, ts / US, marker, stored.key)

    def save_snapshot(self, name: str, version: int, seq: int, state: bytes) -> None:
        """Store a projection cache; snapshots are not facts and may be dropped."""
        row = {"log": self._log, "name": name, "version": version, "seq": seq, "state": state}
        with self._writer.use(self.where) as conn:
            conn.execute(self._q.save_snapshot, row)

    def purge(self) -> None:
        """Drop this log's snapshots and VACUUM: dead rows' space is freed for reuse.

        PostgreSQL does not zero what VACUUM frees: removed bytes may stay in the
        table files until new rows overwrite them, and in its WAL until recycled.
        """
        with self._writer.use(self.where) as conn:
            conn.execute(self._q.drop_snapshots, (self._log,))
            conn.execute(self._q.vacuum)

    def close(self) -> None:
        self._closing.set()  # an append waiting for the database gives up
        super().close()
        self._writer.close()
