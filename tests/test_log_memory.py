"""The in-memory log bound to the same contract as the SQLite log (in-process half)."""

from events.testing import LogContract


class TestMemoryLog(LogContract):
    factory = "events.memory:MemoryLog"
