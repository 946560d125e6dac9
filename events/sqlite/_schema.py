"""The events table as SQLite holds it: the schema, the statements, rows read back as events.

Shared by the read-write and the read-only SQLite log. The table is readable
with the ``sqlite3`` shell and its JSON functions alone (``timeline`` view).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import msgspec

from events.codec import US, Row, record
from events.model import Recorded
from events.protocol import Selection

_READ_CHUNK = 2000

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    ts   INTEGER NOT NULL,              -- UTC microseconds since the epoch
    type TEXT NOT NULL,
    chat TEXT NOT NULL DEFAULT '',
    key  TEXT UNIQUE,                   -- idempotency key, e.g. chat/msg_id
    body TEXT NOT NULL                  -- msgspec JSON of the event
);
CREATE INDEX IF NOT EXISTS events_by_chat ON events(chat, seq);
CREATE INDEX IF NOT EXISTS events_by_media ON events(json_extract(body, '$.media.sha256'))
    WHERE type = 'MessageReceived' AND instr(body, '"media":{') > 0;
CREATE INDEX IF NOT EXISTS events_by_fetched_media
    ON events(json_extract(body, '$.media.sha256')) WHERE type = 'MediaFetched';
CREATE INDEX IF NOT EXISTS events_by_speech
    ON events(json_extract(body, '$.sha256')) WHERE type = 'SpeechSynthesized';
CREATE TABLE IF NOT EXISTS snapshots (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    state   BLOB NOT NULL
);
-- A compaction under way: what it removes and what went so far (events.compaction.Pending
-- as JSON), written with its chunks' deletes and removed with its marker's insert.
-- Created by the first open of a store of an older version, as every table here.
CREATE TABLE IF NOT EXISTS compactions (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL
);
CREATE VIEW IF NOT EXISTS timeline AS
    SELECT seq, strftime('%Y-%m-%dT%H:%M:%fZ', ts / 1e6, 'unixepoch') AS at,
           type, chat, key, body
    FROM events;
"""


def connect(path: Path, synchronous: str, busy_timeout: float = 5.0) -> sqlite3.Connection:
    """A read-write connection to the log's file, with what every one of them needs:
    WAL, ``synchronous`` as configured, SQLite's busy handler for ``busy_timeout``
    seconds, and ``secure_delete``: what a delete frees (compaction, forget, a
    replaced snapshot) is zeroed, not left readable in free pages (SQLite's own
    default is off outside Debian). Raises ``sqlite3.Error``."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
    )
    try:
        for pragma in (
            "journal_mode=WAL",
            f"synchronous={synchronous}",
            f"busy_timeout={int(busy_timeout * 1000)}",
            "secure_delete=ON",
        ):
            conn.execute(f"PRAGMA {pragma}")
    except BaseException:
        conn.close()
        raise
    return conn


INSERT = "INSERT INTO events (ts, type, chat, key, body) VALUES (?, ?, ?, ?, ?)"
BY_KEY = "SELECT seq, ts, key, body FROM events WHERE key = ?"
# The markers a guarded append checks: those recorded after its decision (a short tail).
MARKERS_AFTER = "SELECT seq, ts, key, body FROM events WHERE seq > ? AND type = 'Compacted'"
# Whether those are worth reading at all: any marker after the decision or any compaction
# under way (rare: forgets come a few a day at most). Nothing is decoded; the rowid range.
COMPACTED_SINCE = (
    "SELECT EXISTS (SELECT 1 FROM events WHERE seq > ? AND type = 'Compacted')"
    " OR EXISTS (SELECT 1 FROM compactions)"
)
SEQUENCE = (
    "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
    " coalesce((SELECT max(seq) FROM events), 0))"
)
SNAPSHOT = "SELECT seq, state FROM snapshots WHERE name = ? AND version = ?"
# Each part says what its partial index says, so those indexes (messages with
# media, media fetched after their message, spoken replies' audio) answer it.
MEDIA = (
    "SELECT json_extract(body, '$.media.sha256') FROM events"
    " WHERE type = 'MessageReceived' AND instr(body, '\"media\":{') > 0"
    " AND json_extract(body, '$.media.sha256') > ''"
    " UNION SELECT json_extract(body, '$.media.sha256') FROM events"
    " WHERE type = 'MediaFetched' AND json_extract(body, '$.media.sha256') > ''"
    " UNION SELECT json_extract(body, '$.sha256') FROM events"
    " WHERE type = 'SpeechSynthesized'"
)
# Not stored when a compaction was recorded after its seq, nor while one is under way:
# it may hold what went.
SAVE_SNAPSHOT = (
    "INSERT OR REPLACE INTO snapshots (name, version, seq, state) SELECT ?, ?, ?, ?"
    " WHERE NOT EXISTS (SELECT 1 FROM events WHERE seq > ? AND type = 'Compacted')"
    " AND NOT EXISTS (SELECT 1 FROM compactions)"
)
# Once a compaction's marker is recorded at seq ?: the snapshots folded before it may
# hold what it removed (SAVE_SNAPSHOT stores none of them from then on).
DROP_SNAPSHOTS_BEFORE = "DELETE FROM snapshots WHERE seq < ?"
DROP_SNAPSHOTS = "DELETE FROM snapshots"
# The compactions under way (``events.compaction.Pending``).
PENDING = "SELECT id, state FROM compactions ORDER BY id"
PENDING_ONE = "SELECT state FROM compactions WHERE id = ?"
PENDING_ADD = "INSERT INTO compactions (state) VALUES (?)"
PENDING_SET = "UPDATE compactions SET state = ? WHERE id = ?"
PENDING_DONE = "DELETE FROM compactions WHERE id = ?"


@contextlib.contextmanager
def busy_timeout(conn: sqlite3.Connection, seconds: float, then: float) -> Iterator[None]:
    """SQLite's busy handler on ``conn`` waits ``seconds`` at most inside, ``then`` after."""
    conn.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA busy_timeout={int(then * 1000)}")


def sequence(cur: sqlite3.Cursor) -> int:
    return int(cur.execute(SEQUENCE).fetchone()[0])


def where(selection: Selection) -> tuple[str, tuple[object, ...]]:
    """The SQL condition for ``selection``; sets travel as one JSON array each."""
    parts = ["type != 'Compacted'"]
    args: list[object] = []
    if selection.chats is not None:
        parts.append("chat IN (SELECT value FROM json_each(?))")
        args.append(msgspec.json.encode(sorted(selection.chats)).decode())
    if selection.older_than is not None:
        parts.append("ts < ?")
        args.append(round(selection.older_than * US))
    if selection.seqs is not None:
        parts.append("seq IN (SELECT value FROM json_each(?))")
        args.append(msgspec.json.encode(sorted(selection.seqs)).decode())
    if selection.keep:
        parts.append("seq NOT IN (SELECT value FROM json_each(?))")
        args.append(msgspec.json.encode(sorted(selection.keep)).decode())
    return " AND ".join(parts), tuple(args)


def scan(
    fetch: Callable[[str, tuple[object, ...]], list[Row]],
    after: int = 0,
    *,
    chats: Collection[str] | None = None,
    limit: int | None = None,
) -> Iterator[Recorded]:
    """Rows of an events table with ``seq > after`` (of ``chats`` if given), in log order.

    Reads in bounded chunks by keyset, so a reader never holds a long
    transaction that would stop WAL checkpoints. ``fetch(sql, args)`` runs one
    query on whatever connection the caller owns.
    """
    where = "seq > ?"
    chosen = tuple(chats) if chats is not None else ()
    if chats is not None:
        where += f" AND chat IN ({', '.join('?' * len(chosen))})"
    remaining = limit
    while remaining is None or remaining > 0:
        size = _READ_CHUNK if remaining is None else min(_READ_CHUNK, remaining)
        rows = fetch(
            f"SELECT seq, ts, key, body FROM events WHERE {where} ORDER BY seq LIMIT ?",
            (after, *chosen, size),
        )
        for row in rows:
            yield record(row)
        if len(rows) < size:
            return
        after = rows[-1][0]
        if remaining is not None:
            remaining -= len(rows)
