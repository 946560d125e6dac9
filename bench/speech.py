"""Voice replies through the real daemon: what speaking costs a reply beyond the call.

The same messages, one at a time, through two stdio daemons on the same fake
LLM server (which also speaks OpenAI's ``/v1/audio/speech``, answering real
Ogg Opus): one with ``voice_replies.mode`` ``never``, one ``always``. The
figure is the spoken reply's p50/p99, from the stdin write to its ``sent``
line; the baseline is the text reply's, at the same percentile, plus the
speech call itself (a direct httpx POST of the same body to the same server,
its round trip). The target: no more than the baseline plus 20 ms, which is
what storing the file (written and fsynced), recording ``SpeechSynthesized``
and reading the file's length may add. The two daemons run in alternating
rounds, so a slow spell hits both.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.daemon import Daemon, TimedServer, app_config, message_line, user_jid
from bench.measure import percentile
from bench.report import Row
from bench.workspace import Workspace, progress
from tests.llm_server import TEST_KEY

NAME = "speech"
WARM_UP = 3
ROUNDS = 3
OVERHEAD_MS = 20.0
TIMEOUT = 60.0


def run(ws: Workspace) -> list[Row]:
    count = max(ws.sizes.messages // 4, 10)
    per_round = max(count // ROUNDS, 1)
    progress(f"{NAME}: {per_round * ROUNDS} messages each, spoken and as text, in {ROUNDS} rounds")
    spoken: list[float] = []
    texted: list[float] = []
    with TimedServer() as server:
        env = {"TTS_BASE_URL": f"{server.base_url}/v1", "TTS_API_KEY": TEST_KEY}
        folders = {mode: ws.scratch(f"speech-{mode}") for mode in ("always", "never")}
        with (
            Daemon(folders["always"], _config("always"), server, env) as voice,
            Daemon(folders["never"], _config("never"), server, env) as text,
        ):
            for n in range(WARM_UP):
                _reply(voice, n, spoken=True)
                _reply(text, n, spoken=False)
            for r in range(ROUNDS):
                for n in range(per_round):
                    number = WARM_UP + r * per_round + n
                    spoken.append(_reply(voice, number, spoken=True))
                    texted.append(_reply(text, number, spoken=False))
        calls = _direct_calls(server, per_round * ROUNDS)
    return [_row(q, spoken, texted, calls) for q in (50, 99)]


def _row(q: int, spoken: list[float], texted: list[float], calls: list[float]) -> Row:
    baseline = (percentile(texted, q) + percentile(calls, q)) * 1000
    return Row(
        bench=NAME,
        measure=f"spoken reply: stdin -> voice note sent p{q}",
        value=percentile(spoken, q) * 1000,
        unit="ms",
        baseline=baseline,
        baseline_label="text reply + the speech call (httpx round trip)",
        target=baseline + OVERHEAD_MS,
        better="lower",
        note=f"{len(spoken)} replies each after {WARM_UP} warm-up; text p{q} "
        f"{percentile(texted, q) * 1000:.1f} ms, speech call p{q} "
        f"{percentile(calls, q) * 1000:.1f} ms",
    )


def _reply(daemon: Daemon, n: int, *, spoken: bool) -> float:
    """Seconds from writing a message to its (first) sent line; the rest is read too."""
    started = daemon.write(message_line(n, user_jid(0), f"Say number {n}, please."))
    sent = daemon.next_sent(TIMEOUT)
    if sent.line.get("reply_to") != f"B{n:06d}" or ("media" in sent.line) is not spoken:
        raise RuntimeError(f"unexpected daemon output: {sent.line}")
    if spoken:
        daemon.next_sent(TIMEOUT)  # the sources, as text
    return sent.at - started


def _direct_calls(server: TimedServer, count: int) -> list[float]:
    """The speech request the daemon makes, straight from httpx, kept alive."""
    body: dict[str, Any] = {
        "model": "gpt-4o-mini-tts",
        "input": "Echo: Say number 1, please.",
        "voice": "alloy",
        "response_format": "opus",
    }
    spans = []
    headers = {"authorization": f"Bearer {TEST_KEY}"}
    with httpx.Client(base_url=server.base_url, headers=headers) as client:
        for n in range(WARM_UP + count):
            started = time.perf_counter()
            client.post("/v1/audio/speech", json=body).raise_for_status()
            if n >= WARM_UP:
                spans.append(time.perf_counter() - started)
    return spans


def _config(mode: str) -> dict[str, Any]:
    config = app_config(1)
    config["voice_replies"] = {"mode": mode}
    return config
