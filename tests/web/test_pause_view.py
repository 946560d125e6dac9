"""The console shows the owner's /pause and /resume of a chat among its turns, and a
message that waited out the pause says why in words (issue 20, item 5)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from events.backends import open_log
from events.model import ChatPaused, ChatResumed, MessageReceived, MessageSkipped
from pipeline.tools.web import Console, create_app
from tests.e2e.harness import ALICE
from tests.web.conftest import WebStore, text_of
from tests.web.test_pages import asgi_client, page

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


async def test_the_chat_page_shows_a_pause_and_what_it_held(
    web_store: WebStore, tmp_path: Path
) -> None:
    copied = web_store.recording.copy(tmp_path / "copy").store
    with open_log(copied) as log:
        log.append(ChatPaused(chat=ALICE, until=None, msg_id="C1"))
        log.append(MessageReceived(chat=ALICE, msg_id="P1", sender=ALICE, text="still there?"))
        log.append(MessageSkipped(chat=ALICE, msg_id="P1", reason="paused"))
        log.append(ChatResumed(chat=ALICE, msg_id="C2"))
    console = Console(copied)
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            text = text_of(await page(client, f"/chats/{quote(ALICE)}"))
    finally:
        console.close()

    assert "paused by you (/pause) until /resume" in text
    assert "you paused this chat (/pause): it waited" in text
    assert "resumed by you (/resume)" in text
