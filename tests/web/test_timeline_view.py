"""Events the console does not know by name still show, under what they name or on their own."""

from __future__ import annotations

import pytest

from events.backends import open_reader
from events.model import Event, MessageReceived, Recorded
from pipeline.tools.web import Console
from pipeline.tools.web._app import Pages
from pipeline.tools.web._overview import chat_row
from pipeline.tools.web._timeline import build
from tests.e2e.harness import ALICE
from tests.web.conftest import WebStore, text_of

pytestmark = pytest.mark.slow
EMOJI = "<i>👍</i>"


class MessageReacted(Event, frozen=True, kw_only=True):
    """As a later version may record it: an event naming a message."""

    msg_id: str
    emoji: str


class Reminder(Event, frozen=True, kw_only=True):
    """As a later version may record it: an event of the chat naming nothing."""

    kind: str
    ok: bool


def _first_message(records: list[Recorded]) -> str:
    """The id of Alice's first message ("Hotels in Rome?"): ids count across the session."""
    return next(r.event.msg_id for r in records if isinstance(r.event, MessageReceived))


def _with_future_events(web_store: WebStore) -> list[Recorded]:
    with open_reader(web_store.store) as log:
        records = list(log.read(chats=[ALICE, ""]))
    top = records[-1].seq
    later = records[-1].ts + 1
    first = _first_message(records)
    quoting = MessageReceived(
        chat=ALICE,
        msg_id="Q1",
        sender=ALICE,
        text="and this one?",
        quoted_id=first,
        mentions=["491700000000@s.whatsapp.net"],
    )
    extra = [
        Recorded(top + 1, later, MessageReacted(chat=ALICE, msg_id=first, emoji=EMOJI)),  # type: ignore[arg-type]
        Recorded(top + 2, later, Reminder(chat=ALICE, kind="budget", ok=False)),  # type: ignore[arg-type]
        Recorded(top + 3, later, quoting),
    ]
    return records + extra


def test_an_unknown_event_naming_a_message_is_shown_under_it(web_store: WebStore):
    records = _with_future_events(web_store)
    timeline = build(records, ALICE)

    first = timeline.turns[0].messages[0]
    assert first.m.text == "Hotels in Rome?"
    assert [(e.type, e.fields) for e in first.events] == [
        ("MessageReacted", {"msg_id": first.m.msg_id, "emoji": EMOJI})
    ]
    alone = [e.event for e in timeline.entries if e.event is not None]
    assert [(e.type, e.fields) for e in alone] == [("Reminder", {"kind": "budget", "ok": "false"})]
    pending = timeline.turns[-1]
    assert pending.turn.kind == "pending"
    assert pending.messages[0].extras == {
        "quoted_id": first.m.msg_id,
        "mentions": '["491700000000@s.whatsapp.net"]',
    }


def test_the_chat_page_renders_them_escaped(web_store: WebStore):
    console = Console(web_store.store)
    try:
        pages = Pages(console, None)
        with console.current() as snap:
            row = chat_row(snap, ALICE)
            view = build(_with_future_events(web_store), ALICE)
            html = bytes(pages.render(snap, "chat.html", row=row, timeline=view).body).decode()
    finally:
        console.close()
    text = text_of(html)
    assert "MessageReacted" in text
    assert EMOJI in text
    assert "<i>👍" not in html
    assert "Reminder" in text
    assert f"quoted_id {_first_message(_with_future_events(web_store))}" in text
