"""Budget windows and owner takeover pauses."""

from events.model import (
    AnyEvent,
    LlmCompleted,
    MessageSkipped,
    Recorded,
    ReplyPlanned,
    ReplyPurpose,
    Usage,
)
from projections import budget, takeover
from projections.fold import fold

CHAT = "491701111111@s.whatsapp.net"
OTHER = "491702222222@s.whatsapp.net"
DAY = 86400.0


def at(*pairs: tuple[float, AnyEvent]) -> list[Recorded]:
    """Records from (ts, event) pairs."""
    return [Recorded(i, ts, e) for i, (ts, e) in enumerate(pairs, 1)]


def reply(chat: str = CHAT, purpose: ReplyPurpose = "reply") -> ReplyPlanned:
    return ReplyPlanned(chat=chat, reply_id="r", purpose=purpose, text="x")


def cost(usd: float | None) -> LlmCompleted:
    return LlmCompleted(chat=CHAT, call_id="c", content="x", usage=Usage(cost_usd=usd))


def test_replies_in_the_last_hour_per_chat():
    state = fold(
        at(
            (1000.0, reply()),
            (2000.0, reply()),
            (2500.0, reply(OTHER)),
            (2600.0, reply(purpose="debug")),
        )
    ).budget
    assert budget.replies_last_hour(state, CHAT, now=3000.0) == 2
    assert budget.replies_last_hour(state, CHAT, now=4600.0) == 1  # 1000 is exactly an hour old
    assert budget.replies_last_hour(state, CHAT, now=5600.0) == 0
    assert budget.replies_last_hour(state, OTHER, now=3000.0) == 1


def test_spend_since_sums_known_costs():
    state = fold(at((100.0, cost(0.5)), (200.0, cost(None)), (300.0, cost(0.25)))).budget
    assert budget.spent_since(state, 0.0) == 0.75
    assert budget.spent_since(state, 150.0) == 0.25
    assert budget.spent_since(state, 301.0) == 0.0


def test_old_entries_are_pruned_as_the_log_moves_on():
    state = fold(
        at((0.0, reply()), (10.0, cost(1.0)), (DAY, reply(OTHER)), (9 * DAY, cost(2.0)))
    ).budget
    assert CHAT not in state.replies
    assert state.cost_usd == [2.0]
    assert budget.spent_since(state, 0.0) == 2.0


def test_takeover_pauses_from_the_last_owner_message():
    skip = MessageSkipped(chat=CHAT, msg_id="m", reason="takeover")
    other = MessageSkipped(chat=OTHER, msg_id="m", reason="echo")
    state = fold(at((100.0, skip), (400.0, skip), (500.0, other))).takeover
    assert takeover.paused_until(state, CHAT, 30) == 400.0 + 1800
    assert takeover.paused_until(state, CHAT, 0.5) == 430.0
    assert takeover.paused_until(state, OTHER, 30) is None
