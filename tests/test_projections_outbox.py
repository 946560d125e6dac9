"""Outbox: planned replies stay until confirmed sent or finally failed."""

from events.model import AnyEvent, Recorded, ReplyFailed, ReplyPlanned, ReplySent
from projections import outbox
from projections.fold import fold

CHAT = "491701111111@s.whatsapp.net"


def folded(*events: AnyEvent) -> outbox.State:
    records = [Recorded(i, 1000.0 + i, e) for i, e in enumerate(events, 1)]
    return fold(records, [outbox.PROJECTION]).outbox


def plan(reply_id: str) -> ReplyPlanned:
    return ReplyPlanned(chat=CHAT, reply_id=reply_id, purpose="reply", text="hi")


def test_unsent_in_log_order_until_sent():
    state = folded(
        plan("r1"), plan("r2"), plan("r3"), ReplySent(reply_id="r2", wa_id="W", sent_at=0)
    )
    assert [(e.seq, e.event.reply_id) for e in outbox.unsent(state)] == [(1, "r1"), (3, "r3")]


def test_retryable_failure_counts_attempts_and_final_failure_drops():
    retry = ReplyFailed(reply_id="r1", error="offline", final=False)
    state = folded(plan("r1"), plan("r1"), retry, retry)
    [entry] = outbox.unsent(state)
    assert (entry.seq, entry.attempts) == (1, 2)
    final = ReplyFailed(reply_id="r1", error="banned", final=True)
    assert outbox.unsent(folded(plan("r1"), retry, final)) == []
