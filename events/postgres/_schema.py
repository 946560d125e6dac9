"""Where a PostgreSQL log lives, connecting to it, and the schema the program migrates itself.

A log is selected by a DSN plus a log name. The DSN may carry ``?schema=NAME``
(as Prisma's URLs do): the PostgreSQL schema that holds the tables, ``wabot``
by default. It is removed before libpq sees the DSN, which would reject it.
Every log of the schema (one per owner's number) shares its tables, keyed by
``log_id``; the ``logs`` row of a log carries its counter of handed-out seqs.

The schema is versioned by ``schema_version``; migrations run in order, each
once, under an advisory lock, so writer processes starting together neither
race on ``CREATE`` nor apply a step twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import conninfo

from events.dsn import hide
from events.protocol import LogError, LogUnavailable, NoLog

DEFAULT_SCHEMA = "wabot"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_LOCK_CLASS = 0x77AB  # first key of the advisory lock that guards migrations
_CONNECT_TIMEOUT = 5  # seconds; libpq otherwise waits for the OS's TCP timeout

# Each step runs once, in order; a released step is never edited, only followed.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE {s}.logs (
        id       serial PRIMARY KEY,
        name     text   NOT NULL UNIQUE,        -- the owner's phone number
        last_seq bigint NOT NULL DEFAULT 0      -- highest seq handed out; only ever grows
    );
    CREATE TABLE {s}.events (
        log_id integer NOT NULL REFERENCES {s}.logs (id),
        seq    bigint  NOT NULL,
        ts     bigint  NOT NULL,                -- UTC microseconds since the epoch
        type   text    NOT NULL,
        chat   text    NOT NULL DEFAULT '',
        key    text,                            -- idempotency key, e.g. chat/msg_id
        body   json    NOT NULL,                -- msgspec JSON of the event, kept verbatim
        PRIMARY KEY (log_id, seq)
    );
    CREATE UNIQUE INDEX events_by_key ON {s}.events (log_id, key) WHERE key IS NOT NULL;
    CREATE INDEX events_by_chat ON {s}.events (log_id, chat, seq);
    CREATE TABLE {s}.snapshots (
        log_id  integer NOT NULL REFERENCES {s}.logs (id),
        name    text    NOT NULL,
        version integer NOT NULL,
        seq     bigint  NOT NULL,
        state   bytea   NOT NULL,
        PRIMARY KEY (log_id, name)
    );
    CREATE VIEW {s}.timeline AS
        SELECT l.name AS log, e.seq, to_timestamp(e.ts / 1e6) AS at, e.type, e.chat, e.key, e.body
        FROM {s}.events e JOIN {s}.logs l ON l.id = e.log_id;
    """,
    # Snapshot versions are CRC-32s of the state's schema: up to 2^32, past integer's range.
    """
    ALTER TABLE {s}.snapshots ALTER COLUMN version TYPE bigint;
    """,
    # A compaction under way: what it removes and what went so far
    # (events.compaction.Pending), written with its chunks' deletes and
    # removed with its marker's insert.
    """
    CREATE TABLE {s}.compactions (
        id     bigserial PRIMARY KEY,
        log_id integer   NOT NULL REFERENCES {s}.logs (id),
        state  json      NOT NULL
    );
    CREATE INDEX compactions_by_log ON {s}.compactions (log_id);
    """,
    # A lease given up by a holder that had stopped (events.postgres.Lease): the next
    # holder takes the row with the lease and need not wait for that one to notice.
    """
    CREATE TABLE {s}.lease_releases (
        name     text        PRIMARY KEY,       -- the lease's: the log's name
        holder   text        NOT NULL,
        released timestamptz NOT NULL DEFAULT now()
    );
    """,
    # The counter as the latest forget of chats announced itself (its ``top``): on
    # the counter row, so a guarded append's one statement reads it once it holds
    # that row's lock (``_sql``, "append").
    """
    ALTER TABLE {s}.logs ADD COLUMN forget_top bigint NOT NULL DEFAULT 0;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class Target(NamedTuple):
    """A DSN ready for libpq, the schema that holds the tables, and a password-free label."""

    dsn: str
    schema: str
    where: str


def target(url: str, schema: str | None = None) -> Target:
    """Split ``?schema=`` off ``url``; ``schema`` given here wins over the URL's."""
    from_url = None
    if "://" in url:
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # e.g. an unclosed [IPv6] host
            raise LogError(f"postgresql://(unparsable DSN): {exc}") from None
        query = parse_qsl(parts.query, keep_blank_values=True)
        from_url = next((v for k, v in query if k == "schema"), None)
        rest = urlencode([(k, v) for k, v in query if k != "schema"])
        url = urlunsplit(parts._replace(query=rest))
    chosen = schema or from_url or DEFAULT_SCHEMA
    where = label(url)
    if not _IDENT.match(chosen):
        raise LogError(f"{where}: schema {chosen!r} must be a lower-case SQL identifier")
    return Target(url, chosen, where)


def with_schema(url: str, schema: str) -> str:
    """``url`` selecting ``schema``, as a user writes it (what ``target`` reads back)."""
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def label(dsn: str) -> str:
    """``postgresql://user@host:port/db``: enough to tell which server, never the password."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable DSN)"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host', 'localhost')}{port}/{params.get('dbname', '')}"


def connect(
    where: Target,
    *,
    read_only: bool = False,
    settings: Mapping[str, str] | None = None,
    params: Mapping[str, str | int] | None = None,
) -> psycopg.Connection[Any]:
    """An autocommit connection with ``settings`` applied; ``LogUnavailable`` in one line if none.

    ``params`` are libpq connection keywords (keepalives, a shorter ``connect_timeout``).
    """
    keywords: dict[str, Any] = {"connect_timeout": _CONNECT_TIMEOUT, **(params or {})}
    try:
        conn = psycopg.connect(where.dsn, autocommit=True, **keywords)
    except psycopg.Error as exc:
        why = hide(one_line(exc), where.dsn)  # libpq quotes a DSN it cannot parse
        raise LogUnavailable(f"{where.where}: cannot connect to PostgreSQL ({why})") from None
    try:
        for name, value in (settings or {}).items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        if read_only:
            # The offline tools' connection cannot change the log, even by mistake.
            conn.execute("SET default_transaction_read_only = on")
    except psycopg.Error as exc:
        conn.close()
        raise LogError(f"{where.where}: cannot set up the connection ({one_line(exc)})") from None
    return conn


def one_line(exc: BaseException) -> str:
    """The first line of a driver message (libpq adds hints on further lines)."""
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


def migrate(conn: psycopg.Connection[Any], where: Target) -> None:
    """Bring the schema to ``SCHEMA_VERSION``; a newer one is refused, never downgraded."""
    if _version(conn, where) == SCHEMA_VERSION:
        return  # the common case: no lock, no DDL, no CREATE privilege needed
    s = where.schema
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, s))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {s}.schema_version"
            " (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"
        )
        have = _version(conn, where)
        for version, script in enumerate(MIGRATIONS[have:], have + 1):
            conn.execute(script.format(s=s).encode())
            conn.execute(f"INSERT INTO {s}.schema_version (version) VALUES (%s)", (version,))


def _version(conn: psycopg.Connection[Any], where: Target) -> int:
    """The schema's version, 0 if it has none; ``LogError`` if newer than this program."""
    table = f"{where.schema}.schema_version"
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {table}").fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise LogError(
            f"{where.where}: schema {where.schema} is at version {version}, newer than this"
            f" wabot knows ({SCHEMA_VERSION}); upgrade wabot"
        )
    return version


def log_id(conn: psycopg.Connection[Any], where: Target, name: str, *, create: bool) -> int:
    """The id of log ``name``, registering it if ``create``; ``NoLog`` if absent otherwise."""
    s = where.schema
    if create:
        conn.execute(
            f"INSERT INTO {s}.logs (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (name,)
        )
    else:
        version = _version(conn, where)
        if version == 0:
            raise NoLog(f"{where.where}: no event log in schema {s} (wrong URL, or never ran)")
        if version < SCHEMA_VERSION:
            raise LogError(
                f"{where.where}: schema {s} is at version {version}; start the daemon once"
                " so it migrates the log, then read it"
            )
    row = conn.execute(f"SELECT id FROM {s}.logs WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise NoLog(f"{where.where}: no event log named {name!r} in schema {s}")
    return int(row[0])


def log_names(conn: psycopg.Connection[Any], where: Target) -> list[str]:
    """Every log of the schema (one per owner's number), sorted; none before the first run."""
    try:
        if _version(conn, where) == 0:
            return []
        rows = conn.execute(f"SELECT name FROM {where.schema}.logs ORDER BY name").fetchall()
    except psycopg.Error as exc:
        raise LogError(f"{where.where}: cannot list the logs ({one_line(exc)})") from None
    return [str(name) for (name,) in rows]
