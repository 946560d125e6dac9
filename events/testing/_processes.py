"""The writer and compactor processes the durable contract kills: ``python -m`` this module."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from events.protocol import Chunk, Selection
from events.testing._contract import _factory, message


def _compactor_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="events.testing._processes compact")
    for flag in ("--factory", "--db", "--chat"):
        p.add_argument(flag, required=True)
    p.add_argument("--stop-after", type=int, default=0)
    p.add_argument("--stop-at", type=int, default=0)
    a = p.parse_args(argv)
    log = _factory(a.factory)(Path(a.db))
    chunks = 0

    def chunk(done: Chunk) -> None:
        nonlocal chunks
        chunks += 1
        sys.stdout.write(f"chunk {done.removed}\n")
        if chunks == a.stop_after or (a.stop_at and done.removed >= a.stop_at):
            sys.stdout.write("stopped\n")
            sys.stdout.flush()
            threading.Event().wait()  # until killed
        sys.stdout.flush()

    marker = log.compact("forget", Selection(chats=frozenset({a.chat})), progress=chunk)
    sys.stdout.write(f"done {marker.seq if marker else 0}\n")
    log.close()


def _writer_main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="events.testing._processes")
    for flag in ("--factory", "--db", "--tag", "--synchronous"):
        p.add_argument(flag, required=True)
    p.add_argument("--bursts", type=int, required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--busy-timeout", type=float, default=30.0)
    a = p.parse_args(argv)
    log = _factory(a.factory)(Path(a.db), synchronous=a.synchronous, busy_timeout=a.busy_timeout)
    for b in range(a.bursts):
        log.append(*(message(i, tag=f"{a.tag}.{b}.") for i in range(a.size)))
        sys.stdout.write(f"ok {b}\n")
        sys.stdout.flush()
    log.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["compact"]:
        _compactor_main(sys.argv[2:])
    else:
        _writer_main()
