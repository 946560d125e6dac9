"""Who may act for a log: a session-level advisory lock held on a connection of its own.

Two daemons of one number (on two machines, sharing the database and the
WhatsApp session in it) must never both be connected to WhatsApp. The one
that holds this lock is active; the other waits. PostgreSQL releases a session
lock the moment its connection ends, so a daemon killed with ``kill -9`` frees
it at once, and a machine that dies frees it when the server's keepalives give
up on the connection (set here to about 6 s, instead of the kernel's two hours).

A holder that stops gives the lock up with ``release(clean=True)``: it records
that in the ``lease_releases`` table first, on the locked session, and the next
holder takes that row away with the lock (``released``). A holder cut off (its
connection lost while it runs) or killed writes none, and a row is never left
behind for a later holder to misread: a ``take`` that cannot clear it gives
the lock up again.

The key is 64 bits of a hash of (schema, log name): one lock per number per
schema, apart from every other program's locks in practice. The connection's
``application_name`` says who holds the lock and who waits for it, so a standby
can name the active daemon and the active one can tell whether anyone waits.
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import datetime
from typing import Any

import psycopg

from events.postgres._schema import Target, connect, one_line, target
from events.protocol import LogError, LogUnavailable

# The server probes an idle lease connection after 3 s, every 1 s, 3 times.
_SERVER = {"tcp_keepalives_idle": "3", "tcp_keepalives_interval": "1", "tcp_keepalives_count": "3"}
# This side gives up on a connection whose data goes unacknowledged for 2 s.
_CLIENT: dict[str, str | int] = {
    "connect_timeout": 2,
    "keepalives": 1,
    "keepalives_idle": 3,
    "keepalives_interval": 1,
    "keepalives_count": 3,
    "tcp_user_timeout": 2000,
}


class Lease:
    """The lock of log ``name``: taken with ``take``, confirmed with ``check``."""

    def __init__(self, url: str, *, name: str, schema: str | None = None) -> None:
        self.where: Target = target(url, schema)
        digest = hashlib.blake2b(f"{self.where.schema}/{name}".encode(), digest_size=8).digest()
        self.key = int.from_bytes(digest, "big", signed=True)
        self.tag = digest.hex()[:12]  # names this lease's sessions in pg_stat_activity
        self._active = f"wabot active {self.tag}"
        self._standby = f"wabot standby {self.tag}"
        self._name = name
        self._who = ""
        self._conn: psycopg.Connection[Any] | None = None
        self.held = False
        # Who gave the lock up cleanly right before ``take`` got it, and when; None:
        # the last holder did not (it crashed, was cut off) or nobody held it before.
        self.released: tuple[str, datetime] | None = None

    def take(self, who: str) -> bool:
        """Try once to take the lock; ``who`` (e.g. ``pid 7 on vps1``) names the holder."""
        conn = self._connection()
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            self.held = bool(row and row[0])
            name = f"{self._active} {who}" if self.held else self._standby
            conn.execute("SELECT set_config('application_name', %s, false)", (name[:63],))
            if self.held:
                self._who = who
                self.released = self._cleared(conn)
        except psycopg.Error as exc:
            failed = self._failed(exc)
            self.release()  # a clean release not cleared must not be read by a later holder
            raise failed from None
        return self.held

    def _cleared(self, conn: psycopg.Connection[Any]) -> tuple[str, datetime] | None:
        """Take away the last holder's clean release, if it left one."""
        try:
            row = conn.execute(
                f"DELETE FROM {self.where.schema}.lease_releases WHERE name = %s"
                " RETURNING holder, released",
                (self._name,),
            ).fetchone()
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            return None  # a schema no log has brought up to date yet holds no release
        return (str(row[0]), row[1]) if row else None

    def holder(self) -> str | None:
        """Who holds the lock, as its holder named itself; None if nobody (or unknown)."""
        prefix = self._active + " "
        try:
            row = (
                self._connection()
                .execute(
                    "SELECT application_name FROM pg_stat_activity"
                    " WHERE starts_with(application_name, %s) LIMIT 1",
                    (prefix,),
                )
                .fetchone()
            )
        except psycopg.Error as exc:
            raise self._failed(exc) from None
        return str(row[0])[len(prefix) :] if row else None

    def check(self) -> int:
        """Confirm the lock is still held; returns how many standbys wait for it.

        ``LogUnavailable`` when the connection is gone: the lock went with it.
        """
        if self._conn is None or not self.held:
            raise LogUnavailable(f"{self.where.where}: the lease is not held")
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (self._standby,),
            ).fetchone()
        except psycopg.Error as exc:
            self.held = False
            raise self._failed(exc) from None
        return int(row[0]) if row else 0

    def release(self, *, clean: bool = False) -> None:
        """Give the lock up (closing the connection would too). ``clean``: the holder has
        stopped acting, so the next need not wait for it; recorded while still locked."""
        conn, self._conn = self._conn, None
        if clean and self.held and conn is not None:
            with contextlib.suppress(psycopg.Error):  # none recorded: the next one waits
                conn.execute(
                    f"INSERT INTO {self.where.schema}.lease_releases (name, holder)"
                    " VALUES (%s, %s) ON CONFLICT (name) DO UPDATE"
                    " SET holder = EXCLUDED.holder, released = now()",
                    (self._name, self._who),
                )
        self.held = False
        if conn is not None:
            conn.close()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self.held = False
            self._conn = connect(self.where, settings=_SERVER, params=_CLIENT)
        return self._conn

    def _failed(self, exc: psycopg.Error) -> LogError:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            self.release()
            why = one_line(exc)
            return LogUnavailable(f"{self.where.where}: lost the lease connection ({why})")
        return LogError(f"{self.where.where}: lease query failed ({one_line(exc)})")
