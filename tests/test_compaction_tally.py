"""What every backend's compaction shares: the tally behind the marker, and chunk sizes."""

from events.compaction import Pacer, Tally
from events.protocol import Chunk, Selection

ROWS = [(3, "MessageReceived", "a"), (5, "ReplySent", "a"), (9, "MessageReceived", "b")]
SELECTION = Selection(older_than=100.0, keep=frozenset({4}))


def test_counts_from_the_database_make_the_marker_the_rows_would() -> None:
    rows, counted = Tally(), Tally()
    rows.add(ROWS, 0.01)
    # What a database's GROUP BY type, chat returns for those rows, in two chunks.
    counted.add_counted([("MessageReceived", "a", 1, 3), ("ReplySent", "a", 1, 5)], 0.01)
    counted.add_counted([("MessageReceived", "b", 1, 9)], 0.01)
    assert counted.marker("rotation", SELECTION) == rows.marker("rotation", SELECTION)
    assert (counted.removed, counted.last) == (3, 9)


def test_counted_chunks_report_progress_as_they_go() -> None:
    seen: list[Chunk] = []
    tally = Tally(seen.append)
    tally.add_counted([("MessageReceived", "a", 2, 7)], 0.02)
    tally.add_counted([("ReplySent", "", 3, 12)], 0.03)
    assert seen == [Chunk(2, 0.02), Chunk(5, 0.03)]


def test_nothing_counted_makes_no_marker() -> None:
    tally = Tally()
    tally.add_counted([], 0.0)
    assert tally.marker("rotation", SELECTION) is None


def test_a_chunk_at_most_doubles_and_shrinks_to_fit_the_target() -> None:
    pacer = Pacer(target=0.05, first=1000)
    pacer.took(1000, 0.001)
    assert pacer.size == 2000
    pacer.took(2000, 0.2)  # four times too slow
    assert pacer.size == 500
