"""The PostgreSQL end of a copy (``events.transfer``): one named log of a database."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import psycopg

from events.postgres._schema import connect, log_id, migrate, one_line, target
from events.protocol import LogError
from events.transfer import CHUNK, RawRow, Snapshot


class PostgresSide:
    """Log ``name`` in the database at ``url``: read as it is, or created for a copy."""

    def __init__(self, url: str, *, name: str, schema: str | None = None) -> None:
        self._target = target(url, schema)
        self.name = name
        self.where = f"{self._target.where} (log {name})"
        s = self._target.schema
        self._s = s

    def export(self) -> tuple[int, Iterator[list[RawRow]], list[Snapshot]]:
        conn = connect(self._target, read_only=True)
        try:
            log = log_id(conn, self._target, self.name, create=False)
            # One snapshot of the database for the counter, the rows and the snapshots.
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            counter = self._one(conn, f"SELECT last_seq FROM {self._s}.logs WHERE id = %s", log)
            snapshots = [
                (str(n), int(v), int(sq), bytes(st))
                for n, v, sq, st in conn.execute(
                    f"SELECT name, version, seq, state FROM {self._s}.snapshots WHERE log_id = %s",
                    (log,),
                )
            ]
        except BaseException:
            conn.close()
            raise
        return counter, self._rows(conn, log), snapshots

    def _rows(self, conn: psycopg.Connection[Any], log: int) -> Iterator[list[RawRow]]:
        sql = (
            f"SELECT seq, ts, type, chat, key, body::text FROM {self._s}.events"
            " WHERE log_id = %s AND seq > %s ORDER BY seq LIMIT %s"
        )
        try:
            after = 0
            while rows := conn.execute(sql, (log, after, CHUNK)).fetchall():
                yield [(int(s), int(t), ty, c, k, b) for s, t, ty, c, k, b in rows]
                after = int(rows[-1][0])
        except psycopg.Error as exc:
            raise LogError(f"{self.where}: reading failed ({one_line(exc)})") from None
        finally:
            conn.close()

    def is_empty(self) -> bool:
        with connect(self._target, read_only=True) as conn:
            try:
                log = log_id(conn, self._target, self.name, create=False)
            except LogError:
                return True  # no schema or no such log yet: nothing to overwrite
            return not self._filled(conn, log)

    def _filled(self, conn: psycopg.Connection[Any], log: int) -> int:
        return self._one(
            conn,
            f"SELECT (SELECT last_seq FROM {self._s}.logs WHERE id = %(log)s)"
            f" + (SELECT count(*) FROM {self._s}.snapshots WHERE log_id = %(log)s)",
            {"log": log},
        )

    def load(self, counter: int, chunks: Iterable[list[RawRow]], snapshots: list[Snapshot]) -> None:
        with connect(self._target) as conn:
            try:
                migrate(conn, self._target)
                log = log_id(conn, self._target, self.name, create=True)
                with conn.transaction():
                    # The counter row's lock keeps a daemon of this number from
                    # appending meanwhile; checked empty under that lock.
                    conn.execute(f"SELECT 1 FROM {self._s}.logs WHERE id = %s FOR UPDATE", (log,))
                    if self._filled(conn, log):
                        raise LogError(
                            f"{self.where} already holds events; refusing to overwrite it"
                        )
                    self._copy_in(conn, log, chunks)
                    conn.execute(
                        f"UPDATE {self._s}.logs SET last_seq = %s WHERE id = %s", (counter, log)
                    )
                    for name, version, seq, state in snapshots:
                        conn.execute(
                            f"INSERT INTO {self._s}.snapshots (log_id, name, version, seq, state)"
                            " VALUES (%s, %s, %s, %s, %s)",
                            (log, name, version, seq, state),
                        )
            except psycopg.Error as exc:
                raise LogError(f"{self.where}: copy failed ({one_line(exc)})") from None

    def _copy_in(
        self, conn: psycopg.Connection[Any], log: int, chunks: Iterable[list[RawRow]]
    ) -> None:
        sql = f"COPY {self._s}.events (log_id, seq, ts, type, chat, key, body) FROM STDIN"
        with conn.cursor().copy(sql) as copy:
            for chunk in chunks:
                for row in chunk:
                    copy.write_row((log, *row))

    @staticmethod
    def _one(conn: psycopg.Connection[Any], sql: str, args: Any) -> int:
        row = conn.execute(sql, args if isinstance(args, dict) else (args,)).fetchone()
        return int(row[0]) if row and row[0] is not None else 0
