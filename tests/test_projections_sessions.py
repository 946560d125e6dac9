"""Sessions: turns, the max_messages bound, and expiry in each mode."""

from datetime import UTC, datetime

import pytest

from events.model import (
    AnyEvent,
    ChatTurn,
    Compacted,
    ConfigLoaded,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    Recorded,
    SessionStarted,
)
from projections import sessions
from projections.fold import fold

CHAT = "491701111111@s.whatsapp.net"
LID = "123456789@lid"
BERLIN = "Europe/Berlin"


def folded(*events: AnyEvent, start: float = 1000.0) -> sessions.State:
    records = [Recorded(i, start + i, e) for i, e in enumerate(events, 1)]
    return fold(records, [sessions.PROJECTION]).sessions


def started(session_id: str = "s1", user: str = CHAT) -> SessionStarted:
    return SessionStarted(chat=CHAT, session_id=session_id, user=user, reason="new")


def exchange(n: int, session_id: str = "s1") -> list[AnyEvent]:
    call = f"c{n}"
    return [
        LlmRequested(
            chat=CHAT,
            call_id=call,
            session_id=session_id,
            trigger_ids=[f"m{n}"],
            model="m",
            params={},
            messages=[ChatTurn("system", "be nice"), ChatTurn("user", f"q{n}")],
            config_hash="h",
        ),
        LlmCompleted(chat=CHAT, call_id=call, content=f"a{n}"),
    ]


def test_an_answer_without_text_leaves_no_empty_assistant_turn():
    # The model wrote nothing (the turn then failed): its question stays, no blank answer.
    request, _ = exchange(1)
    empty = LlmCompleted(chat=CHAT, call_id="c1", content="  ")
    state = folded(started(), request, empty, *exchange(2))
    session = sessions.current(state, CHAT, [CHAT])
    assert session is not None
    assert sessions.context(session) == [
        ChatTurn("user", "q1"),
        ChatTurn("user", "q2"),
        ChatTurn("assistant", "a2"),
    ]


def config(max_messages: int) -> ConfigLoaded:
    body = {"session_memory": {"mode": "idle", "max_messages": max_messages}}
    return ConfigLoaded(hash=str(max_messages), config=body, path="app.json")


def test_completed_call_adds_user_and_assistant_turns():
    state = folded(started(), *exchange(1))
    session = sessions.current(state, CHAT, [LID, CHAT])
    assert session is not None
    assert sessions.context(session) == [ChatTurn("user", "q1"), ChatTurn("assistant", "a1")]
    assert (session.started_at, session.last_activity) == (1001.0, 1003.0)


def test_turns_bounded_by_max_messages_and_open_with_user():
    state = folded(config(4), started(), *exchange(1), *exchange(2), *exchange(3))
    session = sessions.current(state, CHAT, [CHAT])
    assert session is not None
    assert [t.content for t in session.turns] == ["q2", "a2", "q3", "a3"]
    state = folded(config(3), started(), *exchange(1), *exchange(2))
    session = sessions.current(state, CHAT, [CHAT])
    assert session is not None
    assert [t.content for t in session.turns] == ["q2", "a2"]


def test_default_bound_is_ten():
    state = folded(started(), *[e for n in range(8) for e in exchange(n)])
    session = sessions.current(state, CHAT, [CHAT])
    assert session is not None
    assert len(session.turns) == 10
    assert session.turns[0].content == "q3"


def test_new_session_replaces_the_old_one():
    state = folded(started("s1"), *exchange(1, "s1"), started("s2"), *exchange(2, "s2"))
    assert set(state.sessions) == {"s2"}
    session = sessions.current(state, CHAT, [CHAT])
    assert session is not None
    assert [t.content for t in session.turns] == ["q2", "a2"]


def test_failed_call_adds_no_turns():
    request, _ = exchange(1)
    retry = LlmFailed(chat=CHAT, call_id="c1", error="timeout", final=False)
    assert "c1" in folded(started(), request, retry).pending
    final = LlmFailed(chat=CHAT, call_id="c1", error="400", final=True)
    state = folded(started(), request, final, LlmCompleted(chat=CHAT, call_id="c1", content="x"))
    assert state.pending == {}
    assert state.sessions["s1"].turns == []


def test_current_looks_up_every_alias_form():
    state = folded(started(user=LID))
    assert sessions.current(state, CHAT, [CHAT]) is None
    session = sessions.current(state, CHAT, [CHAT, LID])
    assert session is not None
    assert session.session_id == "s1"


def _session(started_at: float, last_activity: float) -> sessions.Session:
    return sessions.Session(
        session_id="s",
        chat=CHAT,
        user=CHAT,
        started_at=started_at,
        last_activity=last_activity,
        reason="new",
    )


def _live(
    session: sessions.Session, now: float, mode: str, ttl: float = 10.0
) -> sessions.Session | None:
    state = sessions.State(sessions={"s": session}, current={f"{CHAT}|{CHAT}": "s"})
    return sessions.live(state, CHAT, [CHAT], now, mode, ttl, BERLIN)


@pytest.mark.parametrize(("mode", "end"), [("idle", 1600.0 + 600), ("fixed", 1000.0 + 600)])
def test_ttl_modes_expire_exactly_at_the_boundary(mode, end):
    session = _session(1000.0, 1600.0)
    assert sessions.expires_at(session, mode, 10, BERLIN) == end
    assert _live(session, end - 0.001, mode) is session
    assert _live(session, end, mode) is None


def test_fractional_ttl():
    session = _session(1000.0, 1000.0)
    assert sessions.expires_at(session, "idle", 0.05, BERLIN) == pytest.approx(1003.0)


def _utc(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("started_at", "midnight"),
    [
        # Winter: midnight in Berlin is 23:00 UTC the day before.
        (_utc(2026, 1, 10, 12, 0), _utc(2026, 1, 10, 23, 0)),
        # Started just before midnight (22:59 UTC = 23:59 CET): expires a minute later.
        (_utc(2026, 1, 10, 22, 59), _utc(2026, 1, 10, 23, 0)),
        # The day clocks go forward (23 h long): next midnight is CEST, 22:00 UTC.
        (_utc(2026, 3, 29, 0, 30), _utc(2026, 3, 29, 22, 0)),
        # The day clocks go back (25 h long): next midnight is CET again, 23:00 UTC.
        (_utc(2026, 10, 24, 22, 30), _utc(2026, 10, 25, 23, 0)),
    ],
)
def test_daily_mode_expires_at_local_midnight_across_dst(started_at, midnight):
    session = _session(started_at, started_at)
    assert sessions.expires_at(session, "daily", 0, BERLIN) == midnight
    assert _live(session, midnight - 0.001, "daily") is session
    assert _live(session, midnight, "daily") is None


def test_never_mode_does_not_expire():
    session = _session(1000.0, 1000.0)
    assert sessions.expires_at(session, "never", 10, BERLIN) is None
    assert _live(session, 1e12, "never") is session


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown session mode 'weekly'"):
        sessions.expires_at(_session(0.0, 0.0), "weekly", 10, BERLIN)


def test_a_session_replaced_after_its_requests_went_keeps_when_it_was_last_active():
    """An expiry that removed a session's request lowers its ``last_activity``; the
    answer it got still counts (the budget) until the time it was really last active,
    whether the session is still current or was replaced since."""
    tracking = ConfigLoaded(
        hash="h", config={"rotation": {"drop_expired_sessions": True}}, path="app.json"
    )
    went = Compacted.of("expiry", {"LlmRequested": 1}, 3, seqs=[3])
    live = folded(tracking, started("s1"), *exchange(1), went)  # the answer at 1004
    replaced = folded(tracking, started("s1"), *exchange(1), went, started("s2"))
    for state in (live, replaced):
        held = sessions.expired_texts(state, 10_000.0, "idle", 1, BERLIN, counted_before=1003.0)
        assert 4 not in held  # the answer, while the budget counts it
