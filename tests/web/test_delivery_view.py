"""The console shows how far each sent message got and the messages nobody could read
(issue 18, items 4 and 12), on a copy of the recorded store with receipts and an
unreadable message added as the daemon records them."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

from events.backends import open_log
from events.model import MessageUndecryptable, ReplyDelivered, ReplySent
from pipeline.tools.web import Console, create_app
from tests.e2e.harness import ALICE
from tests.web.conftest import WebStore, text_of
from tests.web.test_pages import asgi_client, page

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
READ_AT = 1_764_070_300.0


@pytest.fixture
def store(web_store: WebStore, tmp_path: Path) -> tuple[Path, str, str]:
    """The copy, and the ids of Alice's first two sent replies (the first read, the second
    not confirmed by any phone)."""
    copied = web_store.recording.copy(tmp_path / "copy").store
    with open_log(copied) as log:
        sent = [r.event for r in log.read(chats=[ALICE]) if isinstance(r.event, ReplySent)]
        read, unconfirmed = sent[0], sent[1]
        log.append(
            *(
                ReplyDelivered(
                    chat=ALICE, reply_id=read.reply_id, wa_id=read.wa_id, state=state, at=READ_AT
                )
                for state in ("delivered", "read")
            ),
            MessageUndecryptable(chat=ALICE, msg_id="V1", sender=ALICE, reason="view_once"),
        )
    return copied, read.wa_id, unconfirmed.wa_id


async def test_the_chat_page_shows_receipts_per_message_and_unreadable_messages(
    store: tuple[Path, str, str],
) -> None:
    path, read, unconfirmed = store
    console = Console(path)
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            text = text_of(await page(client, f"/chats/{quote(ALICE)}"))
            metrics = (await client.get("/metrics")).text
    finally:
        console.close()

    stamp = r"\d{4}-\d\d-\d\d [\d:]+ CET"
    assert re.search(rf"as {read} · delivered {stamp} · read {stamp}", text)
    assert f"as {unconfirmed} · no phone confirmed it yet" in text
    assert "not readable: view-once media, which WhatsApp shows on the phone only" in text
    assert "(not readable: nothing of it reached the bot; never answered)" in text
    families = {f.name: f.samples for f in text_string_to_metric_families(metrics)}
    decisions = {s.labels["decision"]: s.value for s in families["wabot_messages"]}
    assert decisions["undecryptable"] == 1
