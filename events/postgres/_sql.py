"""The SQL of the PostgreSQL log, one schema's worth, and the rows it returns as events.

Every statement names the log (``log_id``), so many logs share the tables.
Arrays travel as binary parameters (``%b``): a JSON body in a text array
literal would be escaped on the way in and parsed again on the server.
"""

from __future__ import annotations

from events.codec import US
from events.protocol import Selection

# The fast path: one statement, one round trip, its own transaction (autocommit).
# The UPDATE takes the log's counter row lock, held until commit: writers of
# one log commit in seq order. It also yields the first seq of the group.
_APPEND = """
    WITH counter AS (
        UPDATE {s}.logs SET last_seq = last_seq + %(n)s WHERE id = %(log)s{when}
        RETURNING last_seq - %(n)s AS base
    ), added AS (
        INSERT INTO {s}.events (log_id, seq, ts, type, chat, body)
        SELECT %(log)s, counter.base + r.ord, r.ts, r.type, r.chat, r.body::json
        FROM counter, unnest(%(ts)b::bigint[], %(types)b::text[], %(chats)b::text[],
                             %(bodies)b::text[]) WITH ORDINALITY AS r(ts, type, chat, body, ord)
    )
    SELECT base, pg_notify(%(channel)s, '') FROM counter
"""
# The same for one event, with scalar parameters: no arrays to build or unnest.
_APPEND_ONE = """
    WITH counter AS (
        UPDATE {s}.logs SET last_seq = last_seq + 1 WHERE id = %(log)s{when} RETURNING last_seq
    ), added AS (
        INSERT INTO {s}.events (log_id, seq, ts, type, chat, body)
        SELECT %(log)s, counter.last_seq, %(ts)s, %(type)s, %(chat)s, %(body)s::json
        FROM counter
    )
    SELECT last_seq - 1, pg_notify(%(channel)s, '') FROM counter
"""
# A guarded append's fast path (``PostgresLog._one_shot``, which says why this is
# enough): no forget announced at or after its decision, read on the counter row it
# updates; no compaction under way and no marker since its decision, read in the
# statement's snapshot (the primary key's range ``seq > seen``: a short tail).
# When one is found nothing is written and no row comes back: the client decides
# exactly, counter locked (``forgets``).
_UNFORGOTTEN = """
          AND forget_top < %(seen)s
          AND NOT EXISTS (SELECT 1 FROM {s}.events
                          WHERE log_id = %(log)s AND seq > %(seen)s AND type = 'Compacted')
          AND NOT EXISTS (SELECT 1 FROM {s}.compactions WHERE log_id = %(log)s)"""

_TEMPLATES = {
    "append": _APPEND.replace("{when}", ""),
    "append_one": _APPEND_ONE.replace("{when}", ""),
    "append_guarded": _APPEND.replace("{when}", _UNFORGOTTEN),
    "append_one_guarded": _APPEND_ONE.replace("{when}", _UNFORGOTTEN),
    # The keyed path locks the counter first, in its own statement, so the key
    # look-up that follows sees every key committed before the lock was granted.
    "lock": "SELECT last_seq FROM {s}.logs WHERE id = %s FOR NO KEY UPDATE",
    "by_keys": (
        "SELECT seq, ts, key, body::text FROM {s}.events WHERE log_id = %s AND key = ANY(%b)"
    ),
    # What a guarded append checks, in one round trip: the markers recorded after its
    # decision (a short tail; ``seq`` > 0) and the compactions under way (``seq`` 0).
    "forgets": (
        "SELECT seq, ts, key, body::text FROM {s}.events"
        " WHERE log_id = %(log)s AND seq > %(seen)s AND type = 'Compacted'"
        " UNION ALL SELECT 0, 0, NULL, state::text FROM {s}.compactions WHERE log_id = %(log)s"
    ),
    # After a lost connection: the rows of a group stamped ``ts``, if it committed.
    "stamped": (
        "SELECT seq, ts, key, body::text FROM {s}.events"
        " WHERE log_id = %s AND seq > %s AND ts = ANY(%s) ORDER BY seq"
    ),
    "insert": """
        INSERT INTO {s}.events (log_id, seq, ts, type, chat, key, body)
        SELECT %(log)s, r.seq, r.ts, r.type, r.chat, r.key, r.body::json
        FROM unnest(%(seqs)b::bigint[], %(ts)b::bigint[], %(types)b::text[], %(chats)b::text[],
                    %(keys)b::text[], %(bodies)b::text[]) AS r(seq, ts, type, chat, key, body)
    """,
    # The COPY path's two statements around its COPY, sent as simple queries
    # (several statements, one round trip); {n}, {log} are integers, {channel} ours.
    "begin_bump": (
        "BEGIN; UPDATE {s}.logs SET last_seq = last_seq + {{n}} WHERE id = {{log}}"
        " RETURNING last_seq - {{n}}"
    ),
    "notify_commit": "SELECT pg_notify('{{channel}}', ''); COMMIT",
    "copy": "COPY {s}.events (log_id, seq, ts, type, chat, key, body) FROM STDIN",
    "advance": "UPDATE {s}.logs SET last_seq = %s WHERE id = %s",
    "notify": "SELECT pg_notify(%s, '')",
    "last_seq": "SELECT last_seq FROM {s}.logs WHERE id = %s",
    "read": (
        "SELECT seq, ts, key, body::text FROM {s}.events WHERE log_id = %s AND seq > %s"
        " ORDER BY seq LIMIT %s"
    ),
    "read_chats": (
        "SELECT seq, ts, key, body::text FROM {s}.events"
        " WHERE log_id = %s AND seq > %s AND chat = ANY(%s) ORDER BY seq LIMIT %s"
    ),
    # A loose index scan over (log_id, chat, seq): one index probe per chat
    # instead of reading every event of the log.
    "chats": """
        WITH RECURSIVE c AS (
            (SELECT chat FROM {s}.events WHERE log_id = %(log)s AND chat > '' ORDER BY chat LIMIT 1)
            UNION ALL
            SELECT (SELECT e.chat FROM {s}.events e
                    WHERE e.log_id = %(log)s AND e.chat > c.chat ORDER BY e.chat LIMIT 1)
            FROM c WHERE c.chat IS NOT NULL
        )
        SELECT chat FROM c WHERE chat IS NOT NULL
    """,
    # No index: the text test skips the JSON parse of every message without media.
    "media": (
        "SELECT body->'media'->>'sha256' FROM {s}.events WHERE log_id = %(log)s"
        " AND type = 'MessageReceived' AND strpos(body::text, '\"media\":{{') > 0"
        " AND body->'media'->>'sha256' > ''"
        " UNION SELECT body->'media'->>'sha256' FROM {s}.events WHERE log_id = %(log)s"
        " AND type = 'MediaFetched' AND body->'media'->>'sha256' > ''"
        " UNION SELECT body->>'sha256' FROM {s}.events WHERE log_id = %(log)s"
        " AND type = 'SpeechSynthesized'"
    ),
    # Not stored when a compaction was recorded after its seq, nor while one is under
    # way: it may hold what went.
    "save_snapshot": """
        INSERT INTO {s}.snapshots (log_id, name, version, seq, state)
        SELECT %(log)s, %(name)s, %(version)s, %(seq)s, %(state)s
        WHERE NOT EXISTS (SELECT 1 FROM {s}.events
                          WHERE log_id = %(log)s AND seq > %(seq)s AND type = 'Compacted')
          AND NOT EXISTS (SELECT 1 FROM {s}.compactions WHERE log_id = %(log)s)
        ON CONFLICT (log_id, name)
        DO UPDATE SET version = EXCLUDED.version, seq = EXCLUDED.seq, state = EXCLUDED.state
    """,
    "load_snapshot": (
        "SELECT seq, state FROM {s}.snapshots WHERE log_id = %s AND name = %s AND version = %s"
    ),
    "drop_snapshots": "DELETE FROM {s}.snapshots WHERE log_id = %s",
    # Once a compaction's marker is recorded: those folded before it may hold what went.
    "drop_snapshots_before": "DELETE FROM {s}.snapshots WHERE log_id = %s AND seq < %s",
    # The compactions under way (``events.compaction.Pending``). A chunk locks its
    # row after its delete, the marker's transaction before the counter.
    "pending": "SELECT id, state::text FROM {s}.compactions WHERE log_id = %s ORDER BY id",
    "pending_lock": "SELECT state::text FROM {s}.compactions WHERE id = %s FOR UPDATE",
    # A forget of chats announcing itself: its ``top``, on the counter row (``_UNFORGOTTEN``).
    "announce": ("UPDATE {s}.logs SET forget_top = last_seq WHERE id = %s RETURNING last_seq"),
    "pending_add": (
        "INSERT INTO {s}.compactions (log_id, state) VALUES (%s, %s::json) RETURNING id"
    ),
    "pending_set": "UPDATE {s}.compactions SET state = %s::json WHERE id = %s",
    "pending_done": "DELETE FROM {s}.compactions WHERE id = %s",
    "insert_one": (
        "INSERT INTO {s}.events (log_id, seq, ts, type, chat, key, body)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s::json)"
    ),
    # Dead rows keep their bytes until VACUUM; it needs no lock appends wait for.
    "vacuum": "VACUUM {s}.events, {s}.snapshots",
    "size": (
        "SELECT pg_total_relation_size('{s}.events') + pg_total_relation_size('{s}.snapshots')"
        " + pg_total_relation_size('{s}.logs')"
    ),
}


class Queries:
    """The statements above with the schema filled in (it was checked to be an identifier)."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        sql = {name: text.format(s=schema) for name, text in _TEMPLATES.items()}
        self.append = sql["append"]
        self.append_one = sql["append_one"]
        self.append_guarded = sql["append_guarded"]
        self.append_one_guarded = sql["append_one_guarded"]
        self.lock = sql["lock"]
        self.by_keys = sql["by_keys"]
        self.stamped = sql["stamped"]
        self.forgets = sql["forgets"]
        self.insert = sql["insert"]
        self.begin_bump = sql["begin_bump"]
        self.notify_commit = sql["notify_commit"]
        self.copy = sql["copy"]
        self.advance = sql["advance"]
        self.notify = sql["notify"]
        self.last_seq = sql["last_seq"]
        self.read = sql["read"]
        self.read_chats = sql["read_chats"]
        self.chats = sql["chats"]
        self.media = sql["media"]
        self.save_snapshot = sql["save_snapshot"]
        self.load_snapshot = sql["load_snapshot"]
        self.drop_snapshots = sql["drop_snapshots"]
        self.drop_snapshots_before = sql["drop_snapshots_before"]
        self.vacuum = sql["vacuum"]
        self.pending = sql["pending"]
        self.pending_lock = sql["pending_lock"]
        self.pending_add = sql["pending_add"]
        self.announce = sql["announce"]
        self.pending_set = sql["pending_set"]
        self.pending_done = sql["pending_done"]
        self.insert_one = sql["insert_one"]
        self.size = sql["size"]

    def delete(
        self, log: int, selection: Selection, after: int, upto: int
    ) -> tuple[str, tuple[object, ...]]:
        """One chunk of a compaction: the selected events among positions ``(after, upto]``.

        A range of the primary key, not "the first N selected": with ``LIMIT``
        PostgreSQL may sort a scan of the whole log for every chunk. What went
        comes back counted by ``(type, chat)`` with the highest seq of each,
        all the marker needs: the rows themselves (every event, when all expired)
        never travel to the client to be counted in Python.
        """
        condition, args = where(selection)
        return (
            f"WITH gone AS (DELETE FROM {self.schema}.events"
            f" WHERE log_id = %s AND seq > %s AND seq <= %s AND {condition}"
            " RETURNING seq, type, chat)"
            " SELECT type, chat, count(*), max(seq) FROM gone GROUP BY type, chat",
            (log, after, upto, *args),
        )


def where(selection: Selection) -> tuple[str, tuple[object, ...]]:
    """The SQL condition for ``selection``; sets travel as one array parameter each."""
    parts = ["type <> 'Compacted'"]
    args: list[object] = []
    if selection.chats is not None:
        parts.append("chat = ANY(%s::text[])")
        args.append(sorted(selection.chats))
    if selection.older_than is not None:
        parts.append("ts < %s")
        args.append(round(selection.older_than * US))
    if selection.seqs is not None:
        parts.append("seq = ANY(%s::bigint[])")
        args.append(sorted(selection.seqs))
    if selection.keep:
        parts.append("seq <> ALL(%s::bigint[])")
        args.append(sorted(selection.keep))
    return " AND ".join(parts), tuple(args)
