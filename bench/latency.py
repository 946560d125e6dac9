"""Per-message latency through the real daemon, one message at a time, debounce 0.

Two spans per message: stdin line written -> the LLM request reaching the
fake server (intake, decision, ``LlmRequested`` commit, HTTP), and stdin ->
the reply on stdout (adding the answer, ``ReplyPlanned``, sending and
``ReplySent``). The baseline is the fake server alone: a direct httpx POST of
the same request body, timed to arrival and to the full response.
"""

from __future__ import annotations

import time

import httpx

from bench.daemon import Daemon, TimedServer, app_config, message_line, user_jid
from bench.measure import percentile
from bench.report import Row
from bench.workspace import Workspace, progress
from tests.llm_server import TEST_KEY

NAME = "latency"
WARM_UP = 5  # first connections and imports; not counted
TEXT = "Can you find me a train from Berlin to Munich tomorrow morning?"
REPLY_TIMEOUT = 30.0


class Spans:
    """Seconds from the start of each message to the request's arrival and to the reply."""

    def __init__(self) -> None:
        self.to_request: list[float] = []
        self.to_reply: list[float] = []


def run(ws: Workspace) -> list[Row]:
    count = ws.sizes.messages
    progress(f"{NAME}: {count} messages one at a time through the daemon")
    with TimedServer() as server:
        with Daemon(ws.scratch("latency"), app_config(1), server) as daemon:
            daemon_spans = _through_daemon(daemon, server, count)
            status = daemon.stop()
        request = server.requests[-1]
        direct = _direct(server, request.path, request.raw, count)
    note = f"{count} messages after {WARM_UP} warm-up"
    if status != 0:
        note += f"; daemon exit status {status}"
    spans = (
        (
            "stdin -> LLM request",
            daemon_spans.to_request,
            direct.to_request,
            "httpx POST -> arrival",
        ),
        ("stdin -> stdout reply", daemon_spans.to_reply, direct.to_reply, "httpx POST round trip"),
    )
    return [
        _row(f"{what} p{q}", ours, base, q=q, label=label, note=note)
        for q in (50, 99)
        for what, ours, base, label in spans
    ]


def _through_daemon(daemon: Daemon, server: TimedServer, count: int) -> Spans:
    spans = Spans()
    chat = user_jid(0)
    for n in range(WARM_UP + count):
        seen = len(server.arrivals())
        started = daemon.write(message_line(n, chat, TEXT))
        sent = daemon.next_sent(REPLY_TIMEOUT)
        if sent.line.get("reply_to") != f"B{n:06d}":
            raise RuntimeError(f"unexpected daemon output: {sent.line}")
        arrivals = server.arrivals()
        if len(arrivals) != seen + 1:
            raise RuntimeError(f"{len(arrivals) - seen} LLM requests for one message")
        if n >= WARM_UP:
            spans.to_request.append(arrivals[seen] - started)
            spans.to_reply.append(sent.at - started)
    return spans


def direct_arrivals(server: TimedServer, path: str, body: bytes, count: int) -> list[float]:
    """Seconds from a direct POST of ``body`` to its arrival, ``count`` times after warm-up."""
    return _direct(server, path, body, count).to_request


def _direct(server: TimedServer, path: str, body: bytes, count: int) -> Spans:
    """The same POST straight from httpx, over a kept-alive connection like the daemon's."""
    spans = Spans()
    headers = {"authorization": f"Bearer {TEST_KEY}", "content-type": "application/json"}
    with httpx.Client(base_url=server.base_url, headers=headers) as client:
        for n in range(WARM_UP + count):
            seen = len(server.arrivals())
            started = time.perf_counter()
            client.post(path, content=body).raise_for_status()
            done = time.perf_counter()
            if n >= WARM_UP:
                spans.to_request.append(server.arrivals()[seen] - started)
                spans.to_reply.append(done - started)
    return spans


def _row(
    measure: str, ours: list[float], base: list[float], *, q: float, label: str, note: str
) -> Row:
    return Row(
        bench=NAME,
        measure=measure,
        value=percentile(ours, q) * 1000,
        unit="ms",
        baseline=percentile(base, q) * 1000,
        baseline_label=label,
        better="lower",
        note=note,
    )
