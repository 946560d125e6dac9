"""A long run through the real daemon: does its memory level off?

Messages go to many chats in waves, each wave answered before the next, and
the daemon's resident memory is read from ``/proc`` after every tenth of the
run. Everything the daemon keeps is bounded by design (per-chat windows, ring
buffers, drained queues); a leak shows as RSS that keeps climbing. The
baseline is the RSS after the first tenth, once every chat has been seen.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.daemon import Daemon, TimedServer, app_config, message_line, user_jid
from bench.report import Row
from bench.workspace import Workspace, progress

NAME = "soak"
SAMPLES = 10
GROWTH_LIMIT = 1.25  # the last sample may be at most 25 % above the one after warm-up
WAVE_TIMEOUT = 60.0


def run(ws: Workspace) -> list[Row]:
    chats, total = ws.sizes.soak_chats, ws.sizes.soak_messages
    progress(f"{NAME}: {total:,} messages over {chats} chats through the daemon")
    config = app_config(chats, max_concurrent_chats=8)
    config["session_memory"] = {"mode": "never", "max_messages": 10}
    rss: list[float] = []
    with TimedServer() as server, Daemon(ws.scratch("soak"), config, server) as daemon:
        started = time.perf_counter()
        sent = 0
        per_sample = max(total // SAMPLES, chats)
        while sent < total:
            wave = min(chats, total - sent)
            daemon.write(
                b"".join(
                    message_line(sent + n, user_jid(n), f"message {sent + n}") for n in range(wave)
                )
            )
            for _ in range(wave):
                daemon.next_sent(WAVE_TIMEOUT)
            sent += wave
            if sent % per_sample < wave:
                rss.append(_rss_mb(daemon.pid))
        elapsed = time.perf_counter() - started
        status = daemon.stop()
    note = f"{total:,} messages, {chats} chats, RSS after each tenth: " + " ".join(
        f"{mb:.0f}" for mb in rss
    )
    if status != 0:
        note += f"; daemon exit status {status}"
    return [
        Row(
            bench=NAME,
            measure="daemon RSS at the end of the run",
            value=rss[-1],
            unit="MB",
            baseline=rss[0],
            baseline_label="RSS after the first tenth",
            target=rss[0] * GROWTH_LIMIT,
            better="lower",
            note=note,
        ),
        Row(
            bench=NAME,
            measure="messages answered per second",
            value=total / elapsed,
            unit="ev/s",
            note="waves of one message per chat, 8 chats at a time, instant LLM",
        ),
    ]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
