"""The console's pages in process (httpx over ASGI), on a store the daemon recorded."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette

from events.backends import open_reader
from events.model import LlmRequested, ReplySent
from pipeline.tools.web import Console, _app, create_app
from projections.timeline import audit
from tests.e2e.harness import ALICE, ALICE_PERSONA, GROUP, OWNER_JID
from tests.web.conftest import (
    AFTER_EDIT,
    EDITED_TEXT,
    FAILING_TEXT,
    IMAGE_CAPTION,
    OWNER_TEXT,
    REPLAYED_REPLY,
    SCRIPT_TEXT,
    VOICE_TEXT,
    MediaRecording,
    WebStore,
    text_of,
)

NOT_TRIGGERED = 'it does not mention you or quote the bot, and no keyword matched ("bot")'

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
PAGES = ["/", "/dashboard", "/replays", "/search?q=rome", f"/chats/{quote(ALICE)}"]


def asgi_client(app: Starlette, base_url: str = "http://localhost") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@pytest.fixture
async def client(web_store: WebStore) -> AsyncIterator[httpx.AsyncClient]:
    console = Console(web_store.store)
    async with asgi_client(create_app(console, token=None)) as c:
        yield c
    console.close()


async def page(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def _chat_row(listing: str, name: str) -> str:
    row = re.search(
        rf'<tr class="chat-row">(?:(?!</tr>).)*?>{name}</bdi></a>.*?</tr>', listing, re.DOTALL
    )
    assert row is not None, name
    return text_of(row.group(0))


async def test_the_chat_list_counts_what_the_audit_shows(
    client: httpx.AsyncClient, web_store: WebStore
):
    listing = await page(client, "/")

    with open_reader(web_store.store) as log:
        turns = {
            chat: [t for t in audit(log.read(chats=[chat, ""]), chat).turns if t.kind != "pending"]
            for chat in (ALICE, GROUP, OWNER_JID)
        }
        sent = [r for r in log.read(chats=[ALICE]) if isinstance(r.event, ReplySent)]
    alice = _chat_row(listing, "Alice")
    assert ALICE in alice
    # turns, replies (4 answers, the reset notice and the script's answer), spend
    assert f" {len(turns[ALICE])} {len(sent)} $0.0305 " in alice
    assert len(turns[ALICE]) == 9
    assert "owner took over: silent until" in alice
    assert "live, until" in alice
    assert f" {len(turns[GROUP])} 0 $0.0000 " in _chat_row(listing, "Family")
    assert f" {len(turns[OWNER_JID])} 0 $0.0000 " in _chat_row(listing, "Me")


async def test_a_chat_shows_each_message_with_its_decision_and_reason(client: httpx.AsyncClient):
    text = text_of(await page(client, f"/chats/{quote(ALICE)}"))

    assert "Hotels in Rome?" in text
    assert "answered by the LLM" in text
    # Why, in the words the daemon logged (pipeline.config.skip_words), the code beside it.
    assert "skipped: nothing to answer: no text and nothing attached empty" in text
    assert "skipped: you wrote here yourself: the bot stays silent in this chat until" in text
    assert OWNER_TEXT in text
    assert FAILING_TEXT in text
    assert "LLM call failed, no reply" in text
    assert "HTTP 400 (final)" in text
    assert f"{FAILING_TEXT} edited to: {EDITED_TEXT}" in text
    assert f"{SCRIPT_TEXT} deleted for everyone by the sender" in text
    assert "reset: new session, no LLM call" in text
    # the config change, inline with its diff
    assert (
        "config changed to b12837b30a0e: monitored_entities[0].prompt: "
        "'Suggest concrete options with prices.' -> 'Always answer in rhyme.'"
    ) in text
    # the exact request, the response, citations, cost, latency, the sent id
    assert ALICE_PERSONA in text
    assert "Echo: Hotels in Rome?" in text
    assert "The echo guide" in text
    assert "$0.0061" in text
    assert re.search(r"LLM response: \d+ ms", text)
    assert re.search(r"sent \d{4}-\d\d-\d\d [\d:]+ CET as WB[0-9A-F]+", text)


async def test_a_turn_shows_everything_the_log_holds_about_it(
    client: httpx.AsyncClient, web_store: WebStore
):
    with open_reader(web_store.store) as log:
        records = list(log.read(chats=[ALICE]))
    first = next(r for r in records if isinstance(r.event, LlmRequested))
    sent = next(r.event for r in records if isinstance(r.event, ReplySent))
    by_decision = await page(client, f"/chats/{quote(ALICE)}/turns/{first.seq}")
    text = text_of(by_decision)

    assert "Turn #1: answered by the LLM" in text
    assert "Hotels in Rome?" in text
    assert "LLM request: perplexity/sonar, 2 messages" in text
    assert f"system {ALICE_PERSONA}" in text
    assert "config 9f786fc6174b: first config in the log" in text
    assert "LLM response:" in text
    assert "Echo news https://www.example.com/news/echo" in text
    assert sent.wa_id in text
    for kind in ("MessageReceived", "SessionStarted", "LlmRequested", "LlmCompleted"):
        assert f"{kind} · seq" in text
    assert '"type": "ReplySent"' in text
    # Any event of the turn leads to the same page: here the inbound message.
    message_seq = min(r.seq for r in records if r.seq < first.seq and r.event.chat == ALICE)
    assert text_of(await page(client, f"/chats/{quote(ALICE)}/turns/{message_seq}")) == text


async def test_the_skip_reason_of_a_group_message(client: httpx.AsyncClient):
    turns = re.findall(
        r'href="(/chats/[^"]+/turns/\d+)"', await page(client, f"/chats/{quote(GROUP)}")
    )
    assert len(turns) == 1
    text = text_of(await page(client, turns[0]))
    assert f"skipped: {NOT_TRIGGERED}" in text
    assert f"reason not_triggered: {NOT_TRIGGERED}" in text
    assert "dinner at eight?" in text
    assert "Bob" in text


async def test_message_text_is_escaped_on_every_page(
    client: httpx.AsyncClient, web_store: WebStore
):
    with open_reader(web_store.store) as log:
        turn_seq = next(
            r.seq
            for r in log.read(chats=[ALICE])
            if isinstance(r.event, LlmRequested) and r.event.trigger_ids == [web_store.script_id]
        )
    for path in [*PAGES, "/search?q=script", f"/chats/{quote(ALICE)}/turns/{turn_seq}"]:
        body = await page(client, path)
        assert "<script" not in body.lower(), path
        assert "<b>bold" not in body, path
    shown = text_of(await page(client, f"/chats/{quote(ALICE)}/turns/{turn_seq}"))
    assert SCRIPT_TEXT in shown
    assert f"Echo: {SCRIPT_TEXT}" in shown


async def test_search_finds_messages_and_replies_and_links_their_turns(client: httpx.AsyncClient):
    body = await page(client, "/search?q=FLORENCE")
    text = text_of(body)
    assert "2 messages containing “FLORENCE”" in text
    assert "received" in text
    assert "sent by the bot" in text
    assert body.count("<mark>Florence</mark>") == 2
    turns = set(re.findall(r'class="turn-link" href="([^"]+)"', body))
    assert len(turns) == 2  # the message and the reply, each linked to its own (same) turn
    pages = {text_of(await page(client, t)) for t in turns}
    assert len(pages) == 1
    assert "Turn #2: answered by the LLM" in pages.pop()
    assert "Type at least two characters" in text_of(await page(client, "/search?q=r"))
    assert "Nothing contains “zebra”" in text_of(await page(client, "/search?q=zebra"))


async def test_each_search_hit_links_to_a_page_showing_its_message(
    media_store: MediaRecording, monkeypatch: pytest.MonkeyPatch
):
    # One turn a page: Alice's voice note and photo are older than her page shows.
    monkeypatch.setattr(_app, "TIMELINE_TURNS", 1)
    console = Console(media_store.store)
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            assert "2 older turns not shown" in text_of(await page(client, f"/chats/{ALICE}"))
            for words, role in [
                (VOICE_TEXT, "received (transcript)"),
                (AFTER_EDIT, "received (edited)"),
                (IMAGE_CAPTION, "received"),
            ]:
                body = await page(client, f"/search?q={quote(words)}")
                hit = next(h for h in body.split('<li class="hit">')[1:] if f"· {role}" in h)
                found = re.search(r'href="(/chats/[^"#]+)#(s\d+)">in the timeline', hit)
                assert found is not None, words
                target = await page(client, html.unescape(found.group(1)))
                at = target.find(f'id="{found.group(2)}"')
                assert at != -1, (words, found.group(0))  # the anchor is on the page
                element = target[target.rfind("<", 0, at) : at]
                assert element.startswith('<div class="msg'), (words, element)
                assert words in text_of(target[at:].split('<div class="msg', 1)[0]), words
    finally:
        console.close()


async def test_an_at_that_cannot_be_a_seq_is_ignored_not_a_server_error(client: httpx.AsyncClient):
    """Python refuses to read an int of over 4,300 digits: it was a 500, now no ``at``."""
    for at in ("9" * 5000, "99999999999999999999", "-3", "x"):
        response = await client.get(f"/chats/{ALICE}?at={at}")
        assert response.status_code == 200, at


async def test_the_dashboard_draws_its_charts_inline(client: httpx.AsyncClient):
    body = await page(client, "/dashboard")
    text = text_of(body)
    assert body.count('<svg class="chart"') == 6
    assert "LLM HTTP 400" in text  # failures by reason
    assert "not_triggered" in text  # messages by decision
    assert "no daemon is running on" in text
    assert "TransportStatus" in text
    today = re.findall(r"<title>\d{4}-\d\d-\d\d: (\d+)</title>", body)
    assert today[29] == "10"  # messages in today: the last of 30 days


async def test_a_replay_experiment_side_by_side_with_a_word_diff(client: httpx.AsyncClient):
    listing = await page(client, "/replays")
    names = re.findall(r'href="/replays/([^"]+\.json)"', listing)
    assert len(names) == 1
    assert "Alice" in text_of(listing)
    body = await page(client, f"/replays/{names[0]}")
    assert "Echo: Hotels in Rome?" in text_of(body)
    assert REPLAYED_REPLY in text_of(body)
    assert "<ins> Try Trastevere.</ins>" in body
    assert (await client.get("/replays/..%2Fevents.db")).status_code == 404
    assert (await client.get("/replays/nope.json")).status_code == 404


async def test_a_chat_named_by_its_entity_name_redirects_and_unknown_ones_are_404(
    client: httpx.AsyncClient,
):
    response = await client.get("/chats/Alice", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == f"/chats/{ALICE}"
    assert (await client.get("/chats/nobody@s.whatsapp.net")).status_code == 404
    assert (await client.get(f"/chats/{quote(ALICE)}/turns/999999")).status_code == 404


async def test_nothing_but_the_login_accepts_a_write(client: httpx.AsyncClient):
    for path in [*PAGES, "/healthz", "/metrics"]:
        assert (await client.post(path)).status_code == 405, path
        assert (await client.put(path)).status_code == 405, path
        assert (await client.delete(path)).status_code == 405, path
        assert (await client.head(path)).status_code in (200, 503), path


async def test_every_answer_forbids_scripts_and_framing(client: httpx.AsyncClient):
    for path in [*PAGES, "/healthz", "/metrics", "/nope"]:
        headers = (await client.get(path)).headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "script-src" not in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"


async def test_without_a_token_only_loopback_names_are_answered(web_store: WebStore):
    console = Console(web_store.store)
    app = create_app(console, token=None)
    try:
        for base, status in [
            ("http://localhost:8765", 200),
            ("http://127.0.0.1:8765", 200),
            ("http://[::1]:8765", 200),
            ("http://attacker.example:8765", 421),
            ("http://10.0.0.5:8765", 421),
        ]:
            async with asgi_client(app, base) as c:
                answered = (await c.get("/healthz")).status_code
                assert answered in ((200, 503) if status == 200 else (status,)), base
    finally:
        console.close()
