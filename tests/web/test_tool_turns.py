"""The console shows a turn's tool loop: each round, each call with its arguments and
result, and the reason a silent turn got no reply (a log the turn's own rules wrote)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import msgspec
import pytest

from events.backends import open_log
from events.model import ConfigLoaded, LlmCompleted, ReminderSet
from pipeline.daemon import _turn as turn
from pipeline.tools.web import Console, create_app
from tests.test_tool_loop import GROUP, asked, calls, group_config, said
from tests.web.test_pages import asgi_client, page

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = group_config()
    first = said(1)
    known, ask = asked(first)
    looped = turn.answered(known, ask, calls(("nope", '{"a": 1}'), content="hm"))
    assert isinstance(looped.effect, turn.Ask)
    silent = turn.answered(
        known, looped.effect, calls(("stay_silent", json.dumps({"reason": "just banter"})))
    )
    stored = msgspec.to_builtins(config.config)
    with open_log(tmp_path) as log:
        log.append(
            ConfigLoaded(hash="h", config=stored, path="app.json"),
            first,
            ask.request,
            *looped.events,
            *silent.events,
        )
    console = Console(tmp_path)
    async with asgi_client(create_app(console, token=None)) as c:
        yield c
    console.close()


async def test_a_chat_page_shows_every_call_with_its_arguments_and_result(
    client: httpx.AsyncClient,
) -> None:
    shown = await page(client, f"/chats/{quote(GROUP)}")
    assert "the LLM stayed silent, no reply" in shown
    assert "stayed silent: just banter" in shown
    assert "round 1: the LLM called tools" in shown
    assert "round 2: the LLM called tools" in shown
    assert (
        '<span class="tool-name">nope</span> <code class="tool-args">{&#34;a&#34;: 1}</code>'
        in shown
    )
    assert "unknown tool &#39;nope&#39;" in shown
    assert "stay_silent" in shown
    assert LlmCompleted.__name__ not in shown  # no round is left as a bare event line


async def test_a_chat_page_lists_its_reminders_and_facts_and_what_the_tools_did(
    tmp_path: Path,
) -> None:
    config = group_config(reminders=True, memory=True)
    first = said(1)
    known, ask = asked(first, reminders=True, memory=True)
    args = json.dumps({"at": "2025-11-26T09:00:00", "text": "bring the cake"})
    fact = json.dumps({"fact": "the family likes <b>cake</b>"})
    looped = turn.answered(known, ask, calls(("set_reminder", args), ("remember", fact)))
    assert isinstance(looped.effect, turn.Ask)
    (reminder,) = [e for e in looped.events if isinstance(e, ReminderSet)]
    with open_log(tmp_path / "r") as log:
        stored = msgspec.to_builtins(config.config)
        log.append(ConfigLoaded(hash="h", config=stored, path="app.json"), first, ask.request)
        log.append(*looped.events)
    console = Console(tmp_path / "r")
    async with asgi_client(create_app(console, token=None)) as c:
        shown = await page(c, f"/chats/{quote(GROUP)}")
    console.close()
    assert "Reminders pending" in shown
    assert f'<span class="id">{reminder.reminder_id}</span>' in shown
    assert "bring the cake" in shown
    assert f"reminder {reminder.reminder_id} set for 2025-11-26T08:00:00Z" in shown
    assert "ReminderSet" not in shown  # shown on its turn, not as a bare event line
    assert "Facts kept" in shown
    assert "<li>the family likes &lt;b&gt;cake&lt;/b&gt;</li>" in shown
    assert "fact remembered: the family likes &lt;b&gt;cake&lt;/b&gt;" in shown
