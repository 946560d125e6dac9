"""Many chats at once against a slow LLM: does ``max_concurrent_chats`` fill its slots?

Every chat sends one message at the same moment and every answer takes
``llm_delay`` seconds, so the best possible wall time is
``ceil(chats / max_concurrent_chats) * llm_delay``; that ideal is the baseline.
One warm-up chat is answered first: until a call has reported its cost the
daily budget lets only one call out at a time (a fresh store's first call).
"""

from __future__ import annotations

import math

from bench.daemon import Daemon, TimedServer, app_config, message_line, user_jid
from bench.report import Row
from bench.workspace import Workspace, progress
from tests.llm_server import Reply

NAME = "concurrency"
LIMIT = 8  # polling.max_concurrent_chats
TOLERANCE = 1.15  # within 15 % of the ideal counts as meeting it


def run(ws: Workspace) -> list[Row]:
    chats, delay = ws.sizes.chats, ws.sizes.llm_delay
    ideal = math.ceil(chats / LIMIT) * delay
    progress(f"{NAME}: {chats} chats at once, {delay:g} s LLM, {LIMIT} at a time")
    with TimedServer() as server:
        config = app_config(chats + 1, max_concurrent_chats=LIMIT)
        with Daemon(ws.scratch("concurrency"), config, server) as daemon:
            daemon.write(message_line(chats, user_jid(chats), "warming up"))
            daemon.next_sent(30)
            warm_up = len(server.arrivals())
            server.script(*[Reply(delay=delay)] * chats)
            lines = b"".join(
                message_line(n, user_jid(n), f"hello from chat {n}") for n in range(chats)
            )
            started = daemon.write(lines)
            replies = [daemon.next_sent(ideal * 4 + 30) for _ in range(chats)]
            status = daemon.stop()
        arrivals = server.arrivals()[warm_up:]
    wall = max(sent.at for sent in replies) - started
    note = f"{chats} chats x 1 message, {delay:g} s per answer, max_concurrent_chats {LIMIT}"
    if status != 0:
        note += f"; daemon exit status {status}"
    return [
        Row(
            bench=NAME,
            measure="wall time, first stdin line -> last reply",
            value=wall,
            unit="s",
            baseline=ideal,
            baseline_label="ideal ceil(chats/limit) x delay",
            target=ideal * TOLERANCE,
            better="lower",
            note=note,
        ),
        Row(
            bench=NAME,
            measure="peak LLM requests in flight",
            value=_peak(arrivals, delay),
            unit="calls",
            baseline=LIMIT,
            baseline_label="max_concurrent_chats",
            target=LIMIT,
            better="lower",
            note="requests arrived within one answer delay of each other",
        ),
    ]


def _peak(arrivals: list[float], delay: float) -> int:
    """Most requests that arrived within ``delay`` of one another: each was still being answered."""
    ordered = sorted(arrivals)
    return max((sum(1 for t in ordered if a - delay < t <= a) for a in ordered), default=0)
