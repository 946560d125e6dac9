"""What a durable log adds to the contract: the guarantees hold across processes and kill -9.

Writer processes are started with ``python -m events.durability`` so a
backend is exercised by real, separately killable processes.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from events.model import MessageReceived, Recorded
from events.testing import LogContract, _factory, message


def writer_command(
    factory: str, db: Path, *, tag: str, bursts: int, size: int, synchronous: str = "NORMAL"
) -> list[str]:
    """argv for a writer process that prints ``ok <burst>`` after each commit."""
    return [
        sys.executable,
        "-m",
        "events.durability",
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
    ]


def _writer_main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="events.durability")
    for flag in ("--factory", "--db", "--tag", "--synchronous"):
        p.add_argument(flag, required=True)
    p.add_argument("--bursts", type=int, required=True)
    p.add_argument("--size", type=int, required=True)
    a = p.parse_args(argv)
    log = _factory(a.factory)(Path(a.db), synchronous=a.synchronous, busy_timeout=30.0)
    for b in range(a.bursts):
        log.append(*(message(i, tag=f"{a.tag}.{b}.") for i in range(a.size)))
        sys.stdout.write(f"ok {b}\n")
        sys.stdout.flush()
    log.close()


class DurableLogContract(LogContract):
    """What a durable log adds: the guarantees hold across processes and kill -9.

    ``check_integrity`` is the backend's own consistency check of its storage,
    run after writers were killed mid-burst.
    """

    def check_integrity(self, path: Path) -> None:
        """Nothing to check beyond what the tests read back; backends override."""

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


if __name__ == "__main__":
    _writer_main()
