"""The PostgreSQL logs bound to the backend-independent contracts, plus their own specifics.

Needs a server: ``WABOT_TEST_PG_DSN`` (default postgres@127.0.0.1:5432/test).
Without one the module is skipped, unless ``WABOT_REQUIRE_PG=1`` (CI) makes
that a failure. Everything is created in one schema per run, dropped after.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from events import MessageReceived
from events.backends import open_log, open_reader
from events.postgres import PostgresLog, PostgresReader
from events.postgres._schema import SCHEMA_VERSION
from events.protocol import (
    Forgotten,
    Guard,
    Keyed,
    LogError,
    LogReader,
    LogWriter,
    NoLog,
    Selection,
)
from events.sqlite import SQLiteLog, SQLiteReader
from events.testing import DurableLogContract, FakeClock, ReaderContract, compacted, message
from tests.pg_support import (
    DSN,
    SCHEMA_ENV,
    admin,
    log_name,
    module_schema,  # noqa: F401  (autouse: the module's own schema)
    pg_reader,
    require_server,
    schema_url,
)

require_server()


@pytest.fixture
def fresh_schema() -> Iterator[str]:
    """A second schema that nothing has created yet, dropped after the test."""
    name = f"wabot_test_{os.getpid()}_{secrets.token_hex(4)}"
    yield name
    with admin() as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


class TestPostgresLog(DurableLogContract):
    factory = "tests.pg_support:pg_log"

    @contextlib.contextmanager
    def markers_refused(self, path: Path) -> Iterator[None]:
        """The server's own disk_full (SQLSTATE 53100), raised by a trigger on the
        marker's insert into this test's log."""
        s, name = os.environ[SCHEMA_ENV], log_name(path)
        with admin() as conn:
            row = conn.execute(f"SELECT id FROM {s}.logs WHERE name = %s", (name,)).fetchone()
            assert row is not None
            conn.execute(
                f"CREATE FUNCTION {s}.disk_full() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN RAISE EXCEPTION USING ERRCODE = 'disk_full',"
                " MESSAGE = 'could not extend file: No space left on device'; END $$"
            )
            conn.execute(
                f"CREATE TRIGGER disk_full BEFORE INSERT ON {s}.events FOR EACH ROW"
                f" WHEN (NEW.type = 'Compacted' AND NEW.log_id = {int(row[0])})"
                f" EXECUTE FUNCTION {s}.disk_full()"
            )
            try:
                yield
            finally:
                conn.execute(f"DROP TRIGGER disk_full ON {s}.events")
                conn.execute(f"DROP FUNCTION {s}.disk_full()")

    def check_integrity(self, path: Path) -> None:
        """The counter is ahead of every stored seq, so no number is handed out twice."""
        s = os.environ[SCHEMA_ENV]
        with admin() as conn:
            row = conn.execute(
                f"SELECT l.last_seq, max(e.seq) FROM {s}.logs l JOIN {s}.events e"
                " ON e.log_id = l.id WHERE l.name = %s GROUP BY l.last_seq",
                (log_name(path),),
            ).fetchone()
        assert row is not None
        assert row[0] >= row[1]


class TestPostgresReader(ReaderContract):
    """The read-only log reads what the read-write one wrote, on its own connection."""

    factory = "tests.pg_support:pg_log"

    def reader(self, log: LogWriter, path: Path) -> LogReader:
        return pg_reader(path)


def _until(check: Any, what: str, timeout: float = 30.0) -> None:
    """Await a condition another connection brings about (no fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _waiting_on_lock(schema: str, count: int = 1) -> bool:
    """Whether ``count`` statements on ``schema.logs`` (a counter) wait for a lock."""
    with admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE %s",
            (f"%{schema}.logs%",),
        ).fetchone()
    return bool(row and row[0] >= count)


def test_logs_of_several_numbers_share_the_tables_and_nothing_else(schema: str) -> None:
    a = PostgresLog(DSN, name="491700000001", schema=schema)
    b = PostgresLog(schema_url(schema), name="491700000002")
    try:
        a.append(Keyed(message(1, chat="1@s.whatsapp.net"), "k1"), message(2))
        b.append(Keyed(message(9, chat="9@s.whatsapp.net"), "k1"))
        assert [r.seq for r in a.read()] == [1, 2]
        assert [(r.seq, r.key) for r in b.read()] == [(1, "k1")]  # the same key, another log
        assert b.chats() == {"9@s.whatsapp.net"}
        a.save_snapshot("projections", 1, 2, b"a's")
        assert b.load_snapshot("projections", 1) is None
        assert compacted(b.compact("forget", Selection())).removed == 1
        assert [r.seq for r in a.read()] == [1, 2]
        assert b.append(message(3))[0].seq == 3  # b's counter, untouched by a's appends
    finally:
        a.close()
        b.close()


def test_an_append_waits_for_a_late_commit_and_a_reader_never_passes_it(
    tmp_path: Path, schema: str
) -> None:
    log = PostgresLog(DSN, name=log_name(tmp_path), schema=schema)
    follower = PostgresReader(DSN, name=log_name(tmp_path), schema=schema)
    log.append(message(0))
    appended: list[int] = []
    appender = threading.Thread(
        target=lambda: appended.extend(r.seq for r in log.append(message(2)))
    )
    try:
        with admin() as late, late.transaction():
            # Another writer took seq 2 and has not committed yet.
            late.execute(
                f"WITH c AS (UPDATE {schema}.logs SET last_seq = last_seq + 1 WHERE name = %s"
                " RETURNING id, last_seq)"
                f" INSERT INTO {schema}.events (log_id, seq, ts, type, body)"
                " SELECT id, last_seq, 0, 'TransportStatus',"
                """ '{"type":"TransportStatus","chat":"","state":"connected"}' FROM c""",
                (log_name(tmp_path),),
            )
            appender.start()
            _until(lambda: _waiting_on_lock(schema), "the append to wait for the late writer")
            assert [r.seq for r in follower.read()] == [1]
            assert follower.last_seq() == 1
        appender.join(timeout=30)
        assert appended == [3]
        assert [r.seq for r in follower.read()] == [1, 2, 3]
    finally:
        log.close()
        follower.close()


@contextlib.contextmanager
def _sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The SQL statements psycopg sends in the block (each a round trip), BEGIN and COMMIT
    of ``conn.transaction()`` included."""
    sent: list[str] = []
    execute, command = psycopg.Cursor.execute, psycopg.Connection._exec_command

    def counted_execute(cur: Any, query: Any, *args: Any, **kw: Any) -> Any:
        sent.append(str(query))
        return execute(cur, query, *args, **kw)

    def counted_command(conn: Any, query: Any, *args: Any, **kw: Any) -> Any:
        sent.append(str(query))
        return command(conn, query, *args, **kw)

    with monkeypatch.context() as patched:
        patched.setattr(psycopg.Cursor, "execute", counted_execute)
        patched.setattr(psycopg.Connection, "_exec_command", counted_command)
        yield sent


def test_a_guarded_append_is_one_statement_until_something_is_forgotten(
    tmp_path: Path, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard's check rides in the append's one statement (one round trip, as an
    unguarded append); only after a forget does the exact, locked check run."""
    one, two = "1@s.whatsapp.net", "2@s.whatsapp.net"
    with PostgresLog(DSN, name=log_name(tmp_path), schema=schema) as log:
        seen = log.append(message(1, chat=one), message(2, chat=two))[-1].seq
        for burst in ([message(3, chat=one)], [message(4, chat=one), message(5, chat=one)]):
            with _sent(monkeypatch) as sent:
                log.append(*burst, guard=Guard(frozenset({one}), seen))
            assert len(sent) == 1
        marker = log.compact("forget", Selection(chats=frozenset({two})))
        assert marker is not None
        with _sent(monkeypatch) as sent:
            log.append(message(6, chat=one), guard=Guard(frozenset({one}), seen))
        assert len(sent) > 1  # another chat's marker since: decided exactly, and recorded
        with _sent(monkeypatch) as sent:
            log.append(message(7, chat=one), guard=Guard(frozenset({one}), marker.seq))
        assert len(sent) == 1  # a decision that saw the marker
        kept = [message(n, one) for n in (1, 3, 4, 5, 6, 7)]
        assert [r.event for r in log.read(chats=[one])] == kept


def test_a_forget_committing_while_a_guarded_append_waits_for_the_counter_refuses_it(
    tmp_path: Path, schema: str
) -> None:
    """The append's one statement began (its snapshot taken) before the forget announced
    itself, then waited for the counter's lock behind it: the forget's row is not in that
    snapshot, and the append must be refused all the same (or go with the chat)."""
    one, name = "1@s.whatsapp.net", log_name(tmp_path)
    log = PostgresLog(DSN, name=name, schema=schema)
    forgetter = PostgresLog(DSN, name=name, schema=schema)
    seen = log.append(message(1, chat=one))[0].seq
    outcomes: list[object] = []

    def run(work: Any) -> threading.Thread:
        def keep() -> None:
            try:
                outcomes.append(work())
            except Forgotten as exc:
                outcomes.append(exc)

        thread = threading.Thread(target=keep)
        thread.start()
        return thread

    try:
        with admin() as holder, holder.transaction():
            holder.execute(f"SELECT 1 FROM {schema}.logs WHERE name = %s FOR UPDATE", (name,))
            forgetting = run(lambda: forgetter.compact("forget", Selection(chats=frozenset({one}))))
            _until(lambda: _waiting_on_lock(schema), "the forget to wait for the counter")
            guard = Guard(frozenset({one}), seen)
            appending = run(lambda: log.append(message(2, chat=one), guard=guard))
            _until(lambda: _waiting_on_lock(schema, 2), "the append to wait behind it")
        forgetting.join(timeout=30)
        appending.join(timeout=30)
        assert len(outcomes) == 2
        assert [r.event for r in log.read(chats=[one])] == []
    finally:
        log.close()
        forgetter.close()


def test_a_stuck_lock_holder_is_a_log_error_not_a_hang(tmp_path: Path, schema: str) -> None:
    log = PostgresLog(DSN, name=log_name(tmp_path), schema=schema, busy_timeout=0.2)
    try:
        log.append(message(1))
        with admin() as holder, holder.transaction():
            holder.execute(
                f"SELECT 1 FROM {schema}.logs WHERE name = %s FOR UPDATE", (log_name(tmp_path),)
            )
            with pytest.raises(LogError, match="held the log longer than lock_timeout"):
                log.append(message(2))
            with pytest.raises(LogError, match="lock_timeout"):
                log.append(Keyed(message(3), "k3"))
            with pytest.raises(LogError, match="lock_timeout"):
                log.append(*(message(n) for n in range(40)))  # the COPY path
        assert [r.seq for r in log.append(message(4), Keyed(message(5), "k5"))] == [2, 3]
        assert [r.seq for r in log.append(*(message(n) for n in range(40)))][-1] == 43
    finally:
        log.close()


def test_unreachable_server_is_one_line_without_the_password() -> None:
    with pytest.raises(LogError) as caught:
        PostgresLog("postgresql://wabot:s3cret@127.0.0.1:1/wabot", name="491700000000")
    text = str(caught.value)
    assert text.startswith("postgresql://wabot@127.0.0.1:1/wabot: cannot connect to PostgreSQL")
    assert "\n" not in text
    assert "s3cret" not in text
    assert caught.value.__suppress_context__  # no chained driver traceback


def test_a_log_url_needs_a_lower_case_schema_and_a_name(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="schema 'Bad-Name' must be a lower-case SQL identifier"):
        PostgresLog(schema_url("Bad-Name"), name="491700000000")
    with pytest.raises(LogError, match="needs a name"):
        open_log(tmp_path, url=DSN)


def test_open_log_picks_postgres_for_its_urls_and_sqlite_otherwise(
    tmp_path: Path, schema: str
) -> None:
    clock = FakeClock(1_764_070_000.25)
    for scheme in ("postgresql://", "postgres://"):
        url = schema_url(schema).replace("postgresql://", scheme, 1)
        with open_log(tmp_path / "store", url=url, name="491700000009", clock=clock) as log:
            assert isinstance(log, PostgresLog)
            log.append(message(len(scheme)))
        with open_reader(tmp_path / "store", url=url, name="491700000009") as reader:
            assert isinstance(reader, PostgresReader)
            assert reader.last_seq() == (1 if scheme == "postgresql://" else 2)
    assert not (tmp_path / "store").exists()  # the log went to the database only
    with open_log(tmp_path / "store") as local:
        assert isinstance(local, SQLiteLog)
    with open_reader(tmp_path / "store") as local_reader:
        assert isinstance(local_reader, SQLiteReader)


def test_schema_is_readable_without_wabot(tmp_path: Path, schema: str) -> None:
    clock = FakeClock(1_764_070_000.25)
    with PostgresLog(DSN, name="491700000010", schema=schema, clock=clock) as log:
        log.append(MessageReceived(chat="4917@s.whatsapp.net", msg_id="M1", sender="x", text="hi"))
    with admin() as conn:
        row = conn.execute(
            f"SELECT seq, at, type, chat, body->>'text' FROM {schema}.timeline WHERE log = %s",
            ("491700000010",),
        ).fetchone()
    assert row is not None
    assert (row[0], row[1].isoformat(), *row[2:]) == (
        1,
        "2025-11-25T11:26:40.250000+00:00",
        "MessageReceived",
        "4917@s.whatsapp.net",
        "hi",
    )


def test_the_read_only_log_creates_nothing_and_cannot_write(
    tmp_path: Path, schema: str, fresh_schema: str
) -> None:
    with pytest.raises(NoLog, match=f"no event log in schema {fresh_schema}"):
        PostgresReader(DSN, name="491700000000", schema=fresh_schema)
    with pytest.raises(NoLog, match="no event log named '491700000099'"):
        PostgresReader(DSN, name="491700000099", schema=schema)
    with admin() as conn:
        assert conn.execute("SELECT to_regnamespace(%s)", (fresh_schema,)).fetchone() == (None,)
    with PostgresLog(DSN, name=log_name(tmp_path), schema=schema) as log:
        log.append(message(1))
    with pg_reader(tmp_path) as reader:
        assert not hasattr(reader, "append")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader._link._conn.execute(f"DELETE FROM {schema}.events")
        assert reader.last_seq() == 1


def test_schema_is_migrated_once_by_concurrent_openers(fresh_schema: str) -> None:
    logs: list[PostgresLog] = []
    errors: list[BaseException] = []

    def open_one(n: int) -> None:
        try:
            logs.append(PostgresLog(DSN, name=f"49170000000{n}", schema=fresh_schema))
        except BaseException as exc:
            errors.append(exc)

    openers = [threading.Thread(target=open_one, args=(n,)) for n in range(4)]
    for th in openers:
        th.start()
    for th in openers:
        th.join(timeout=60)
    for log in logs:
        log.close()
    assert errors == []
    with admin() as conn:
        versions = conn.execute(f"SELECT version FROM {fresh_schema}.schema_version").fetchall()
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
        assert conn.execute(f"SELECT count(*) FROM {fresh_schema}.logs").fetchone() == (4,)
        conn.execute(f"INSERT INTO {fresh_schema}.schema_version (version) VALUES (99)")
    with pytest.raises(LogError, match="version 99, newer than this wabot knows"):
        PostgresLog(DSN, name="491700000000", schema=fresh_schema)
    with pytest.raises(LogError, match="version 99"):
        PostgresReader(DSN, name="491700000000", schema=fresh_schema)


def test_a_lost_notification_only_delays_a_waiter(tmp_path: Path, schema: str) -> None:
    with PostgresLog(DSN, name=log_name(tmp_path), schema=schema) as log:
        log.append(message(1))
    with PostgresReader(DSN, name=log_name(tmp_path), schema=schema, poll=0.1) as reader:
        assert reader.wait(1, timeout=0.3) is False  # the listener is up and idle
        with admin() as other:  # a commit whose NOTIFY never arrives
            other.execute(
                f"UPDATE {schema}.logs SET last_seq = last_seq + 1 WHERE name = %s",
                (log_name(tmp_path),),
            )
        assert reader.wait(1, timeout=30) is True


def test_full_synchronous_forces_synchronous_commit(tmp_path: Path, schema: str) -> None:
    log = PostgresLog(DSN, name=log_name(tmp_path), schema=schema, synchronous="FULL")
    with log, log._writer.use(log.where) as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    with pytest.raises(ValueError, match="NORMAL or FULL"):
        PostgresLog(DSN, name=log_name(tmp_path), schema=schema, synchronous="OFF")  # type: ignore[arg-type]


def test_a_compaction_leaves_the_appends_after_it_synchronous(tmp_path: Path, schema: str) -> None:
    """Its chunks commit without waiting for the disk; the appends after it still wait."""
    log = PostgresLog(DSN, name=log_name(tmp_path), schema=schema, synchronous="FULL")
    with log:
        log.append(*(message(n, "a") for n in range(50)))
        marker = compacted(log.compact("rotation", Selection(chats=frozenset({"a"}))))
        assert marker.removed == 50
        with log._writer.use(log.where) as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)


def test_a_large_keyed_burst_skips_known_keys_and_stays_contiguous(
    tmp_path: Path, schema: str
) -> None:
    with PostgresLog(DSN, name=log_name(tmp_path), schema=schema) as log:
        first = log.append(*(Keyed(message(n), f"k{n}") for n in range(0, 40, 2)))
        mixed = log.append(*(Keyed(message(n), f"k{n}") for n in range(40)))  # half known
        assert [r.seq for r in first] == list(range(1, 21))
        assert [r.seq for r in mixed[::2]] == [r.seq for r in first]
        assert [r.seq for r in mixed[1::2]] == list(range(21, 41))
        assert [r.key for r in log.read()] == [
            f"k{n}" for n in (*range(0, 40, 2), *range(1, 40, 2))
        ]


def test_a_schema_of_the_first_release_is_migrated_to_take_any_snapshot_version(
    fresh_schema: str,
) -> None:
    """Snapshot versions are CRC-32s (up to 2^32 - 1): past PostgreSQL's integer."""
    from events.postgres._schema import MIGRATIONS  # noqa: PLC0415

    with admin() as conn:  # what wabot's first PostgreSQL release created
        conn.execute(f"CREATE SCHEMA {fresh_schema}")
        conn.execute(
            f"CREATE TABLE {fresh_schema}.schema_version"
            " (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(MIGRATIONS[0].format(s=fresh_schema).encode())
        conn.execute(f"INSERT INTO {fresh_schema}.schema_version (version) VALUES (1)")
    with PostgresLog(DSN, name="491700000000", schema=fresh_schema) as log:
        log.append(message(1))
        log.save_snapshot("projections", 2**32 - 1, 1, b"state")
        assert log.load_snapshot("projections", 2**32 - 1) == (1, b"state")


def test_purge_leaves_no_dead_row_of_a_forgotten_chat(tmp_path: Path, schema: str) -> None:
    """What PostgreSQL lets one observe: VACUUM has reclaimed the removed rows.

    (It does not zero their space; README "Command line" says what stays.)
    """
    log = PostgresLog(DSN, name=log_name(tmp_path), schema=schema)  # creates the schema
    with admin() as conn:
        try:
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS pgstattuple SCHEMA {schema}")
        except psycopg.Error as exc:
            log.close()
            pytest.skip(f"pgstattuple is not available: {exc}")
        # Where it is: another run may have made it first, elsewhere.
        row = conn.execute(
            "SELECT extnamespace::regnamespace::text FROM pg_extension"
            " WHERE extname = 'pgstattuple'"
        ).fetchone()
        assert row is not None
        home = row[0]
    gone = "1@s.whatsapp.net"
    with log:
        log.append(*(message(i, chat=gone, tag="zebra") for i in range(200)))
        log.append(message(1, chat="2@s.whatsapp.net"))
        marker = log.compact("forget", Selection(chats=frozenset({gone})))
        assert marker is not None
        log.save_snapshot("projections", 1, marker.seq, b"state")
        log.save_snapshot("projections", 1, marker.seq, b"state, again")  # one dead version

        log.purge()

        assert log.load_snapshot("projections", 1) is None
    with admin() as conn:
        for table in ("events", "snapshots"):
            dead = conn.execute(
                f"SELECT dead_tuple_count FROM {home}.pgstattuple('{schema}.{table}')"
            ).fetchone()
            assert dead == (0,), table


def test_a_rotation_leaves_no_snapshot_holding_what_it_removed(tmp_path: Path, schema: str) -> None:
    """The snapshot a running bot folded before the rotation held the expired texts
    until its next stop; its dead tuple waits for VACUUM (README: PostgreSQL)."""
    clock = FakeClock()
    bot = PostgresLog(DSN, name=log_name(tmp_path), schema=schema, clock=clock)
    tool = PostgresLog(DSN, name=log_name(tmp_path), schema=schema)
    try:
        bot.append(*(message(i, tag="zebra-quartz") for i in range(5)))
        bot.save_snapshot("projections", 3, bot.last_seq(), b"folded: zebra-quartz")
        clock.advance(100)
        bot.append(message(9, tag="walrus"))
        marker = tool.compact("rotation", Selection(older_than=clock.now - 50))
        assert compacted(marker).removed == 5
        with admin() as conn:
            states = [bytes(s) for (s,) in conn.execute(f"SELECT state FROM {schema}.snapshots")]
        assert [s for s in states if b"zebra-quartz" in s] == []
    finally:
        bot.close()
        tool.close()
