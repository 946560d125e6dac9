"""A chat's words filed under other chats, as forget finds them: named, or known by what they
quote (records of versions before ``quotes_chat``)."""

from __future__ import annotations

from events.model import (
    AnyEvent,
    ChatTurn,
    LlmFailed,
    LlmRequested,
    MessageReceived,
    MessageSkipped,
    OwnerAlerted,
    Recorded,
    ReplyPlanned,
    ReplySent,
)
from projections.copies import copies, sources

ALICE = "491701111111@s.whatsapp.net"
ALICE_LID = "123456789012345@lid"
BOB = "491702222222@s.whatsapp.net"
OWNER = "491700000000@s.whatsapp.net"
ERROR = "bad request (HTTP 400): cannot take 'my plans'"


def _rec(seq: int, event: AnyEvent) -> Recorded:
    return Recorded(seq, 1_765_000_000.0 + seq, event)


def _requested(seq: int, chat: str) -> Recorded:
    turns = [ChatTurn("user", "my plans")]
    return _rec(
        seq,
        LlmRequested(
            chat=chat,
            call_id=f"c{seq}",
            session_id="s",
            trigger_ids=["m"],
            model="m",
            params={},
            messages=turns,
            config_hash="h",
        ),
    )


def _note(seq: int, name: str, quotes: str | None = None) -> Recorded:
    return _rec(
        seq,
        ReplyPlanned(
            chat=OWNER,
            reply_id=f"r{seq}",
            purpose="debug",
            text=f"[debug] {name}\nUser entry:\nmy plans",
            wa_id=f"W{seq}",
            quotes_chat=quotes,
        ),
    )


def test_old_and_new_copies_of_a_chat_are_found_and_nothing_else():
    alice = [
        _requested(11, ALICE),
        _rec(51, LlmFailed(chat=ALICE, call_id="c50", error=ERROR, status=400, final=True)),
    ]
    found = sources(alice)
    elsewhere = [
        _rec(1, ReplyPlanned(chat=OWNER, reply_id="boot", purpose="startup", text="wabot started")),
        _note(10, "Alice"),  # recorded right before her LlmRequested
        _rec(12, ReplySent(chat=OWNER, reply_id="r10", wa_id="W10", sent_at=0.0)),
        _rec(13, MessageReceived(chat=OWNER, msg_id="W10", sender=OWNER, text="…", from_me=True)),
        _rec(14, MessageSkipped(chat=OWNER, msg_id="W10", reason="echo")),
        _note(30, "Alice"),  # her request went with an ended session: known by her name
        _note(40, "Bob"),  # Bob's, right before Bob's request
        _note(60, ALICE_LID, quotes=ALICE_LID),
        _note(70, "Alice", quotes=BOB),  # named: Bob's, whatever its text says
        _rec(52, OwnerAlerted(kind="llm_failing", ok=True, detail=f"3 turns failed: {ERROR}")),
        _rec(53, ReplyPlanned(chat=OWNER, reply_id="a", purpose="alert", text=f"wabot — {ERROR}")),
        _rec(54, OwnerAlerted(kind="budget", ok=True, detail="the daily budget is spent")),
        _rec(80, OwnerAlerted(kind="llm_failing", ok=True, detail=ERROR, quotes_chat=BOB)),
        _rec(90, MessageReceived(chat=OWNER, msg_id="M9", sender=OWNER, text="my plans")),
    ]

    found_seqs = copies(elsewhere, {ALICE, ALICE_LID}, {"Alice"}, found)

    assert sorted(found_seqs) == [10, 12, 13, 14, 30, 52, 53, 60]
