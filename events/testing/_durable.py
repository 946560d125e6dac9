"""What a durable log adds to the contract: the guarantees hold across processes and kill -9.

Writer and compactor processes run ``events.testing._processes``, so a
backend is exercised by real, separately killable processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from events.model import Compacted, MessageReceived, Recorded
from events.protocol import LogError, LogWriter, Selection
from events.testing._contract import LogContract, appending, compacted, message


def writer_command(
    factory: str,
    db: Path,
    *,
    tag: str,
    bursts: int,
    size: int,
    synchronous: str = "NORMAL",
    busy_timeout: float = 30.0,
) -> list[str]:
    """argv for a writer process that prints ``ok <burst>`` after each commit."""
    return [
        sys.executable,
        "-m",
        "events.testing._processes",
        "--factory",
        factory,
        "--db",
        str(db),
        "--tag",
        tag,
        "--bursts",
        str(bursts),
        "--size",
        str(size),
        "--synchronous",
        synchronous,
        "--busy-timeout",
        str(busy_timeout),
    ]


def compactor_command(
    factory: str, db: Path, *, chat: str, stop_after: int = 0, stop_at: int = 0
) -> list[str]:
    """argv for a process that forgets ``chat``, printing ``chunk <removed>`` after each chunk.

    With ``stop_after`` it prints ``stopped`` after that many chunks and waits
    to be killed, between two chunks; with ``stop_at`` the same once that many
    events went (all of them: killed after its last delete, before its marker);
    otherwise it prints ``done <seq>`` (the marker's, 0 for none) at the end.
    """
    return [
        *(sys.executable, "-m", "events.testing._processes", "compact"),
        *("--factory", factory, "--db", str(db), "--chat", chat),
        *("--stop-after", str(stop_after), "--stop-at", str(stop_at)),
    ]


class DurableLogContract(LogContract):
    """What a durable log adds: the guarantees hold across processes and kill -9.

    ``check_integrity`` is the backend's own consistency check of its storage,
    run after writers were killed mid-burst.
    """

    def check_integrity(self, path: Path) -> None:
        """Nothing to check beyond what the tests read back; backends override."""

    @contextlib.contextmanager
    def markers_refused(self, path: Path) -> Iterator[None]:
        """While open, recording a ``Compacted`` in the log at ``path`` fails as on a full
        disk, by the backend's own means (a trigger), whichever code path writes it."""
        raise NotImplementedError
        yield

    def test_two_processes_lose_nothing_and_never_interleave(self, tmp_path: Path) -> None:
        db = tmp_path / "events.db"
        self.make(db).close()
        procs = [
            subprocess.Popen(
                writer_command(self.factory, db, tag=tag, bursts=60, size=25),
                stdout=subprocess.PIPE,
                text=True,
            )
            for tag in ("a", "b")
        ]
        for p in procs:
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0
            assert out.count("ok ") == 60
        rows = list(self.make(db).read())
        assert len(rows) == 2 * 60 * 25
        _assert_bursts_contiguous(rows, 25)

    def test_kill_minus_9_mid_burst_is_all_or_nothing(self, tmp_path: Path) -> None:
        db = tmp_path / "events.db"
        self.make(db).close()
        for round_ in range(3):
            with subprocess.Popen(
                writer_command(self.factory, db, tag=f"k{round_}", bursts=10_000, size=500),
                stdout=subprocess.PIPE,
                text=True,
            ) as proc:
                assert proc.stdout is not None
                acked = [proc.stdout.readline() for _ in range(5)]
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            mine = f"k{round_}."
            rows = [r for r in self.make(db).read() if _msg_id(r).startswith(mine)]
            bursts = _assert_bursts_contiguous(rows, 500)
            assert {f"k{round_}.{line.split()[1]}" for line in acked} <= bursts
        self.check_integrity(db)

    def test_follower_sees_four_writer_processes_exactly_once_in_order(
        self, tmp_path: Path
    ) -> None:
        """The tailing gap: a seq that commits late must not be passed by a reader."""
        db = tmp_path / "events.db"
        self.make(db).close()
        follower = self.make(db)  # its own connection, as another process's would be
        seen: list[int] = []
        writers_done = threading.Event()

        def follow() -> None:
            after = 0
            while True:
                finished = writers_done.is_set()  # read before the last pass, not after
                if follower.wait(after, timeout=0.05) or finished:
                    for rec in follower.read(after):
                        seen.append(rec.seq)
                        after = rec.seq
                if finished:
                    return

        reader = threading.Thread(target=follow)
        reader.start()
        procs = [
            subprocess.Popen(
                writer_command(self.factory, db, tag=f"w{n}", bursts=150, size=5),
                stdout=subprocess.DEVNULL,
            )
            for n in range(4)
        ]
        try:
            for p in procs:
                assert p.wait(timeout=120) == 0
        finally:
            writers_done.set()
            reader.join(timeout=60)
        rows = list(self.make(db).read())
        assert len(rows) == 4 * 150 * 5
        _assert_bursts_contiguous(rows, 5)
        assert seen == [r.seq for r in rows]  # none skipped, none twice, in log order

    def test_appends_of_another_process_never_fail_while_compacting(self, tmp_path: Path) -> None:
        """A writer process with the default busy timeout gets in between the chunks."""
        db = tmp_path / "events.db"
        log = self.make(db)
        _fill(log, OLD, 30_000)
        with subprocess.Popen(
            writer_command(self.factory, db, tag="w", bursts=400, size=3, busy_timeout=5.0),
            stdout=subprocess.PIPE,
            text=True,
        ) as writer:
            assert writer.stdout is not None
            assert writer.stdout.readline() == "ok 0\n"  # it is appending: compact now
            marker = log.compact("forget", Selection(chats=frozenset({OLD})))
            # Not communicate(timeout=...): it reads the pipe past what readline buffered.
            out = writer.stdout.read()
            writer.wait(timeout=120)
        assert writer.returncode == 0
        assert out.count("ok ") == 399
        assert compacted(marker).removed == 30_000
        rows = list(log.read())
        _assert_bursts_contiguous([r for r in rows if not isinstance(r.event, Compacted)], 3)
        assert len(rows) == 400 * 3 + 1
        assert [r for r in rows if isinstance(r.event, Compacted)] == [marker]

    def test_compaction_killed_between_chunks_resumes_and_marks_once(self, tmp_path: Path) -> None:
        """kill -9 of a compacting process: the log stays correct; compacting again finishes."""
        db = tmp_path / "events.db"
        log = self.make(db)
        _fill(log, OLD, 30_000)
        kept = log.append(*(message(i, chat=KEPT) for i in range(100)))
        with (
            appending(log, KEPT) as appended,
            subprocess.Popen(
                compactor_command(self.factory, db, chat=OLD, stop_after=2),
                stdout=subprocess.PIPE,
                text=True,
            ) as proc,
        ):
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(3)]
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        assert lines[2] == "stopped\n"
        gone = int(lines[1].split()[1])
        assert 0 < gone < 30_000
        rows = list(log.read())
        assert not any(isinstance(r.event, Compacted) for r in rows)
        assert len([r for r in rows if r.chat == OLD]) == 30_000 - gone
        marker = log.compact("forget", Selection(chats=frozenset({OLD})))
        # One marker for the whole compaction: what the killed process removed counts too.
        assert compacted(marker).removed == 30_000
        assert compacted(marker).by_chat == {OLD: 30_000}
        assert [r.seq for r in log.read()] == [r.seq for r in [*kept, *appended, marker] if r]

    def test_a_compaction_whose_marker_failed_is_finished_by_the_next(self, tmp_path: Path) -> None:
        """A full disk at the marker: the next compaction records it, and no snapshot
        keeps what went (a forgotten chat's texts)."""
        db = tmp_path / "events.db"
        log = self.make(db)
        _fill(log, OLD, 3000)
        kept = log.append(*(message(i, chat=KEPT) for i in range(100)))
        log.save_snapshot("projections", 3, log.last_seq(), b"holds the forgotten chat")
        forget = Selection(chats=frozenset({OLD}))
        failed: LogError | None = None
        with self.markers_refused(db):
            try:
                log.compact("forget", forget)
            except LogError as exc:
                failed = exc
        assert failed is not None
        assert "\n" not in str(failed)
        again = self.make(db)  # the next run: a new process opens the log
        marker = again.compact("forget", forget)
        assert compacted(marker).removed == 3000
        assert (compacted(marker).by_chat, compacted(marker).chats) == ({OLD: 3000}, [OLD])
        rows = list(again.read())
        assert [r for r in rows if isinstance(r.event, Compacted)] == [marker]
        assert [r for r in rows if not isinstance(r.event, Compacted)] == kept
        assert again.load_snapshot("projections", 3) is None
        assert again.compact("forget", forget) is None
        assert again.finish_compactions() == []

    def test_the_daily_rotation_finishes_a_forget_a_failure_left(self, tmp_path: Path) -> None:
        """Any compaction finishes those left first: the running daemon's next rotation
        records the forget's marker even when it removes nothing itself."""
        db = tmp_path / "events.db"
        log = self.make(db)
        _fill(log, OLD, 500)
        kept = log.append(message(0, chat=KEPT))
        with self.markers_refused(db), contextlib.suppress(LogError):
            log.compact("forget", Selection(chats=frozenset({OLD})))
        assert log.compact("rotation", Selection(older_than=0.0)) is None
        (marker,) = (r for r in log.read() if isinstance(r.event, Compacted))
        assert (compacted(marker).reason, compacted(marker).removed) == ("forget", 500)
        assert [r for r in log.read() if not isinstance(r.event, Compacted)] == kept
        log.save_snapshot("projections", 3, marker.seq, b"absorbed")
        assert log.load_snapshot("projections", 3) == (marker.seq, b"absorbed")

    def test_a_compaction_killed_before_its_marker_is_finished_at_the_next_start(
        self, tmp_path: Path
    ) -> None:
        """kill -9 after the last delete: the next start records the marker, drops the
        snapshots that held what went, and nothing else goes."""
        db = tmp_path / "events.db"
        log = self.make(db)
        _fill(log, OLD, 30_000)
        kept = log.append(*(message(i, chat=KEPT) for i in range(100)))
        log.save_snapshot("projections", 3, log.last_seq(), b"holds the forgotten chat")
        with subprocess.Popen(
            compactor_command(self.factory, db, chat=OLD, stop_at=30_000),
            stdout=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            while (line := proc.stdout.readline()) not in ("stopped\n", ""):
                assert line.startswith("chunk "), line
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        assert line == "stopped\n"
        assert not any(r.chat == OLD for r in log.read())
        again = self.make(db)  # the daemon starting again
        (marker,) = again.finish_compactions()
        assert compacted(marker).removed == 30_000
        assert compacted(marker).by_chat == {OLD: 30_000}
        rows = list(again.read())
        assert [r for r in rows if isinstance(r.event, Compacted)] == [marker]
        assert [r for r in rows if not isinstance(r.event, Compacted)] == kept
        assert again.load_snapshot("projections", 3) is None
        assert again.finish_compactions() == []
        assert again.compact("forget", Selection(chats=frozenset({OLD}))) is None

    def test_another_process_compacts_while_threads_append(self, tmp_path: Path) -> None:
        db = tmp_path / "events.db"
        log = self.make(db)
        _fill(log, OLD, 30_000)
        with appending(log, KEPT) as appended:
            done = subprocess.run(
                compactor_command(self.factory, db, chat=OLD),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        assert done.returncode == 0, done.stderr
        marker_seq = int(done.stdout.splitlines()[-1].split()[1])
        rows = list(log.read())
        assert [r.seq for r in rows] == sorted([r.seq for r in appended] + [marker_seq])
        (marker,) = (r for r in rows if isinstance(r.event, Compacted))
        assert (marker.seq, compacted(marker).removed) == (marker_seq, 30_000)


OLD = "491700000001@s.whatsapp.net"  # the chat compacted away
KEPT = "491700000002@s.whatsapp.net"


def _fill(log: LogWriter, chat: str, count: int) -> None:
    for start in range(0, count, 5000):
        log.append(*(message(i, chat=chat) for i in range(start, min(count, start + 5000))))


def _msg_id(rec: Recorded) -> str:
    assert isinstance(rec.event, MessageReceived)
    return rec.event.msg_id


def _assert_bursts_contiguous(rows: list[Recorded], size: int) -> set[str]:
    """Every burst is complete and occupies consecutive positions; returns burst ids."""
    by_burst: dict[str, list[int]] = {}
    for r in rows:
        burst = _msg_id(r).rsplit(".", 1)[0]
        by_burst.setdefault(burst, []).append(r.seq)
    for burst, seqs in by_burst.items():
        assert len(seqs) == size, f"burst {burst} has {len(seqs)} of {size} events"
        assert seqs == list(range(seqs[0], seqs[0] + size)), f"burst {burst} interleaved"
    return set(by_burst)
