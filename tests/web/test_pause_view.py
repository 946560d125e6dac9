"""The console shows the owner's /pause and /resume of a chat among its turns, and a
message that waited out the pause says why in words (issue 20, item 5)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

from events.backends import open_log
from events.model import (
    ChatPaused,
    ChatResumed,
    MessageReceived,
    MessageSkipped,
    ReplyPlanned,
    ReplySent,
)
from pipeline.tools.web import Console, create_app
from tests.e2e.harness import ALICE, OWNER_JID
from tests.web.conftest import WebStore, text_of
from tests.web.test_pages import asgi_client, page

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


async def test_the_chat_page_shows_a_pause_and_what_it_held(
    web_store: WebStore, tmp_path: Path
) -> None:
    copied = web_store.recording.copy(tmp_path / "copy").store
    with open_log(copied) as log:
        command = MessageReceived(
            chat=OWNER_JID, msg_id="C1", sender=OWNER_JID, text="/pause Alice", from_me=True
        )
        answer = ReplyPlanned(
            chat=OWNER_JID,
            reply_id="RC1",
            purpose="command",
            text="Paused Alice until /resume.",
            in_reply_to="C1",
            trigger_ids=["C1"],
        )
        log.append(command, ChatPaused(chat=ALICE, until=None, msg_id="C1"), answer)
        log.append(ReplySent(chat=OWNER_JID, reply_id="RC1", wa_id="WC1", sent_at=0.0))
        log.append(MessageReceived(chat=ALICE, msg_id="P1", sender=ALICE, text="still there?"))
        log.append(MessageSkipped(chat=ALICE, msg_id="P1", reason="paused"))
        log.append(ChatResumed(chat=ALICE, msg_id="C2"))
    console = Console(copied)
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            text = text_of(await page(client, f"/chats/{quote(ALICE)}"))
            mine = text_of(await page(client, f"/chats/{quote(OWNER_JID)}"))
            metrics = (await client.get("/metrics")).text
    finally:
        console.close()

    assert "paused by you (/pause) until /resume" in text
    assert "you paused this chat (/pause): it waited" in text
    assert "resumed by you (/resume)" in text
    assert "owner command, answered without an LLM call" in mine
    families = {f.name: f.samples for f in text_string_to_metric_families(metrics)}
    decisions = {s.labels["decision"]: s.value for s in families["wabot_messages"]}
    assert decisions["command"] == 1
    sent = {s.labels["purpose"]: s.value for s in families["wabot_sent"]}
    assert sent["command"] == 1
