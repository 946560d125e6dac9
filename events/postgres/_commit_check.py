"""After a lost connection: did the append's transaction commit before the connection went?

A commit whose acknowledgement is lost in a dropped connection may or may not
have happened, and appending again blindly could write the same events twice
(a ``ReplySent`` twice, an ``LlmRequested`` twice). Each batch is stamped once,
before its first attempt, and keeps that stamp across attempts; so after a
failure its rows are looked for by (stamp, body) above the highest seq known
before the attempt. Found: the transaction committed, and its results are
rebuilt from the rows. Not found: it did not, and it is tried again. Keyed
events whose key was in the log already are answered by key, as a fresh
append would answer them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import psycopg

from events.codec import US, Row, record
from events.group_commit import Batch
from events.model import Recorded
from events.postgres._sql import Queries
from events.protocol import LogError


def committed(
    conn: psycopg.Connection[Any], q: Queries, log: int, floor: int, group: list[Batch]
) -> bool:
    """Whether ``group`` was committed (then its batches' results are filled in)."""
    stamps = sorted({b.ts for b in group})
    pool: dict[tuple[int, str], deque[Row]] = {}
    for row in conn.execute(q.stamped, (log, floor, stamps)).fetchall():
        pool.setdefault((int(row[1]), str(row[3])), deque()).append(row)
    slots: list[list[Recorded | None]] = []
    found = False
    for batch in group:
        mine: list[Recorded | None] = []
        for event, key, body in batch.rows:
            same = pool.get((batch.ts, body))
            if same:
                row = same.popleft()
                found = True
                mine.append(Recorded(int(row[0]), batch.ts / US, event, key))
            else:
                mine.append(None)
        slots.append(mine)
    if not found:
        return False
    earlier = [
        key
        for b, mine in zip(group, slots, strict=True)
        for (_, key, _), r in zip(b.rows, mine, strict=True)
        if r is None and key is not None
    ]
    rows = conn.execute(q.by_keys, (log, earlier)).fetchall() if earlier else []
    known = {str(row[2]): record(row) for row in rows}
    for batch, mine in zip(group, slots, strict=True):
        if batch.guard is not None and not any(mine):
            batch.refuse()  # the group committed without it: its guard refused it
            continue
        result = []
        for (_, key, _), found_rec in zip(batch.rows, mine, strict=True):
            rec = found_rec if found_rec is not None else known.get(key or "")
            if rec is None:
                raise LogError(
                    "an append's outcome was lost with the connection and cannot be told"
                )
            result.append(rec)
        batch.result = result
    return True


def backoff() -> Iterator[float]:
    """Pauses between attempts while the database is away: short at first, then every 2 s."""
    yield from (0.05, 0.1, 0.2, 0.5, 1.0)
    while True:
        yield 2.0
