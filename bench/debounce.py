"""Reply latency with a debounce: a reply is due at its deadline, not at the next poll.

The daemon runs the shipped ``polling.interval_seconds`` (5 s) with
``debounce_seconds`` D of 0.5 and 2 against the fake LLM, which answers at
once. Messages go out one every ``GAP`` seconds, each to a chat whose last
reply is already out, so several debounce windows are open at any moment (as
in real use) and every message is its own turn. Latency is stdin write ->
reply line on stdout. The baseline is D itself, the least any reply can take;
the goal is p99 <= D + 50 ms: the poll interval must never show.
"""

from __future__ import annotations

import math
import time

from bench.daemon import Daemon, TimedServer, app_config, message_line, user_jid
from bench.measure import percentile
from bench.report import Row
from bench.workspace import Workspace, progress

NAME = "debounce"
INTERVAL = 5.0  # the shipped polling.interval_seconds
DEBOUNCES = (0.5, 2.0)
GOAL = 0.050  # what the daemon may add to the debounce, at p99
GAP = 0.1  # seconds between two messages
WARM_UP = 5  # first connections and imports; not counted (as in ``latency``)
TEXT = "Can you find me a train from Berlin to Munich tomorrow morning?"


def run(ws: Workspace) -> list[Row]:
    count = ws.sizes.debounced
    rows: list[Row] = []
    for debounce in DEBOUNCES:
        progress(f"{NAME}: {count} messages, debounce {debounce:g} s, interval {INTERVAL:g} s")
        latencies, status = _latencies(ws, debounce, count)
        note = f"{count} messages after {WARM_UP} warm-up, one every {GAP:g} s"
        if status != 0:
            note += f"; daemon exit status {status}"
        for q in (50, 99):
            rows.append(
                Row(
                    bench=NAME,
                    measure=f"stdin -> reply, debounce {debounce:g} s, p{q}",
                    value=percentile(latencies, q) * 1000,
                    unit="ms",
                    baseline=debounce * 1000,
                    baseline_label="the debounce (least possible)",
                    target=(debounce + GOAL) * 1000 if q == 99 else None,
                    better="lower",
                    note=note,
                )
            )
    return rows


def _latencies(ws: Workspace, debounce: float, count: int) -> tuple[list[float], int]:
    # Enough chats that a chat's next message comes after its last reply.
    chats = math.ceil((debounce + 1.0) / GAP)
    config = app_config(chats)
    config["polling"] = {"interval_seconds": INTERVAL, "debounce_seconds": debounce}
    with TimedServer() as server, Daemon(ws.scratch(NAME), config, server) as daemon:
        started: dict[str, float] = {}
        first = time.perf_counter()
        for n in range(WARM_UP + count):
            time.sleep(max(0.0, first + n * GAP - time.perf_counter()))
            started[f"B{n:06d}"] = daemon.write(message_line(n, user_jid(n % chats), TEXT))
        latencies = []
        for _ in range(WARM_UP + count):
            sent = daemon.next_sent(debounce + INTERVAL * 4)
            msg_id = sent.line["reply_to"]
            if int(msg_id[1:]) >= WARM_UP:
                latencies.append(sent.at - started[msg_id])
        status = daemon.stop()
    return latencies, status
