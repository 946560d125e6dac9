"""Test helpers shipped as public API: a fake clock and the log contract suites.

``ReaderContract`` and ``LogContract`` state the log's guarantees once; every
backend binds them by subclassing with its ``factory`` (as eventsourcing does
with its recorder test cases). ``DurableLogContract`` adds what holds across
real processes and kill -9.
"""

from events.testing._contract import (
    FakeClock,
    LogContract,
    ReaderContract,
    appending,
    compacted,
    message,
    with_media,
)
from events.testing._durable import DurableLogContract, compactor_command, writer_command

__all__ = [
    "DurableLogContract",
    "FakeClock",
    "LogContract",
    "ReaderContract",
    "appending",
    "compacted",
    "compactor_command",
    "message",
    "with_media",
    "writer_command",
]
