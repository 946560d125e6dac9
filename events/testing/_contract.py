"""The log's guarantees stated once: a fake clock, helpers, and the in-process suites."""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from events.model import (
    Compacted,
    Media,
    MediaFetched,
    MessageReceived,
    Recorded,
    SpeechSynthesized,
)
from events.protocol import Forgotten, Guard, Keyed, LogReader, LogWriter, Selection


class FakeClock:
    """A settable clock: ``clock()`` returns the time, ``advance`` moves it."""

    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def compacted(rec: Recorded | None) -> Compacted:
    """The ``Compacted`` event of a marker ``compact`` returned (which must not be None)."""
    assert rec is not None
    assert isinstance(rec.event, Compacted)
    return rec.event


def message(n: int, chat: str = "491701111111@s.whatsapp.net", tag: str = "") -> MessageReceived:
    return MessageReceived(chat=chat, msg_id=f"{tag}{n}", sender=chat, text=f"{tag} message {n}")


@contextlib.contextmanager
def appending(log: LogWriter, chat: str, *, threads: int = 2) -> Iterator[list[Recorded]]:
    """Threads appending to ``chat`` until the block ends; then the list holds what they
    appended, in log order. Any append that failed fails the block."""
    appended: list[Recorded] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def append_meanwhile(t: int) -> None:
        n = 0
        while not done.is_set():
            try:
                appended.extend(log.append(message(n, chat=chat, tag=f"t{t}.")))
            except BaseException as exc:
                errors.append(exc)
            n += 1

    workers = [threading.Thread(target=append_meanwhile, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield appended
    finally:
        done.set()
        for worker in workers:
            worker.join(timeout=60)
    assert errors == [], errors
    assert appended, "no append went in"
    appended.sort(key=lambda r: r.seq)


def with_media(n: int, sha256: str, chat: str = "491701111111@s.whatsapp.net") -> MessageReceived:
    media = Media(kind="image", mime="image/png", size=5, sha256=sha256)
    return MessageReceived(chat=chat, msg_id=f"media{n}", sender=chat, kind="image", media=media)


def _factory(spec: str) -> Callable[..., LogWriter]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


class ReaderContract:
    """What every reader of a log guarantees: the writer's events, in order, by chat.

    Subclasses provide ``factory`` (an importable ``module:callable`` that takes
    a path plus ``synchronous``/``busy_timeout``/``clock`` keywords) for the
    writer, and may override ``reader`` to read through another backend (the
    read-only SQLite log reads what the read-write one wrote). A backend that
    does not live in a file derives its log from the path: each test gets a
    fresh ``tmp_path``, and writer processes get the same path on their
    command line, so they open the same log (see ``tests/pg_support.py``).
    Logs made with ``make`` are closed after each test.
    """

    factory: str = "events.sqlite:SQLiteLog"

    def setup_method(self) -> None:
        self._made: list[LogWriter] = []

    def teardown_method(self) -> None:
        """Close every log a test opened: a server-backed log holds connections."""
        for log in self._made:
            log.close()

    def make(self, path: Path, **kw: Any) -> LogWriter:
        log = _factory(self.factory)(path, **kw)
        self._made.append(log)
        return log

    def reader(self, log: LogWriter, path: Path) -> LogReader:
        """The reader under test over what ``log`` (at ``path``) holds."""
        return log

    def test_reader_sees_every_event_in_order(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        written = log.append(*(message(i, chat=f"{i % 3 + 1}@s.whatsapp.net") for i in range(30)))
        with self.reader(log, tmp_path / "events.db") as reader:
            assert [r.seq for r in reader.read()] == [r.seq for r in written]
            assert [r.event for r in reader.read(after=written[9].seq, limit=5)] == [
                r.event for r in written[10:15]
            ]
            two = list(reader.read(chats=["1@s.whatsapp.net", "2@s.whatsapp.net"]))
            assert [r.seq for r in two] == [r.seq for r in written if r.chat != "3@s.whatsapp.net"]
            assert reader.chats() == {f"{n}@s.whatsapp.net" for n in (1, 2, 3)}
            assert reader.last_seq() == written[-1].seq

    def test_reader_waits_for_new_events(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        log.append(message(1))
        with self.reader(log, tmp_path / "events.db") as reader:
            top = reader.last_seq()
            assert reader.wait(top - 1, timeout=0) is True
            assert reader.wait(top, timeout=0.01) is False
            woke = threading.Event()
            waiter = threading.Thread(
                target=lambda: woke.set() if reader.wait(top, timeout=30) else None
            )
            waiter.start()
            log.append(message(2))
            waiter.join(timeout=30)
            assert woke.is_set()

    def test_reader_reads_across_chunks(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        log.append(*(message(i, chat=f"{i % 2 + 1}@s.whatsapp.net") for i in range(5000)))
        with self.reader(log, tmp_path / "events.db") as reader:
            assert len(list(reader.read(chats=["1@s.whatsapp.net"]))) == 2500
            assert [r.seq for r in reader.read(after=10, limit=3)] == [11, 12, 13]
            assert len(list(reader.read(limit=4500))) == 4500

    def test_reader_names_the_media_messages_still_refer_to(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        one, two, three, four = "a" * 64, "b" * 64, "c" * 64, "d" * 64
        fetched = Media(kind="voice", sha256=three)  # after its message was recorded
        spoken = SpeechSynthesized(  # a voice reply's audio
            chat="1@s.whatsapp.net",
            reply_id="R1",
            sha256=four,
            size=9968,
            seconds=1.5,
            model="gpt-4o-mini-tts",
            voice="alloy",
        )
        log.append(
            with_media(1, one, chat="1@s.whatsapp.net"),
            with_media(2, two, chat="2@s.whatsapp.net"),
            with_media(3, "", chat="2@s.whatsapp.net"),  # nothing was stored
            message(4, tag='"media":{'),  # the words, not an attachment
            MediaFetched(chat="2@s.whatsapp.net", msg_id="media3", media=fetched),
            MediaFetched(chat="1@s.whatsapp.net", msg_id="media5", media=Media(kind="voice")),
            spoken,
        )
        with self.reader(log, tmp_path / "events.db") as reader:
            assert reader.media() == {one, two, three, four}
            log.compact("forget", Selection(chats=frozenset({"2@s.whatsapp.net"})))
            assert reader.media() == {one, four}
            log.compact("forget", Selection(chats=frozenset({"1@s.whatsapp.net"})))
            assert reader.media() == set()

    def test_reader_loads_the_newest_snapshot_of_a_version(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        log.append(message(1))
        assert log.load_snapshot("projections", 3) is None
        log.save_snapshot("projections", 3, 1, b"state")
        log.save_snapshot("projections", 3, 1, b"newer")
        with self.reader(log, tmp_path / "events.db") as reader:
            assert reader.load_snapshot("projections", 3) == (1, b"newer")
            assert reader.load_snapshot("projections", 4) is None
            assert reader.size_bytes() >= 0


class LogContract(ReaderContract):
    """The guarantees every event log backend must keep within one process."""

    def test_seq_strictly_increasing(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        seqs = [r.seq for _ in range(20) for r in log.append(message(1), message(2), message(3))]
        assert seqs == sorted(set(seqs))
        assert [r.seq for r in log.read()] == seqs
        assert log.last_seq() == seqs[-1]

    def test_seq_never_reused_after_compaction(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        recs = log.append(*(message(i) for i in range(10)))
        top = recs[-1].seq
        marker = log.compact("forget", Selection(seqs=frozenset(range(top - 2, top + 1))))
        assert marker is not None
        assert marker.seq > top
        assert compacted(marker).removed == 3
        assert compacted(marker).before == top + 1
        assert compacted(marker).seqs == list(range(top - 2, top + 1))
        nxt = log.append(message(99))[0]
        assert nxt.seq > marker.seq
        assert [r.seq for r in log.read()][-2:] == [marker.seq, nxt.seq]

    def test_compaction_keeps_other_events_and_markers(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        log.append(message(1, chat="1@s.whatsapp.net"), message(2, chat="2@s.whatsapp.net"))
        first = log.compact("forget", Selection(chats=frozenset({"1@s.whatsapp.net"})))
        assert compacted(first).by_type == {"MessageReceived": 1}
        assert log.compact("forget", Selection(chats=frozenset({"1@s.whatsapp.net"}))) is None
        left = list(log.read())
        assert [type(r.event).__name__ for r in left] == ["MessageReceived", "Compacted"]
        assert left[0].chat == "2@s.whatsapp.net"

    def test_rotation_keeps_recent_events_and_the_kept_ones(self, tmp_path: Path) -> None:
        clock = FakeClock()
        log = self.make(tmp_path / "events.db", clock=clock)
        old = log.append(*(message(i) for i in range(5)))
        clock.advance(100)
        new = log.append(message(9))
        marker = log.compact(
            "rotation", Selection(older_than=clock.now - 50, keep=frozenset({old[2].seq}))
        )
        assert (compacted(marker).removed, compacted(marker).older_than) == (4, clock.now - 50)
        assert compacted(marker).before == old[4].seq + 1
        # The marker says what went, so projections can drop it without the log.
        assert (compacted(marker).keep, compacted(marker).chats) == ([old[2].seq], None)
        assert compacted(marker).seqs is None
        assert compacted(marker).by_chat == {"491701111111@s.whatsapp.net": 4}
        assert marker is not None
        assert [r.seq for r in log.read()] == [old[2].seq, new[0].seq, marker.seq]

    def test_a_snapshot_older_than_a_compaction_is_not_stored(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        folded = log.append(message(1))[0].seq
        log.compact("forget", Selection(chats=frozenset({message(1).chat})))
        # Folded before the forget: it may hold the chat's texts.
        log.save_snapshot("projections", 3, folded, b"with the chat")
        assert log.load_snapshot("projections", 3) is None
        log.save_snapshot("projections", 3, log.last_seq(), b"without")
        assert log.load_snapshot("projections", 3) == (log.last_seq(), b"without")

    def test_a_compaction_drops_the_snapshots_folded_before_it(self, tmp_path: Path) -> None:
        """Folded before the marker, a snapshot may hold what went (a rotation's texts)."""
        clock = FakeClock()
        log = self.make(tmp_path / "events.db", clock=clock)
        folded = log.append(message(1), message(2))[-1].seq
        log.save_snapshot("projections", 3, folded, b"with message 1")
        log.save_snapshot("projections:queue", 3, folded, b"with message 1")
        clock.advance(100)
        assert log.compact("rotation", Selection(older_than=clock.now - 200)) is None
        assert log.load_snapshot("projections", 3) == (folded, b"with message 1")
        marker = log.compact("rotation", Selection(older_than=clock.now))
        assert marker is not None
        assert log.load_snapshot("projections", 3) is None
        assert log.load_snapshot("projections:queue", 3) is None
        log.save_snapshot("projections", 3, marker.seq, b"absorbed")
        log.append(message(3))
        assert log.compact("rotation", Selection(older_than=clock.now - 200)) is None
        assert log.load_snapshot("projections", 3) == (marker.seq, b"absorbed")

    def test_purge_drops_every_snapshot_and_keeps_every_event(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        kept = log.append(message(1), message(2, chat="2@s.whatsapp.net"))[0]
        marker = log.compact("forget", Selection(chats=frozenset({"2@s.whatsapp.net"})))
        assert marker is not None
        log.save_snapshot("projections", 3, marker.seq, b"state")
        log.purge()
        assert log.load_snapshot("projections", 3) is None
        assert [r.seq for r in log.read()] == [kept.seq, marker.seq]
        assert log.append(message(3))[0].seq == marker.seq + 1

    def test_large_compaction_removes_all_and_marks_once(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        log.append(*(message(i, chat=f"{i % 2 + 1}@s.whatsapp.net") for i in range(5000)))
        marker = log.compact("forget", Selection(chats=frozenset({"1@s.whatsapp.net"})))
        assert compacted(marker).removed == 2500
        assert compacted(marker).by_type == {"MessageReceived": 2500}
        assert compacted(marker).by_chat == {"1@s.whatsapp.net": 2500}
        assert (compacted(marker).chats, compacted(marker).keep) == (["1@s.whatsapp.net"], [])
        assert marker is not None
        # Filed under no chat: a forgotten chat keeps no event (``chats`` names it).
        assert marker.chat == ""
        assert "1@s.whatsapp.net" not in log.chats()
        left = list(log.read())
        assert len(left) == 2501
        assert [r for r in left if isinstance(r.event, Compacted)] == [marker]

    def test_appends_never_fail_while_compacting(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        for start in range(0, 20_000, 5000):
            log.append(*(message(i, chat="1@s.whatsapp.net") for i in range(start, start + 5000)))
        with appending(log, "2@s.whatsapp.net", threads=3) as appended:
            marker = log.compact("forget", Selection(chats=frozenset({"1@s.whatsapp.net"})))
        assert compacted(marker).removed == 20_000
        assert marker is not None
        assert [r.seq for r in log.read()] == sorted([marker.seq, *(r.seq for r in appended)])

    def test_a_guarded_append_is_refused_after_a_forget_of_its_chat(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        one, two = "1@s.whatsapp.net", "2@s.whatsapp.net"
        seen = log.append(message(1, chat=one))[0].seq
        marker = log.compact("forget", Selection(chats=frozenset({one})))
        assert marker is not None
        with contextlib.suppress(Forgotten):
            log.append(message(2, chat=one), guard=Guard(frozenset({one}), seen))
            raise AssertionError("a guarded append of a chat forgotten since was recorded")
        assert [r.seq for r in log.read()] == [marker.seq]
        # Another chat, or a decision that saw the forget: recorded.
        assert log.append(message(3, chat=two), guard=Guard(frozenset({two}), seen))
        assert log.append(message(4, chat=one), guard=Guard(frozenset({one}), marker.seq))

    def test_guarded_appends_racing_a_forget_are_removed_or_refused(self, tmp_path: Path) -> None:
        """Whatever a forget's chunks interleave with: a guarded append of the chat is
        removed with it or refused, unless it saw the marker; its neighbours in a group
        commit (another chat's appends) all stay."""
        log = self.make(tmp_path / "events.db")
        one, two = "1@s.whatsapp.net", "2@s.whatsapp.net"
        log.append(*(message(i, chat=one) for i in range(5000)))
        seen_by: dict[int, int] = {}
        done = threading.Event()

        def guarded() -> None:
            while not done.is_set():
                seen = log.last_seq()
                with contextlib.suppress(Forgotten):
                    for rec in log.append(
                        message(0, chat=one), guard=Guard(frozenset({one}), seen)
                    ):
                        seen_by[rec.seq] = seen

        with appending(log, two) as others:
            threads = [threading.Thread(target=guarded) for _ in range(2)]
            for thread in threads:
                thread.start()
            marker = log.compact("forget", Selection(chats=frozenset({one})))
            done.set()
            for thread in threads:
                thread.join()
        assert marker is not None
        left = [r.seq for r in log.read(chats=[one])]
        assert all(seen_by[seq] >= marker.seq for seq in left)
        assert {r.seq for r in others} <= {r.seq for r in log.read(chats=[two])}

    def test_two_compactions_at_once_count_each_event_once(self, tmp_path: Path) -> None:
        """Racing compactions of the same events: each marker says exactly what it removed."""
        log = self.make(tmp_path / "events.db")
        for start in range(0, 20_000, 5000):
            log.append(*(message(i, chat="1@s.whatsapp.net") for i in range(start, start + 5000)))
        kept = log.append(message(0, chat="2@s.whatsapp.net"))
        markers: list[Recorded | None] = []
        forget = Selection(chats=frozenset({"1@s.whatsapp.net"}))
        threads = [
            threading.Thread(target=lambda: markers.append(log.compact("forget", forget)))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        done = [compacted(m) for m in markers if m is not None]
        assert sum(m.removed for m in done) == 20_000
        assert sum(m.by_type["MessageReceived"] for m in done) == 20_000
        left = [r for r in log.read() if not isinstance(r.event, Compacted)]
        assert left == kept

    def test_duplicate_key_adds_no_row(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        first = log.append(Keyed(message(1), "chat/M1"))[0]
        again = log.append(Keyed(message(1, tag="changed"), "chat/M1"), message(2))
        assert again[0] == first
        assert again[1].seq > first.seq
        assert len(list(log.read())) == 2
        inner = log.append(Keyed(message(3), "k3"), Keyed(message(4), "k3"))
        assert inner[0] == inner[1]

    def test_burst_is_one_timestamp_and_contiguous(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db", clock=FakeClock())
        recs = log.append(*(message(i) for i in range(50)))
        assert [r.seq for r in recs] == list(range(recs[0].seq, recs[0].seq + 50))
        assert {r.ts for r in recs} == {1_764_000_000.0}

    def test_threads_group_commit_without_interleaving(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        results: list[list[Recorded]] = []
        lock = threading.Lock()

        def work(t: int) -> None:
            for b in range(30):
                recs = log.append(*(message(i, tag=f"{t}.{b}.") for i in range(7)))
                with lock:
                    results.append(recs)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(results) == 120
        for recs in results:
            assert [r.seq for r in recs] == list(range(recs[0].seq, recs[0].seq + 7))
        assert len(list(log.read())) == 840

    def test_follower_sees_every_event_once_in_order(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        seen: list[int] = []
        done = threading.Event()

        def follow() -> None:
            after = 0
            while not (done.is_set() and log.last_seq() <= after):
                if log.wait(after, timeout=0.5):
                    for rec in log.read(after):
                        seen.append(rec.seq)
                        after = rec.seq

        reader = threading.Thread(target=follow)
        reader.start()
        writers = [
            threading.Thread(
                target=lambda: [log.append(message(i), message(i)) for i in range(200)]
            )
            for _ in range(3)
        ]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        done.set()
        reader.join(timeout=30)
        assert seen == [r.seq for r in log.read()]
        assert len(seen) == 1200

    def test_subscribers_hear_every_commit(self, tmp_path: Path) -> None:
        log = self.make(tmp_path / "events.db")
        heard: list[int] = []
        stop = log.subscribe(heard.append)
        log.append(message(1))
        log.append(message(2), message(3))
        stop()
        log.append(message(4))
        assert heard == [1, 3]
