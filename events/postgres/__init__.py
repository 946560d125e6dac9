"""The event log in a PostgreSQL database: many logs (one per owner's number) in one schema.

Importing it loads psycopg (~140 ms, ~19 MB), so ``events.backends`` and the
tools import it only when a ``postgresql://`` URL is given. Its private
modules: ``_log`` (the writer, group-committed, waiting out a database that
went away), ``_reader`` (reading in keyset chunks), ``_schema`` (where a log
lives, connecting, the migrations), ``_sql`` (the statements of one schema),
``_commit_check`` (after a lost connection, whether an append committed),
``_wait`` (LISTEN/NOTIFY), ``_lease`` (one daemon per number) and
``_transfer`` (this end of ``events.transfer``'s copy).
"""

from events.postgres._lease import Lease
from events.postgres._log import PostgresLog
from events.postgres._reader import PostgresReader
from events.postgres._schema import connect, label, log_names, target, with_schema
from events.postgres._sql import where
from events.postgres._transfer import PostgresSide

__all__ = [
    "Lease",
    "PostgresLog",
    "PostgresReader",
    "PostgresSide",
    "connect",
    "label",
    "log_names",
    "target",
    "where",
    "with_schema",
]
