"""The event log on one SQLite file, ``STORE/events.db``: read-only and read-write.

Its private modules: ``_log`` (the reader and the writer, group-committed),
``_schema`` (the tables and the statements over them), ``_turns`` (writers of
one file take turns on its write lock), ``_compact`` (compaction in short
chunks that let appends in) and ``_checkpoint`` (the WAL copied back off the
append path, so it stays bounded).
"""

from events.sqlite._log import DB_NAME, SQLiteLog, SQLiteReader, Synchronous, open_store
from events.sqlite._schema import SEQUENCE, where

__all__ = [
    "DB_NAME",
    "SEQUENCE",
    "SQLiteLog",
    "SQLiteReader",
    "Synchronous",
    "open_store",
    "where",
]
