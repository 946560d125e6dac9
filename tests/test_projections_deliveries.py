"""Sent is not delivered (issue 18, item 12) and replies carry the chat's timer (item 6):
the deliveries and timers projections, and when ``undelivered`` is owed.

Times are the log's record times; the undelivered limit here is 30 minutes.
"""

from __future__ import annotations

from events.compaction import removed
from events.model import (
    AnyEvent,
    Compacted,
    MessageReceived,
    OwnerAlerted,
    ReceiptState,
    Recorded,
    ReplyDelivered,
    ReplySent,
    TimerChanged,
)
from events.protocol import Selection
from projections import alerts, deliveries, timers
from projections.fold import States, fold

OWNER = "491700000000@s.whatsapp.net"
ALICE = "491701111111@s.whatsapp.net"
BOB = "491702222222@s.whatsapp.net"
MINUTES = 30.0
LIMIT = MINUTES * 60
T0 = 1_764_070_000.0


def log(*timed: tuple[float, AnyEvent]) -> list[Recorded]:
    """Records at the given offsets (seconds after T0), in order."""
    return [Recorded(n, T0 + at, ev) for n, (at, ev) in enumerate(timed, start=1)]


def sent(wa_id: str, chat: str = ALICE) -> ReplySent:
    return ReplySent(chat=chat, reply_id=f"r-{wa_id}", wa_id=wa_id, sent_at=0.0)


def receipt(wa_id: str, state: ReceiptState, chat: str = ALICE) -> ReplyDelivered:
    return ReplyDelivered(chat=chat, reply_id=f"r-{wa_id}", wa_id=wa_id, state=state, at=T0)


def owed_at(states: States, at: float, up_since: float | None = T0) -> str | None:
    return alerts.undelivered(states.alerts, states.deliveries, T0 + at, MINUTES, OWNER, up_since)


def compact(records: list[Recorded], selection: Selection) -> list[Recorded]:
    """``records`` and the marker of removing what ``selection`` matches."""
    gone = [(r.seq, type(r.event).__name__, r.chat) for r in records if selection.matches(r)]
    marker = removed(selection, "expiry", gone)
    assert isinstance(marker, Compacted)
    return [*records, Recorded(records[-1].seq + 1, records[-1].ts, marker)]


# -- deliveries ---------------------------------------------------------------


def test_a_receipt_finds_its_reply_and_the_furthest_state_never_goes_back() -> None:
    states = fold(
        log(
            (0, sent("W1")),
            (1, receipt("W1", "played")),
            (2, receipt("W1", "read")),  # phones report out of order
            (3, receipt("W9", "delivered")),  # no such send: nothing
        )
    )
    found = deliveries.find(states.deliveries, "W1")
    assert found is not None
    assert (found.chat, found.reply_id) == (ALICE, "r-W1")
    assert deliveries.furthest(states.deliveries, "W1") == "played"
    assert set(deliveries.receipts_of(states.deliveries, "W1")) == {"played", "read"}  # both kept
    assert deliveries.find(states.deliveries, "W9") is None
    assert deliveries.unconfirmed(states.deliveries) == []  # played implies it reached the phone


def test_sent_means_the_server_only_until_a_phone_confirms() -> None:
    states = fold(log((0, sent("W1")), (1, receipt("W1", "server"))))
    found = deliveries.find(states.deliveries, "W1")
    assert found is not None
    assert deliveries.furthest(states.deliveries, "W1") == "server"
    assert deliveries.unconfirmed(states.deliveries) == ["W1"]


def test_a_message_sent_again_under_its_id_starts_afresh() -> None:
    # After a crash between sending and recording, the stdio transport resends under the id.
    states = fold(log((0, sent("W1")), (1, receipt("W1", "read")), (2, sent("W1"))))
    assert deliveries.unconfirmed(states.deliveries) == ["W1"]
    assert states.deliveries.receipts == 0  # so nothing counts as reported any more
    assert deliveries.receipts_of(states.deliveries, "W1") == {}


def test_a_removed_receipt_puts_its_message_back_among_the_waiting() -> None:
    records = log((0, sent("W1")), (1, sent("W2")), (2, receipt("W1", "delivered")))
    states = fold(compact(records, Selection(seqs=frozenset({3}))))
    assert deliveries.unconfirmed(states.deliveries) == ["W1", "W2"]
    assert deliveries.find(states.deliveries, "W1") is not None
    assert deliveries.receipts_of(states.deliveries, "W1") == {}
    assert states.deliveries.reported == {}  # nothing left behind for it


def test_a_forgotten_chat_leaves_no_sends_behind() -> None:
    records = log((0, sent("W1")), (1, sent("W2", BOB)), (2, receipt("W1", "read")))
    states = fold(compact(records, Selection(chats=frozenset({ALICE}))))
    assert list(states.deliveries.sent) == ["W2"]
    assert deliveries.unconfirmed(states.deliveries) == ["W2"]
    assert states.deliveries.reported == {}  # W1's receipt went with it


def test_no_message_is_held_as_waiting_until_the_first_receipt_and_then_all_are() -> None:
    before = fold(log((0, sent("W1")), (1, sent("W2")), (2, sent("W3"))))
    assert before.deliveries.waiting == {}  # a transport without receipts: nothing watched
    assert deliveries.unconfirmed(before.deliveries) == ["W1", "W2", "W3"]
    after = fold(
        log((0, sent("W1")), (1, sent("W2")), (2, sent("W3")), (3, receipt("W2", "delivered")))
    )
    assert list(after.deliveries.waiting) == ["W1", "W3"]  # those sent before it too
    resent = fold(
        log((0, sent("W1")), (1, receipt("W1", "server")), (2, sent("W2")), (3, sent("W1")))
    )
    assert resent.deliveries.waiting == {}  # the resend took the only receipt with it
    assert deliveries.unconfirmed(resent.deliveries) == ["W2", "W1"]


def test_messages_sent_before_the_first_receipt_are_owed_once_it_came() -> None:
    states = fold(log((0, sent("W1")), (60, sent("W2", BOB)), (120, receipt("W1", "delivered"))))
    detail = owed_at(states, 60 + LIMIT)
    assert detail is not None
    assert BOB in detail


# -- the undelivered alert ------------------------------------------------------


def test_nothing_is_owed_while_the_transport_never_reported_a_receipt() -> None:
    # A stdio script that sends no receipt lines: no reply looks lost.
    states = fold(log((0, sent("W1")), (10, sent("W2"))))
    assert owed_at(states, 10 * LIMIT) is None


def test_a_reply_no_phone_confirmed_in_time_is_owed_once_the_clock_says_so() -> None:
    states = fold(log((0, sent("W1")), (1, receipt("W1", "delivered")), (60, sent("W2", BOB))))
    assert owed_at(states, 60 + LIMIT - 1) is None  # not yet
    detail = owed_at(states, 60 + LIMIT)
    assert detail is not None
    assert BOB in detail
    assert "30 min ago" in detail
    assert "W2" not in detail  # says who, not which message


def test_nothing_is_late_while_the_connection_is_down_nor_soon_after_it_is_back() -> None:
    # No receipt can arrive while it is down; those WhatsApp kept come after the reconnect.
    states = fold(log((0, sent("W1")), (1, receipt("W1", "delivered")), (60, sent("W2"))))
    assert owed_at(states, 100 * LIMIT, up_since=None) is None
    back = T0 + 99 * LIMIT
    assert owed_at(states, 100 * LIMIT - 1, up_since=back) is None
    assert owed_at(states, 100 * LIMIT, up_since=back) is not None


def test_the_owners_own_chat_and_old_replies_open_no_episode() -> None:
    # Replies sent long before the transport first reported a receipt are not watched:
    # receipts that begin today say nothing about last week's replies.
    states = fold(
        log(
            (0, sent("OLD")),
            (3 * LIMIT, sent("W1")),
            (3 * LIMIT + 1, receipt("W1", "read")),
            (3 * LIMIT + 2, sent("NOTE", OWNER)),
        )
    )
    assert owed_at(states, 10 * LIMIT) is None


def test_one_alert_per_episode_which_a_phones_receipt_ends() -> None:
    base: list[tuple[float, AnyEvent]] = [
        (0.0, sent("W1")),
        (1.0, receipt("W1", "delivered")),
        (10.0, sent("W2")),  # Alice's phone is off from here on
        (20.0, sent("W3", BOB)),
    ]
    states = fold(log(*base))
    first = owed_at(states, 20 + LIMIT)
    assert first is not None
    assert "2 messages in all" in first
    told = (20 + LIMIT, OwnerAlerted(kind="undelivered", ok=True, detail=first))
    during = (30 + LIMIT, sent("W4", BOB))
    assert owed_at(fold(log(*base, told, during)), 100 * LIMIT) is None  # told once
    # Bob's phone confirms: the episode ends; Alice's old message opens no new one ...
    back = (40 + LIMIT, receipt("W4", "delivered", BOB))
    assert owed_at(fold(log(*base, told, during, back)), 100 * LIMIT) is None
    # ... but a message sent after that, unconfirmed, does.
    later = (50 + LIMIT, sent("W5", BOB))
    again = owed_at(fold(log(*base, told, during, back, later)), 50 + 2 * LIMIT)
    assert again is not None
    assert BOB in again


def test_an_episode_whose_alert_was_compacted_away_is_not_told_again() -> None:
    records = log(
        (0, sent("W1")),
        (1, receipt("W1", "delivered")),
        (10, sent("W2")),
        (10 + LIMIT, OwnerAlerted(kind="undelivered", ok=True)),
    )
    states = fold(compact(records, Selection(seqs=frozenset({4}))))
    assert "undelivered" not in states.alerts.settled
    assert deliveries.find(states.deliveries, "W2") is not None  # still unconfirmed
    assert owed_at(states, 100 * LIMIT) is None


# -- timers -----------------------------------------------------------------------


def received(msg_id: str, expiration: int | None, *, from_me: bool = False) -> MessageReceived:
    return MessageReceived(
        chat=ALICE, msg_id=msg_id, sender=ALICE, from_me=from_me, expiration=expiration
    )


def test_a_chats_timer_is_its_newest_messages_owner_included() -> None:
    def timer(*events: MessageReceived) -> int | None:
        return timers.seconds(fold(log(*((0.0, e) for e in events))).timers, ALICE)

    assert timer() is None
    assert timer(received("M1", 86400)) == 86400
    assert timer(received("M1", 86400), received("M2", None)) == 86400  # said nothing
    assert timer(received("M1", 86400), received("M2", 604800, from_me=True)) == 604800
    assert timer(received("M1", 86400), received("M2", 0)) is None  # turned off
    assert timers.seconds(fold(log((0, received("M1", 86400)))).timers, BOB) is None


def test_a_timer_set_by_its_own_message_stands_until_another_says_one() -> None:
    def timer(*events: MessageReceived | TimerChanged) -> int | None:
        return timers.seconds(fold(log(*((0.0, e) for e in events))).timers, ALICE)

    def changed(msg_id: str, seconds: int) -> TimerChanged:
        return TimerChanged(chat=ALICE, msg_id=msg_id, expiration=seconds)

    # Switched off: the messages after it carry nothing, so only this says it.
    assert timer(received("M1", 604800), changed("T1", 0), received("M2", None)) is None
    assert timer(changed("T1", 86400)) == 86400  # on before any message carried it
    assert timer(changed("T1", 0), received("M2", 604800)) == 604800
    records = log((0, received("M1", 604800)), (1, changed("T1", 0)))
    # Rotated away with the messages before it: learnt again from the next one.
    went = fold(compact(records, Selection(seqs=frozenset({1, 2}))))
    assert timers.seconds(went.timers, ALICE) is None


def test_a_timer_goes_with_the_message_it_came_from() -> None:
    records = log((0, received("M1", 86400)), (1, received("M2", None)))
    kept = fold(compact(records, Selection(seqs=frozenset({2}))))
    assert timers.seconds(kept.timers, ALICE) == 86400
    went = fold(compact(records, Selection(chats=frozenset({ALICE}))))
    assert timers.seconds(went.timers, ALICE) is None
