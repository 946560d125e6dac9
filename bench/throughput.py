"""Messages answered per second through the real daemon, against the LLM calls alone.

20,000 messages over 200 chats go through ``python -m pipeline run
--transport stdio`` (debounce 0, instant fake LLM, ``max_concurrent_chats``
8), in waves of one message per chat, each wave answered before the next; the
daemon's RSS is read after every tenth. The baseline is what the daemon's
work comes down to: the same number of LLM requests (the body the daemon
last sent) POSTed by httpx to the same fake server, 8 at a time. The two
alternate a tenth at a time (the daemon idle meanwhile), so a slow spell of
the machine hits both: run one after the other, the baseline alone moved
from 710 to 900 requests/s between runs, and the ratio from 0.55x to 0.66x.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx

from bench.daemon import Daemon, TimedServer, app_config, message_line, user_jid
from bench.report import Row
from bench.workspace import Workspace, progress
from tests.llm_server import TEST_KEY

NAME = "throughput"
CONCURRENCY = 8
SAMPLES = 10
TARGET_RATIO = 0.6  # of the direct calls' rate
GROWTH_LIMIT = 1.25
WAVE_TIMEOUT = 60.0


def run(ws: Workspace) -> list[Row]:
    chats, total = ws.sizes.throughput_chats, ws.sizes.throughput_messages
    progress(f"{NAME}: {total:,} messages over {chats} chats, through the daemon and direct")
    config = app_config(chats, max_concurrent_chats=CONCURRENCY)
    config["session_memory"] = {"mode": "never", "max_messages": 10}
    # A fresh client each tenth connects 8 at once: more than http.server's accept queue of 5.
    server = TimedServer(backlog=CONCURRENCY * 2)
    with server, Daemon(ws.scratch("throughput"), config, server) as daemon:
        elapsed, direct, rss = _alternating(daemon, server, chats, total)
        status = daemon.stop()
    rate, direct_rate = total / elapsed, total / direct
    note = f"{total:,} messages, {chats} chats, {CONCURRENCY} at a time, instant LLM"
    if status != 0:
        note += f"; daemon exit status {status}"
    return [
        Row(
            bench=NAME,
            measure="messages answered per second",
            value=rate,
            unit="ev/s",
            baseline=direct_rate,
            baseline_label="httpx requests/s",
            target=direct_rate * TARGET_RATIO,
            note=note,
        ),
        Row(
            bench=NAME,
            measure="daemon RSS at the end of the run",
            value=rss[-1],
            unit="MB",
            baseline=rss[0],
            baseline_label="RSS after the first tenth",
            target=rss[0] * GROWTH_LIMIT,
            better="lower",
            note="after each tenth: " + " ".join(f"{mb:.0f}" for mb in rss),
        ),
    ]


def _alternating(
    daemon: Daemon, server: TimedServer, chats: int, total: int
) -> tuple[float, float, list[float]]:
    """Seconds through the daemon and straight from httpx, a tenth of each in turn;
    the daemon's RSS after each of its tenths."""
    rss: list[float] = []
    per_sample = max(total // SAMPLES, chats)
    through = direct = 0.0
    sent = 0
    while sent < total:
        block = min(per_sample, total - sent)
        through += _through_daemon(daemon, chats, sent, block)
        rss.append(_rss_mb(daemon.pid))
        request = server.requests[-1]  # the body the daemon sent last
        direct += anyio.run(_direct, server.base_url, request.path, request.raw, block)
        sent += block
    return through, direct, rss


def _through_daemon(daemon: Daemon, chats: int, first: int, count: int) -> float:
    """Seconds for messages ``first`` to ``first + count`` to be answered, in waves."""
    started = time.perf_counter()
    sent = first
    while sent < first + count:
        wave = min(chats, first + count - sent)
        lines = (message_line(sent + n, user_jid(n), f"message {sent + n}") for n in range(wave))
        daemon.write(b"".join(lines))
        for _ in range(wave):
            daemon.next_sent(WAVE_TIMEOUT)
        sent += wave
    return time.perf_counter() - started


async def _direct(base_url: str, path: str, body: bytes, total: int) -> float:
    """Seconds for ``total`` POSTs of ``body``, ``CONCURRENCY`` in flight, one shared client."""
    headers = {"authorization": f"Bearer {TEST_KEY}", "content-type": "application/json"}
    left = iter(range(total))
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:

        async def worker() -> None:
            for _ in left:
                (await client.post(path, content=body)).raise_for_status()

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(CONCURRENCY):
                tg.start_soon(worker)
        return time.perf_counter() - started


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
