"""The daemon's reply latency while its scheduled rotation runs, against a run without one.

The daemon (stdio, fake LLM answering at once) starts on a copy of the
1M-event log with its snapshot, with ``rotation.interval_hours`` set so the
rotation falls due ``ROTATE_AFTER`` seconds after start and ``retention_days``
so it removes the oldest day. Messages go out one every ``GAP`` seconds over
``CHATS`` chats for ``WINDOW`` seconds, which covers the rotation and the
catch-up after it. The baseline is the same traffic on the same copy with the
rotation not due. Goal: p99 within 100 ms of the baseline's.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from bench.daemon import Daemon, TimedServer, app_config, message_line, user_jid
from bench.measure import percentile
from bench.report import Row
from bench.workspace import Workspace, progress
from events.model import Compacted
from events.owner_only import private_dir
from events.sqlite import DB_NAME, SQLiteReader
from events.units import DAY, HOUR

NAME = "compaction"
ROTATE_AFTER = 3.0  # seconds from the daemon's start to its rotation
GAP = 0.05  # seconds between two messages
CHATS = 20  # each chat gets a message every CHATS x GAP = 1 s
GOAL = 0.100  # what a rotation may add to the reply p99
TEXT = "Can you find me a train from Berlin to Munich tomorrow morning?"


def run(ws: Workspace, master: Path, cutoff: float) -> list[Row]:
    window = 12.0 if ws.sizes.history >= 1_000_000 else 6.0
    progress(f"{NAME}: daemon replies for {window:g} s without, then with a rotation")
    calm, _ = _replies(ws, master, cutoff, window, rotate=False)
    busy, removed = _replies(ws, master, cutoff, window, rotate=True)
    note = f"{len(busy)} replies over {window:g} s; the rotation removed {removed:,} events"
    calm_p99 = percentile(calm, 99)
    return [
        Row(
            bench=NAME,
            measure="daemon reply p99 during a scheduled rotation",
            value=percentile(busy, 99) * 1000,
            unit="ms",
            baseline=calm_p99 * 1000,
            baseline_label="no rotation",
            target=(calm_p99 + GOAL) * 1000,
            better="lower",
            note=note,
        ),
        Row(
            bench=NAME,
            measure="daemon slowest reply during a scheduled rotation",
            value=max(busy) * 1000,
            unit="ms",
            baseline=max(calm) * 1000,
            baseline_label="no rotation",
            better="lower",
            note=note,
        ),
    ]


def _replies(
    ws: Workspace, master: Path, cutoff: float, window: float, *, rotate: bool
) -> tuple[list[float], int]:
    """Seconds from each message's stdin line to the reply covering it; events rotated away."""
    folder = ws.scratch(f"{NAME}-daemon")
    store = private_dir(folder / "store")
    shutil.copyfile(master / DB_NAME, store / DB_NAME)
    config = app_config(CHATS)
    interval = ROTATE_AFTER if rotate else 300 * DAY
    config["rotation"] = {
        "retention_days": (time.time() + interval - cutoff) / DAY,
        "interval_hours": interval / HOUR,
    }
    latencies: list[float] = []
    with TimedServer() as server, Daemon(folder, config, server) as daemon:
        pending: dict[str, list[tuple[str, float]]] = {}
        chat_of: dict[str, str] = {}
        first = time.perf_counter()
        count = int(window / GAP)
        for n in range(count):
            time.sleep(max(0.0, first + n * GAP - time.perf_counter()))
            chat = user_jid(n % CHATS)
            msg_id = f"B{n:06d}"
            chat_of[msg_id] = chat
            pending.setdefault(chat, []).append((msg_id, daemon.write(message_line(n, chat, TEXT))))
        while any(pending.values()):
            sent = daemon.next_sent(60.0)
            chat = chat_of[sent.line["reply_to"]]
            # A reply answers its message and any earlier one of the chat still waiting.
            while pending[chat]:
                msg_id, started = pending[chat].pop(0)
                latencies.append(sent.at - started)
                if msg_id == sent.line["reply_to"]:
                    break
        daemon.stop()
    with SQLiteReader(store / DB_NAME) as log:
        top = log.last_seq()
        tail = log.read(after=max(0, top - 5000))
        removed = sum(r.event.removed for r in tail if isinstance(r.event, Compacted))
    return latencies, removed
