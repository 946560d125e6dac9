"""One definition of spend (LLM calls and transcriptions) in every figure (issue 22 item 9).

A log with both kinds of cost, on a fixed clock: ``stats``, /metrics (read by
prometheus-client's parser), the dashboard and the chat list must agree with
each other and with the budget the daemon limits by.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from events.backends import open_log, open_reader
from events.model import (
    ConfigLoaded,
    LlmCompleted,
    LlmFailed,
    MediaTranscribed,
    MessageReceived,
    Usage,
)
from events.testing import FakeClock
from events.units import DAY
from pipeline.tools._stats import report, report_text
from pipeline.tools.web import Console, create_app
from projections import budget
from projections.runner import Runner
from tests.web.conftest import text_of
from tests.web.test_health_metrics import value
from tests.web.test_pages import asgi_client

pytestmark = pytest.mark.anyio
ALICE = "491701111111@s.whatsapp.net"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()


def heard(msg_id: str, usd: float) -> MediaTranscribed:
    return MediaTranscribed(
        chat=ALICE, msg_id=msg_id, text="Hallo", model="whisper-1", seconds=20, cost_usd=usd
    )


def answered(call_id: str, usd: float | None) -> LlmCompleted:
    return LlmCompleted(chat=ALICE, call_id=call_id, content="Hi", usage=Usage(cost_usd=usd))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Three days ago a transcription ($0.10); an hour ago a voice note ($0.002) and two
    answers ($0.01 and one of unknown cost)."""
    clock = FakeClock(NOW - 3 * DAY)
    with open_log(tmp_path, clock=clock) as log:
        log.append(MessageReceived(chat=ALICE, msg_id="OLD", sender=ALICE), heard("OLD", 0.1))
        clock.now = NOW - 3600
        log.append(MessageReceived(chat=ALICE, msg_id="V1", sender=ALICE), heard("V1", 0.002))
        log.append(answered("C1", 0.01), answered("C2", None))
    return tmp_path


def test_stats_counts_every_kind_and_each_alone(store: Path) -> None:
    with open_reader(store) as log:
        states = Runner.start(log).states
        result = report(states, NOW, log, {})
    spend = result.spend_usd
    assert (spend.today_utc, spend.last_7_days, spend.total) == (0.012, 0.112, 0.112)
    llm, heard_ = spend.by_kind["llm"], spend.by_kind["transcription"]
    assert (llm.today_utc, llm.total) == (0.01, 0.01)
    assert (heard_.today_utc, heard_.last_7_days, heard_.total) == (0.002, 0.102, 0.102)
    # The daily budget limits by the same figure.
    assert budget.spent_since(states.budget, NOW - 12 * 3600) == pytest.approx(0.012)
    assert "Spend (UTC days): today $0.0120, last 7 days $0.1120, all time $0.1120" in (
        report_text(result)
    )
    assert "  transcription: today $0.0020, last 7 days $0.1020, all time $0.1020" in (
        report_text(result)
    )


async def test_metrics_the_dashboard_and_the_chat_list_agree(store: Path) -> None:
    console = Console(store, clock=lambda: NOW)
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            metrics = (await client.get("/metrics")).text
            dashboard = text_of((await client.get("/dashboard")).text)
            chats = text_of((await client.get("/")).text)
    finally:
        console.close()
    families = {f.name: f.samples for f in text_string_to_metric_families(metrics)}

    total = families["wabot_spend_usd"]
    assert value(total, kind="llm") == pytest.approx(0.01)
    assert value(total, kind="transcription") == pytest.approx(0.102)
    day = families["wabot_spend_last_24h_usd"]
    assert value(day, kind="llm") == pytest.approx(0.01)
    assert value(day, kind="transcription") == pytest.approx(0.002)
    # The first version's names are the LLM's part, both of them.
    assert value(families["wabot_llm_spend_usd"]) == pytest.approx(0.01)
    assert value(families["wabot_llm_spend_last_24h_usd"]) == pytest.approx(0.01)

    assert "Spend today (UTC) $0.0120 LLM $0.0100 · transcription $0.0020" in dashboard
    assert "$0.1120" in chats  # Alice's spend, both kinds


async def test_the_dashboard_counts_today_as_the_budget_does(tmp_path: Path) -> None:
    """At 02:00 UTC it is still yesterday 21:00 in New York (vitality.timezone): the
    dashboard's "today" beside the daily budget is the bot's day, not the UTC one."""
    config = {
        "whatsapp": {"phone_number": "491700000000"},
        "vitality": {"timezone": "America/New_York"},
        "limits": {"daily_budget_usd": 1.0},
    }
    now = datetime(2026, 12, 8, 2, 0, tzinfo=UTC).timestamp()
    clock = FakeClock(now - 4 * 3600)  # 22:00 UTC, 17:00 in New York: the same local day
    with open_log(tmp_path, clock=clock) as log:
        log.append(ConfigLoaded(hash="h", config=config, path="app.json"))
        log.append(MessageReceived(chat=ALICE, msg_id="V1", sender=ALICE), heard("V1", 0.002))
        log.append(answered("C1", 0.01))
    console = Console(tmp_path, clock=lambda: now)
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            dashboard = text_of((await client.get("/dashboard")).text)
    finally:
        console.close()
    assert "Spend today (America/New_York) $0.0120 LLM $0.0100 · transcription $0.0020" in (
        dashboard
    )


async def test_a_billed_failure_is_llm_spend_in_every_figure(tmp_path: Path) -> None:
    """An answer with nothing usable in it (a reasoning model out of output tokens) is
    billed: its cost, on the ``LlmFailed``, counts wherever spend is shown or limited."""
    clock = FakeClock(NOW - 3600)
    billed = Usage(output_tokens=1024, cost_usd=0.02)
    with open_log(tmp_path, clock=clock) as log:
        log.append(MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE))
        log.append(answered("C1", 0.01))
        log.append(LlmFailed(chat=ALICE, call_id="C2", error="x", final=True, usage=billed))
    with open_reader(tmp_path) as log:
        states = Runner.start(log).states
        result = report(states, NOW, log, {})
    assert (result.spend_usd.today_utc, result.spend_usd.by_kind["llm"].total) == (0.03, 0.03)
    assert budget.spent_since(states.budget, NOW - 12 * 3600) == pytest.approx(0.03)
    console = Console(tmp_path, clock=lambda: NOW)
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            metrics = (await client.get("/metrics")).text
            dashboard = text_of((await client.get("/dashboard")).text)
            chats = text_of((await client.get("/")).text)
    finally:
        console.close()
    families = {f.name: f.samples for f in text_string_to_metric_families(metrics)}
    assert value(families["wabot_spend_usd"], kind="llm") == pytest.approx(0.03)
    assert value(families["wabot_spend_last_24h_usd"], kind="llm") == pytest.approx(0.03)
    assert "Spend today (UTC) $0.0300" in dashboard
    assert "$0.0300" in chats
