"""The console shows which replies went as voice notes, and a spoken reply that went as
text and why (issue 21 item 1), on a copy of the recorded store."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from events.backends import open_log
from events.model import ReplyPlanned, SpeechFailed, SpeechPlan, SpeechSynthesized
from pipeline.tools.web import Console, create_app
from tests.e2e.harness import ALICE
from tests.web.conftest import WebStore, text_of
from tests.web.test_pages import asgi_client, page

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
PLAN = SpeechPlan(model="gpt-4o-mini-tts", voice="alloy")


async def test_the_chat_page_tells_voice_notes_from_text(
    web_store: WebStore, tmp_path: Path
) -> None:
    copied = web_store.recording.copy(tmp_path / "copy").store
    with open_log(copied) as log:
        log.append(
            ReplyPlanned(chat=ALICE, reply_id="V1", purpose="reply", text="Spoken words.",
                         speech=PLAN),
            SpeechSynthesized(chat=ALICE, reply_id="V1", sha256="a" * 64, size=9968,
                              seconds=1.5, model=PLAN.model, voice=PLAN.voice, cost_usd=0.0004),
            ReplyPlanned(chat=ALICE, reply_id="V2", purpose="reply", text="Words as text.",
                         speech=PLAN),
            SpeechFailed(chat=ALICE, reply_id="V2", status=401, error="key rejected", final=True),
        )  # fmt: skip
    console = Console(copied)
    try:
        async with asgi_client(create_app(console, token=None)) as client:
            text = text_of(await page(client, f"/chats/{quote(ALICE)}"))
    finally:
        console.close()

    assert "voice note, 1.5 s (gpt-4o-mini-tts/alloy)" in text
    assert "Spoken words." in text
    assert "sent as text: speaking failed" in text
    assert "speaking failed" in text
    assert "HTTP 401 (final): key rejected" in text
