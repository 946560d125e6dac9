"""A bare call in a group, from real protos through neonize's callback into the
daemon's intake and a real log, then planned by the daemon's turn as it runs.

Alice asks by voice note under her LID alone (WhatsApp left out her number),
then calls the bot with "@bot" under her number: the turn asks about the
voice note, not about what she typed before (docs/config.md ``groups``).
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import itertools
import time
from pathlib import Path
from typing import Any

import pytest
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    AudioMessage,
    ContextInfo,
    ExtendedTextMessage,
    Message,
)

from events.model import AnyEvent, LlmRequested, MessageSkipped, Recorded
from pipeline.daemon import _turn as turn
from pipeline.daemon._replies import Ids
from pipeline.llm._prompt import ANSWER_HEAD, CONTEXT_HEAD
from projections.fold import fold
from tests.neonize_fakes import ALICE, GROUP, LID, MEDIA_KEYS, OWNER, dispatch, message_ev
from tests.neonize_wired import loaded, wired

pytestmark = pytest.mark.anyio
ALICE_JID = f"{ALICE}@s.whatsapp.net"


def in_group(message: Any, msg_id: str, sender: str, sender_alt: str = "", **kw: Any) -> Any:
    """A group message as WhatsApp sends it now (sent moments ago: not stale)."""
    sent = int(time.time() * 1000)
    return message_ev(
        message,
        chat=GROUP,
        sender=sender,
        sender_alt=sender_alt,
        msg_id=msg_id,
        timestamp_ms=sent,
        **kw,
    )


async def test_a_bare_call_under_her_number_asks_her_voice_note_sent_under_her_lid(
    tmp_path: Path,
) -> None:
    group = {"type": "group", "jid": GROUP, "name": "Family"}
    voice = AudioMessage(
        mimetype="audio/ogg; codecs=opus", fileLength=2048, seconds=7, PTT=True, **MEDIA_KEYS
    )
    call = ExtendedTextMessage(
        text=f"@{OWNER}", contextInfo=ContextInfo(mentionedJID=[f"{OWNER}@s.whatsapp.net"])
    )
    async with wired(tmp_path, config=loaded(group)) as w:
        for ev in (
            in_group(
                Message(conversation="hi all"),
                "3EB0A1",
                f"{LID}:3@lid",
                f"{ALICE}:3@s.whatsapp.net",
            ),
            in_group(
                Message(conversation="Dinner on Friday?"),
                "3EB0B1",
                "491702222222:2@s.whatsapp.net",
                push_name="Bob",
            ),
            in_group(Message(audioMessage=voice), "3EB0A2", f"{LID}:3@lid"),
            in_group(Message(extendedTextMessage=call), "3EB0A3", f"{ALICE}:3@s.whatsapp.net"),
        ):
            await dispatch(w.client, ev)
        records = list(w.log.read())

    request = planned(records, loaded(group))

    assert request.trigger_ids == ["3EB0A3"]
    context, answer = request.messages[-1].content.split(f"\n\n{ANSWER_HEAD}\n")
    assert answer == f"Alice: [voice note, 7 s, not transcribed]\nAlice: @{OWNER}"
    assert context.split("\n") == [CONTEXT_HEAD, "Alice: hi all", "Bob: Dinner on Friday?"]


def planned(records: list[Recorded], config: Any) -> LlmRequested:
    """The request the daemon's turn records for the group, its skips folded in first."""
    counter = itertools.count(1)
    ids = Ids(lambda: f"id{next(counter)}", lambda: "WA")
    later = time.time() + 60  # the burst's debounce is over
    for _ in range(len(records) + 1):
        plan = turn.step(turn.Facts(fold(records), config, later, ids), GROUP)
        if isinstance(plan.effect, turn.Ask):
            return plan.effect.request
        assert all(
            isinstance(e, MessageSkipped) and e.reason == "not_triggered" for e in plan.events
        )
        skips: list[AnyEvent] = list(plan.events)
        records += [Recorded(len(records) + n, later, e) for n, e in enumerate(skips, 1)]
    raise AssertionError("no request planned")
