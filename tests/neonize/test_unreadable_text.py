"""Texts that are not UTF-8, as a sender's client may write them, recorded readable.

WhatsApp's protos are proto2: nothing between the sender's client and neonize
checks that a string is UTF-8, and Python's protobuf then hands it over as
``bytes``. A JavaScript client that cut a text in the middle of an emoji
writes the lone surrogate half as the three bytes ``ED A0 BD``. These events
are built as Go encodes them (Python's protobuf refuses to), fed through
neonize's callback entry point into the daemon's real intake and log.
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
from pathlib import Path
from typing import Any

import anyio
import pytest
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ContextInfo, ExtendedTextMessage, Message

from events.model import MessageReceived
from tests.neonize_fakes import LID, execute_raw, message_ev
from tests.neonize_wired import text, wired

pytestmark = pytest.mark.anyio
CUT_EMOJI = b"\xed\xa0\xbd"  # "\ud83d", half of an emoji, as protobufjs writes it
REPLACED = "\ufffd" * 3  # how Python (and WhatsApp's apps) read those bytes


def as_go_sends(event: Any, **texts: bytes) -> bytes:
    """``event`` serialised, each placeholder (a key) replaced by raw bytes of its length."""
    data: bytes = event.SerializeToString()
    for placeholder, raw in texts.items():
        assert len(placeholder) == len(raw)
        assert data.count(placeholder.encode()) == 1
        data = data.replace(placeholder.encode(), raw)
    return data


def received(w: Any) -> dict[str, MessageReceived]:
    return {r.event.msg_id: r.event for r in w.log.read() if isinstance(r.event, MessageReceived)}


async def test_a_long_text_with_half_an_emoji_is_recorded_and_intake_goes_on(
    tmp_path: Path,
) -> None:
    long = "a" * 20_000  # long enough to be measured in bytes against the log's limit
    quoted = Message(conversation="QQQ quoted")
    context = ContextInfo(stanzaID="3EB0Q", participant=f"{LID}@lid", quotedMessage=quoted)
    ev = message_ev(
        Message(
            extendedTextMessage=ExtendedTextMessage(text=f"{long}bye ZZZ", contextInfo=context)
        ),
        msg_id="3EB0CUT",
    )
    raw = as_go_sends(ev, ZZZ=CUT_EMOJI, QQQ=b"\xff\xfe!")

    async with wired(tmp_path) as w:
        # Returns once the daemon has recorded it (the Go callback waits for that).
        await anyio.to_thread.run_sync(execute_raw, w.client, raw, MessageEv)
        await anyio.to_thread.run_sync(
            execute_raw, w.client, text("3EB0NEXT").SerializeToString(), MessageEv
        )
        got = received(w)

    assert got["3EB0CUT"].text == f"{long}bye {REPLACED}"
    assert got["3EB0CUT"].quoted is not None
    assert got["3EB0CUT"].quoted.text == "\ufffd\ufffd! quoted"
    assert got["3EB0NEXT"].text == "hello"


async def test_a_short_one_is_the_words_not_their_bytes(tmp_path: Path) -> None:
    ev = message_ev(Message(conversation="see you ZZZ"), msg_id="3EB0SHORT", push_name="Al YYY")
    raw = as_go_sends(ev, ZZZ=CUT_EMOJI, YYY=CUT_EMOJI)

    async with wired(tmp_path) as w:
        await anyio.to_thread.run_sync(execute_raw, w.client, raw, MessageEv)
        got = received(w)["3EB0SHORT"]

    assert (got.text, got.push_name) == (f"see you {REPLACED}", f"Al {REPLACED}")
