"""What one inbound message may add to the log (issue 9: no size limit)."""

from __future__ import annotations

from typing import Any

from events.model import MessageReceived
from pipeline.daemon import MAX_TEXT_BYTES
from pipeline.daemon._intake import bounded

ALICE = "491701111111@s.whatsapp.net"


def message(**fields: Any) -> MessageReceived:
    return MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, **fields)


def test_a_text_over_the_limit_is_cut_on_a_character_and_keeps_its_size() -> None:
    text = "€" * MAX_TEXT_BYTES  # three bytes each: the limit falls inside one
    cut = bounded(message(text=text))

    assert cut.text == "€" * (MAX_TEXT_BYTES // 3)
    assert cut.truncated_from == 3 * MAX_TEXT_BYTES
    assert bounded(message(text="x" * MAX_TEXT_BYTES)).truncated_from is None


def test_a_message_within_every_limit_is_recorded_as_it_came() -> None:
    event = message(text="€" * (MAX_TEXT_BYTES // 3), push_name="Alice", mentions=[ALICE] * 256)
    assert bounded(event) is event


def test_names_and_mentions_are_bounded_too() -> None:
    cut = bounded(message(push_name="A" * 10_000, mentions=[ALICE] * 10_000))
    assert (len(cut.push_name or ""), len(cut.mentions)) == (256, 256)
