"""Each turn reads like the conversation it was (issue 22 items 10 and 13), in process.

On a store the real daemon recorded with a voice note, a photo, an edit and a
group of two senders (``media_store``), and on the shared one with its skips
(``web_store``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from events.backends import open_reader
from events.model import LlmRequested, MessageSkipped
from pipeline.tools.web import Console, create_app
from tests.e2e.harness import ALICE, GROUP
from tests.web.conftest import (
    AFTER_EDIT,
    BEFORE_EDIT,
    BOB_ASKS,
    IMAGE_CAPTION,
    OWNER_TEXT,
    VOICE_TEXT,
    MediaRecording,
    WebStore,
    text_of,
)
from tests.web.test_pages import NOT_TRIGGERED, asgi_client, page

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


async def _client(store: Path) -> AsyncIterator[httpx.AsyncClient]:
    console = Console(store)
    async with asgi_client(create_app(console, token=None)) as c:
        yield c
    console.close()


@pytest.fixture
async def media(media_store: MediaRecording) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(media_store.store):
        yield c


@pytest.fixture
async def shared(web_store: WebStore) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(web_store.store):
        yield c


def _turn_of(store: Path, msg_id: str) -> int:
    with open_reader(store) as log:
        return next(
            r.seq
            for r in log.read()
            if isinstance(r.event, LlmRequested) and msg_id in r.event.trigger_ids
        )


async def test_a_voice_note_reads_as_one_with_its_transcript(
    media: httpx.AsyncClient, media_store: MediaRecording
) -> None:
    body = await page(media, f"/chats/{quote(ALICE)}")
    shape = rf'<div class="msg" id="s\d+">(?:(?!<div class="msg").)*?{re.escape(VOICE_TEXT)}'
    voice = re.search(shape, body, re.S)
    assert voice is not None
    text = text_of(voice.group(0))
    assert "voice note · 7 s · audio/ogg · 20 KB" in text
    assert f"transcript (whisper-1, $0.0007): {VOICE_TEXT}" in text
    # No raw JSON of the attachment, no generic transcript event, no float noise.
    assert '"sha256"' not in body
    assert "MediaTranscribed" not in body
    assert "latency_ms" not in body
    assert "(no text)" not in text
    assert ">audio<" not in body


async def test_the_request_shows_the_image_it_carried(
    media: httpx.AsyncClient, media_store: MediaRecording
) -> None:
    seq = _turn_of(media_store.store, media_store.image_id)
    text = text_of(await page(media, f"/chats/{quote(ALICE)}/turns/{seq}"))
    assert "image · image/png · 1 KB" in text
    assert f"user [image] {IMAGE_CAPTION} + image image/png, sha256 " in text


async def test_search_finds_the_edited_text_and_says_so(media: httpx.AsyncClient) -> None:
    text = text_of(await page(media, "/search?q=mario"))
    assert "1 message containing “mario”" in text
    assert f"received (edited) · in the timeline · the turn {AFTER_EDIT}" in text
    before = text_of(await page(media, "/search?q=luigi"))
    assert f"received · in the timeline · the turn {BEFORE_EDIT}" in before
    heard = text_of(await page(media, "/search?q=treffen"))
    assert f"received (transcript) · in the timeline · the turn {VOICE_TEXT}" in heard


async def test_a_groups_sessions_are_counted_per_sender(media: httpx.AsyncClient) -> None:
    listing = text_of(await page(media, "/"))
    assert re.search(r"Family .*? 2 live \(one per sender\), until", listing)
    assert "2 live (one per sender)" in text_of(await page(media, f"/chats/{quote(GROUP)}"))


async def test_a_group_turn_says_which_keyword_called_the_bot(media: httpx.AsyncClient) -> None:
    text = text_of(await page(media, f"/chats/{quote(GROUP)}"))
    assert '#1 answered by the LLM: the keyword "bot" ' in text
    assert BOB_ASKS in text


async def test_why_a_message_was_skipped_in_words(
    shared: httpx.AsyncClient, web_store: WebStore
) -> None:
    group = text_of(await page(shared, f"/chats/{quote(GROUP)}"))
    assert f"skipped: {NOT_TRIGGERED}" in group
    alice = text_of(await page(shared, f"/chats/{quote(ALICE)}"))
    assert re.search(
        r"skipped: you wrote here yourself: the bot stays silent in this chat until "
        r"\d\d:\d\d CET .*?" + re.escape(OWNER_TEXT),
        alice,
    )
    assert "skipped: nothing to answer: no text and nothing attached" in alice
    with open_reader(web_store.store) as log:
        blank = next(
            r.seq
            for r in log.read()
            if isinstance(r.event, MessageSkipped) and r.event.reason == "empty"
        )
    turn = text_of(await page(shared, f"/chats/{quote(ALICE)}/turns/{blank}"))
    assert "reason empty: nothing to answer: no text and nothing attached" in turn
