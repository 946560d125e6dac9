"""``/healthz`` from the log and the daemon, and ``/metrics`` read by prometheus-client's parser."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from events.backends import open_log, open_reader
from events.model import (
    AccountRestricted,
    LlmCompleted,
    LlmFailed,
    MessageReceived,
    MessageSkipped,
    ReplyPlanned,
    ReplySent,
    TransportStatus,
)
from pipeline.daemon import DaemonLock
from pipeline.tools.web import Console, DaemonProbe, create_app
from tests.web.conftest import WebStore
from tests.web.test_pages import asgi_client

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


class Probe:
    def __init__(self, problem: str | None) -> None:
        self._problem = problem

    def problem(self) -> str | None:
        return self._problem


@pytest.fixture
def store(web_store: WebStore, tmp_path: Path) -> Path:
    """A copy of the recorded store whose log ends as a running daemon's does: connected."""
    copied = web_store.recording.copy(tmp_path / "copy").store
    with open_log(copied) as log:
        log.append(TransportStatus(state="connected", detail="stdio"))
    return copied


async def healthz(store: Path, probe: DaemonProbe | None = None) -> httpx.Response:
    console = Console(store, probe=probe)
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            return await client.get("/healthz")
    finally:
        console.close()


async def test_a_store_no_daemon_runs_on_is_unhealthy(store: Path):
    response = await healthz(store)
    assert response.status_code == 503
    assert response.text.splitlines() == [
        f"unhealthy: daemon: no daemon is running on {store}",
        f"daemon: FAIL: no daemon is running on {store}",
        "connection: ok: connected (stdio)",
        "queue: ok: no message waiting",
        "account: ok: not restricted",
    ]


async def test_a_daemon_holding_the_store_lock_is_seen_from_outside(store: Path):
    lock = DaemonLock(store)
    lock.acquire()
    try:
        response = await healthz(store)
    finally:
        lock.release()
    assert response.status_code == 200
    assert response.text.splitlines()[:2] == [
        "ok: all checks pass",
        f"daemon: ok: running (pid {os.getpid()})",
    ]


async def test_inside_run_the_daemon_answers_for_its_agent_loop(store: Path):
    alive = await healthz(store, Probe(None))
    assert alive.status_code == 200
    assert "daemon: ok: agent loop running (this process)" in alive.text
    ended = await healthz(store, Probe("the agent loop has ended"))
    assert ended.status_code == 503
    assert ended.text.startswith("unhealthy: daemon: the agent loop has ended\n")


async def test_a_lost_connection_is_unhealthy_with_its_detail(store: Path):
    with open_log(store) as log:
        log.append(TransportStatus(state="disconnected", detail="network is unreachable"))
    response = await healthz(store, Probe(None))
    assert response.status_code == 503
    assert response.text.startswith(
        "unhealthy: connection: disconnected (network is unreachable)\n"
    )


async def test_a_restricted_account_is_unhealthy_and_counted(store: Path):
    with open_log(store) as log:
        log.append(AccountRestricted(code=463, until=time.time() + 3600, detail="timelock"))
    console = Console(store, probe=Probe(None))
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            response, metrics = await client.get("/healthz"), await client.get("/metrics")
    finally:
        console.close()

    assert response.status_code == 503
    assert response.text.startswith("unhealthy: account: restricted by WhatsApp since ")
    assert "(error 463, until " in response.text
    families = {f.name: f.samples for f in text_string_to_metric_families(metrics.text)}
    assert value(families["wabot_account_restricted"]) == 1
    assert value(families["wabot_account_ok"]) == 0


async def test_a_message_left_undecided_too_long_means_the_agent_is_stuck(store: Path):
    long_ago = time.time() - 3600
    with open_log(store, clock=lambda: long_ago) as log:
        log.append(
            MessageReceived(
                chat="491701111111@s.whatsapp.net", msg_id="OLD", sender="x@s.whatsapp.net"
            )
        )
    response = await healthz(store, Probe(None))
    assert response.status_code == 503
    # Default llm settings of the recording: 3 attempts of (60 s + 60 s) + 60 s.
    assert "queue: a message has waited 3600 s for a decision (> 420 s)" in response.text


@pytest.fixture
async def metrics(web_store: WebStore) -> AsyncIterator[tuple[dict[str, list[Sample]], str]]:
    console = Console(web_store.store)
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        families = {f.name: f.samples for f in text_string_to_metric_families(response.text)}
        yield families, response.text
    finally:
        console.close()


def value(samples: list[Sample], name: str | None = None, **labels: str) -> float:
    found = [s.value for s in samples if s.labels == labels and (name is None or s.name == name)]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


async def test_metrics_count_what_the_log_holds(
    metrics: tuple[dict[str, list[Sample]], str], web_store: WebStore
):
    families, _ = metrics
    with open_reader(web_store.store) as log:
        events = [r.event for r in log.read()]
    completed = [e for e in events if isinstance(e, LlmCompleted)]
    skips = Counter(e.reason for e in events if isinstance(e, MessageSkipped))

    decisions = {s.labels["decision"]: s.value for s in families["wabot_messages"]}
    assert decisions == {"llm": 6, "reply": 1, **skips}
    assert value(families["wabot_messages_received"]) == sum(
        isinstance(e, MessageReceived) for e in events
    )
    calls = families["wabot_llm_calls"]
    assert value(calls, outcome="completed") == len(completed) == 5
    assert value(calls, outcome="failed") == sum(
        isinstance(e, LlmFailed) and e.final for e in events
    )
    assert value(families["wabot_failures"], reason="LLM HTTP 400") == 1
    spend = sum(e.usage.cost_usd or 0 for e in completed)
    assert value(families["wabot_llm_spend_usd"]) == pytest.approx(spend)
    sent = families["wabot_sent"]
    assert value(sent, purpose="reply") == 6
    assert value(sent, purpose="startup") == sum(
        isinstance(e, ReplyPlanned) and e.purpose == "startup" for e in events
    )
    latency = families["wabot_llm_latency_seconds"]
    assert value(latency, "wabot_llm_latency_seconds_count") == len(completed)
    assert value(latency, "wabot_llm_latency_seconds_bucket", le="+Inf") == len(completed)
    assert value(latency, "wabot_llm_latency_seconds_sum") == pytest.approx(
        sum(e.latency_ms for e in completed) / 1000
    )
    state = families["wabot_transport_state"]
    assert value(state, state="stopped") == 1  # the daemon said so as it stopped
    assert value(state, state="connected") == 0
    assert value(families["wabot_queue_depth"]) == 0
    assert value(families["wabot_replies_unsent"]) == 0
    assert value(families["wabot_up"]) == 0  # no daemon runs on the recording
    assert value(families["wabot_daemon_ok"]) == 0
    assert value(families["wabot_connection_ok"]) == 0
    assert value(families["wabot_queue_ok"]) == 1
    assert value(families["wabot_account_restricted"]) == 0
    # The recording's sends that are still within the last minute, at most all of them.
    assert value(families["wabot_sends_last_minute"]) <= sum(
        isinstance(e, ReplySent) for e in events
    )
    tokens = families["wabot_llm_tokens"]
    assert value(tokens, direction="input") == sum(e.usage.input_tokens for e in completed)


async def test_metric_names_follow_prometheus_conventions(
    metrics: tuple[dict[str, list[Sample]], str],
):
    _, text = metrics
    types = dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE "))
    assert all(name.startswith("wabot_") for name in types)
    assert all(name.endswith("_total") for name, kind in types.items() if kind == "counter")
