"""The queue: which inbound messages still need a decision."""

from typing import Any

from events.model import (
    AnyEvent,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    Media,
    MediaFetched,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageSkipped,
    Recorded,
    ReplyPlanned,
    ReplyPurpose,
)
from projections import queue
from projections.fold import fold

ALICE = "491701111111@s.whatsapp.net"
BOB = "491702222222@s.whatsapp.net"


def folded(*events: AnyEvent) -> queue.State:
    records = [Recorded(i, 1000.0 + i, e) for i, e in enumerate(events, 1)]
    return fold(records, [queue.PROJECTION]).queue


def msg(msg_id: str, chat: str = ALICE, **kw: Any) -> MessageReceived:
    return MessageReceived(chat=chat, msg_id=msg_id, sender=chat, text=f"text {msg_id}", **kw)


def request(call_id: str, *ids: str, chat: str = ALICE) -> LlmRequested:
    return LlmRequested(
        chat=chat,
        call_id=call_id,
        session_id="s1",
        trigger_ids=list(ids),
        model="m",
        params={},
        messages=[],
        config_hash="h",
    )


def reply(
    call_id: str | None = None,
    in_reply_to: str | None = None,
    trigger_ids: tuple[str, ...] = (),
    purpose: ReplyPurpose = "reply",
    chat: str = ALICE,
) -> ReplyPlanned:
    return ReplyPlanned(
        chat=chat,
        reply_id=f"r-{call_id}-{in_reply_to}",
        purpose=purpose,
        text="answer",
        call_id=call_id,
        in_reply_to=in_reply_to,
        trigger_ids=list(trigger_ids),
    )


def statuses(state: queue.State, chat: str = ALICE) -> list[tuple[str, str, str | None]]:
    return [(i.message.msg_id, i.status, i.call_id) for i in queue.pending(state, chat)]


def test_received_message_is_pending_with_its_envelope():
    state = folded(msg("M1", push_name="Alice", mentions=["x@s.whatsapp.net"]), msg("M1"))
    [item] = queue.pending(state, ALICE)
    assert (item.seq, item.ts, item.text, item.message.push_name) == (1, 1001.0, "text M1", "Alice")
    assert item.message.mentions == ["x@s.whatsapp.net"]
    assert (item.status, item.call_id) == ("pending", None)


def test_the_item_holds_the_recorded_message_and_what_came_of_it_after():
    """An edit before the call and a later fetch change what the turn reads, never the event."""
    image = Media(kind="image", mime="image/png")
    fetched = Media(kind="image", mime="image/png", size=10, sha256="a" * 64)
    received = msg("M1", kind="image", media=image)
    state = folded(
        received,
        MessageEdited(chat=ALICE, msg_id="M1", text="first words"),
        MessageEdited(chat=ALICE, msg_id="M1", text="settled words"),
        MediaFetched(chat=ALICE, msg_id="M1", media=fetched),
        MessageRevoked(chat=ALICE, msg_id="M1"),
    )
    [item] = queue.pending(state, ALICE)
    assert item.message is received  # the event itself, not a copy
    assert (item.text, item.media, item.revoked) == ("settled words", fetched, True)
    asked = folded(received, request("c1", "M1"), MessageEdited(chat=ALICE, msg_id="M1", text="x"))
    [item] = queue.pending(asked, ALICE)
    assert (item.text, item.media) == ("text M1", image)  # asked already: too late to edit


def test_only_the_authors_own_edit_changes_what_the_turn_answers():
    """Bob's client can key an edit to Alice's message: recorded, but her words stay.

    Her own edit counts by either of her ids, an edit that does not say who made it
    (older logs, stdin) counts as before, and the owner edits only the owner's messages.
    """
    group, alice_lid = "120363000000000000@g.us", "123456789012345@lid"
    alices = MessageReceived(
        chat=group, msg_id="A1", sender=alice_lid, sender_alt=ALICE, text="pay Carol 10"
    )
    owners = MessageReceived(
        chat=group, msg_id="O1", sender="491700000000@s.whatsapp.net", from_me=True, text="hi"
    )

    def text_after(*edits: MessageEdited) -> list[str]:
        state = folded(alices, owners, *edits)
        return [item.text for item in queue.pending(state, group)]

    def edit(msg_id: str, words: str, **who: Any) -> MessageEdited:
        return MessageEdited(chat=group, msg_id=msg_id, text=words, **who)

    assert text_after(edit("A1", "pay Bob 1000", editor=BOB)) == ["pay Carol 10", "hi"]
    forged = edit("A1", "pay Bob 1000", editor="555555555555555@lid", editor_alt=BOB)
    assert text_after(forged) == ["pay Carol 10", "hi"]
    assert text_after(edit("A1", "pay Bob", editor=ALICE, from_me=True)) == ["pay Carol 10", "hi"]
    assert text_after(edit("O1", "hi all", editor=alice_lid)) == ["pay Carol 10", "hi"]

    assert text_after(edit("A1", "pay Carol 20", editor=alice_lid)) == ["pay Carol 20", "hi"]
    by_phone = edit("A1", "pay Carol 30", editor=ALICE)  # her other id
    assert text_after(forged, by_phone) == ["pay Carol 30", "hi"]
    unsaid = edit("A1", "pay Carol 40")
    assert text_after(unsaid) == ["pay Carol 40", "hi"]
    mine = edit("O1", "hi all", editor="987654321098765@lid", from_me=True)
    assert text_after(mine) == ["pay Carol 10", "hi all"]


def test_call_lifecycle_drains_on_planned_reply():
    events: list[AnyEvent] = [msg("M1"), msg("M2"), request("C1", "M1", "M2")]
    assert statuses(folded(*events)) == [("M1", "requested", "C1"), ("M2", "requested", "C1")]
    events.append(LlmCompleted(chat=ALICE, call_id="C1", content="hi", latency_ms=5))
    state = folded(*events)
    assert statuses(state) == [("M1", "answered", "C1"), ("M2", "answered", "C1")]
    answer = queue.completion(state, "C1")
    assert answer is not None
    assert (answer.content, answer.seq) == ("hi", 4)
    state = folded(*events, reply("C1"))
    assert queue.chats_with_work(state) == []
    assert queue.completion(state, "C1") is None


def test_skip_removes_only_that_message():
    state = folded(msg("M1"), msg("M2"), MessageSkipped(chat=ALICE, msg_id="M1", reason="echo"))
    assert statuses(state) == [("M2", "pending", None)]


def test_final_failure_drains_but_retryable_failure_keeps_it_queued():
    retry = LlmFailed(chat=ALICE, call_id="C1", error="503", final=False)
    state = folded(msg("M1"), request("C1", "M1"), retry)
    assert statuses(state) == [("M1", "requested", "C1")]
    state = folded(msg("M1"), request("C1", "M1"), retry, request("C2", "M1"))
    assert statuses(state) == [("M1", "requested", "C2")]
    final = LlmFailed(chat=ALICE, call_id="C2", error="400", final=True)
    state = folded(msg("M1"), msg("M9"), request("C1", "M1"), retry, request("C2", "M1"), final)
    assert statuses(state) == [("M9", "pending", None)]


def test_reply_without_call_drains_the_messages_it_names():
    state = folded(msg("M1"), msg("M2"), msg("M3"), reply(in_reply_to="M3", trigger_ids=("M1",)))
    assert statuses(state) == [("M2", "pending", None)]


def test_debug_note_does_not_drain():
    state = folded(msg("M1"), request("C1", "M1"), reply("C1", in_reply_to="M1", purpose="debug"))
    assert statuses(state) == [("M1", "requested", "C1")]


def test_chats_ordered_by_their_oldest_waiting_message():
    state = folded(msg("A1"), msg("B1", chat=BOB), msg("A2"))
    assert queue.chats_with_work(state) == [ALICE, BOB]
    state = folded(
        msg("A1"),
        msg("B1", chat=BOB),
        MessageSkipped(chat=ALICE, msg_id="A1", reason="x"),
        msg("A2"),
    )
    assert queue.chats_with_work(state) == [BOB, ALICE]


def test_answer_is_forgotten_when_all_its_messages_are_skipped():
    events: list[AnyEvent] = [
        msg("M1"),
        request("C1", "M1"),
        LlmCompleted(chat=ALICE, call_id="C1", content="late"),
        MessageSkipped(chat=ALICE, msg_id="M1", reason="stale"),
    ]
    state = folded(*events)
    assert queue.completion(state, "C1") is None
    assert queue.pending(state, ALICE) == []


def test_apply_matches_fold():
    events: list[AnyEvent] = [msg("M1"), request("C1", "M1"), msg("M2")]
    state = queue.State()
    for i, e in enumerate(events, 1):
        state = queue.apply(state, Recorded(i, 1000.0 + i, e))
    assert state == folded(*events)
    assert queue.PROJECTION.handles >= {MessageReceived, ReplyPlanned}
