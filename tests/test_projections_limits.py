"""Budget windows, calls in flight and owner takeover pauses."""

import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.model import (
    AnyEvent,
    ChatTurn,
    Compacted,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
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
HOUR_STEP = 1800.0  # half an hour: the sweep runs every hour of log time


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


def test_an_answer_split_into_parts_is_one_reply():
    """A long answer goes as numbered parts: the limit counts answers, not messages."""
    parts = [
        ReplyPlanned(chat=CHAT, reply_id=f"r{n}", purpose="reply", text="x", part=n, parts=4)
        for n in range(1, 5)
    ]
    state = fold(at(*[(1000.0 + n, p) for n, p in enumerate(parts)], (1100.0, reply()))).budget
    assert budget.replies_last_hour(state, CHAT, now=2000.0) == 2
    assert budget.replies_last_hour(state, CHAT, now=1000.0 + HOUR_STEP * 2) == 1  # part 1 aged


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


def test_costs_packed_in_columns_answer_the_same_after_a_snapshot_and_a_sweep():
    costs = [(n * HOUR_STEP, cost(0.001 * (n + 1))) for n in range(300)]
    state = fold(at(*costs)).budget
    restored = msgspec.msgpack.Decoder(budget.State).decode(msgspec.msgpack.encode(state))
    assert restored == state
    for since in (0.0, 100 * HOUR_STEP, 299 * HOUR_STEP, 299 * HOUR_STEP + 1):
        expected = sum(0.001 * (n + 1) for n in range(300) if n * HOUR_STEP >= since)
        assert budget.spent_since(restored, since) == pytest.approx(expected)
        assert budget.spent_since(restored, since) == budget.spent_since(state, since)
    # Nine days on, the sweep drops the costs older than the window, columns alike.
    later = fold(at(*costs, (300 * HOUR_STEP + 9 * DAY, cost(5.0)))).budget
    assert later.cost_usd == [5.0]
    assert budget.spent_since(later, 0.0) == 5.0


def test_takeover_pauses_from_the_last_owner_message():
    skip = MessageSkipped(chat=CHAT, msg_id="m", reason="takeover")
    other = MessageSkipped(chat=OTHER, msg_id="m", reason="echo")
    state = fold(at((100.0, skip), (400.0, skip), (500.0, other))).takeover
    assert takeover.paused_until(state, CHAT, 30) == 400.0 + 1800
    assert takeover.paused_until(state, CHAT, 0.5) == 430.0
    assert takeover.paused_until(state, OTHER, 30) is None


def requested(chat: str, call_id: str) -> LlmRequested:
    return LlmRequested(
        chat=chat,
        call_id=call_id,
        session_id="s",
        trigger_ids=["m"],
        model="m",
        params={},
        messages=[ChatTurn("user", "hi")],
        config_hash="h",
    )


def answered(chat: str, call_id: str, usd: float | None) -> LlmCompleted:
    return LlmCompleted(chat=chat, call_id=call_id, content="x", usage=Usage(cost_usd=usd))


def test_calls_in_flight_are_those_with_no_outcome_yet():
    state = fold(
        at(
            (1.0, requested(CHAT, "c1")),
            (2.0, requested(OTHER, "c2")),
            (3.0, answered(CHAT, "c1", 0.01)),
            (4.0, requested(CHAT, "c3")),
            (5.0, LlmFailed(chat=CHAT, call_id="c3", error="x", final=False)),
        )
    ).budget
    assert state.in_flight == {OTHER: "c2", CHAT: "c3"}  # a retry is still in flight
    final = LlmFailed(chat=CHAT, call_id="c3", error="x", final=True)
    skipped = MessageSkipped(chat=OTHER, msg_id="m", reason="stale")  # an orphan, given up
    budget.apply(state, Recorded(6, 6.0, final))
    budget.apply(state, Recorded(7, 7.0, skipped))
    assert state.in_flight == {}


def test_a_call_asked_again_after_a_restart_is_one_call():
    state = fold(at((1.0, requested(CHAT, "orphan")), (2.0, requested(CHAT, "again")))).budget
    assert state.in_flight == {CHAT: "again"}


def test_calls_in_flight_are_reserved_at_the_mean_cost_of_recent_calls():
    first = fold(at((1.0, requested(CHAT, "c1")))).budget
    # No call has reported a cost yet: one in flight could take all that is left.
    assert budget.committed(first, 0.0) == math.inf
    assert budget.committed(budget.State(), 0.0) == 0.0
    state = fold(
        at(
            (1.0, requested(CHAT, "c1")),
            (2.0, answered(CHAT, "c1", 0.01)),
            (3.0, requested(CHAT, "c2")),
            (4.0, answered(CHAT, "c2", 0.03)),
            (5.0, requested(CHAT, "c3")),
        )
    ).budget
    assert budget.estimate(state) == pytest.approx(0.02)
    assert budget.committed(state, 0.0) == pytest.approx(0.04 + 0.02)
    assert budget.committed(state, 3.0) == pytest.approx(0.03 + 0.02)  # spent since 3.0
    # Chats whose call is decided but not in the log yet; a chat counts once.
    assert budget.committed(state, 0.0, {OTHER, CHAT}) == pytest.approx(0.04 + 2 * 0.02)


def test_a_provider_that_reports_no_cost_reserves_nothing():
    state = fold(
        at(
            (1.0, requested(CHAT, "c1")),
            (2.0, answered(CHAT, "c1", None)),
            (3.0, requested(CHAT, "c2")),
        )
    ).budget
    assert budget.estimate(state) == 0.0
    assert budget.committed(state, 0.0) == 0.0


def test_a_failed_call_that_was_billed_is_spent_and_estimated():
    """An answer with nothing usable (a reasoning model out of output tokens) still
    costs: it counts against the budget and in the estimate of what a call costs."""
    billed = Usage(output_tokens=1024, cost_usd=0.02)
    state = fold(
        at(
            (1.0, requested(CHAT, "c1")),
            (2.0, LlmFailed(chat=CHAT, call_id="c1", error="x", final=True, usage=billed)),
            (3.0, requested(CHAT, "c2")),
            (4.0, LlmFailed(chat=CHAT, call_id="c2", error="x", final=False, usage=billed)),
            (5.0, LlmFailed(chat=CHAT, call_id="c2", error="HTTP 500", final=True)),
            (6.0, requested(OTHER, "c3")),
        )
    ).budget
    assert budget.spent_since(state, 0.0) == pytest.approx(0.04)
    assert budget.spent_since(state, 0.0, "llm") == pytest.approx(0.04)
    assert budget.spent_since(state, 3.0) == pytest.approx(0.02)
    # Failures with no answer (HTTP 500) were not billed and leave the estimate alone.
    assert budget.estimate(state) == pytest.approx(0.02)
    assert budget.committed(state, 0.0) == pytest.approx(0.04 + 0.02)


def test_the_estimate_follows_the_recent_calls():
    events: list[tuple[float, AnyEvent]] = []
    for n in range(budget.ESTIMATE_CALLS + 5):
        usd = 1.0 if n < 5 else 0.01
        events += [
            (float(2 * n), requested(CHAT, f"c{n}")),
            (2 * n + 1.0, answered(CHAT, f"c{n}", usd)),
        ]
    state = fold(at(*events)).budget
    assert budget.estimate(state) == pytest.approx(0.01)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("costs"), st.lists(st.floats(1e-6, 5.0), min_size=1, max_size=5)),
            st.tuples(st.just("nine days on"), st.lists(st.floats(1e-6, 5.0), max_size=5)),
            st.tuples(st.just("compact"), st.just([])),
            st.tuples(st.just("snapshot"), st.just([])),
        ),
        max_size=40,
    ),
    st.sampled_from([0.0, 5 * DAY, 9 * DAY]),
)
def test_todays_spend_is_the_plain_sum_bit_for_bit_however_the_costs_changed(
    steps: list[tuple[str, list[float]]], since: float
) -> None:
    """``spent_since`` keeps a running total between calls; the float it returns is exactly
    the one a sum over the costs gives, through costs added in bursts, swept (nine days
    on), compacted and restored from a snapshot, and asked with another ``since`` between."""
    state, seq, now = budget.State(), 0, 0.0
    for kind, costs in steps:
        if kind == "nine days on":
            now += 9 * DAY
        elif kind == "compact":
            seq += 1
            marker = Compacted.of("rotation", {}, seq - 1, older_than=now - HOUR_STEP)
            budget.apply(state, Recorded(seq, now, marker))
        elif kind == "snapshot":
            state = msgspec.msgpack.Decoder(budget.State).decode(msgspec.msgpack.encode(state))
        for usd in costs:
            seq, now = seq + 1, now + 60.0
            budget.apply(state, Recorded(seq, now, cost(usd)))
        for asked in (since, now - DAY, since):
            times = list(budget._times(state))
            expected = sum(c for c, t in zip(state.cost_usd, times, strict=True) if t >= asked)
            assert budget.spent_since(state, asked) == expected
