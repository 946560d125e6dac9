"""A chat's turn as pure functions: the plan from the view, the config and now alone."""

from __future__ import annotations

import itertools
from typing import Any

from events.model import (
    AnyEvent,
    Compacted,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MessageReceived,
    MessageRevoked,
    MessageSkipped,
    Recorded,
    ReplyPlanned,
    SessionStarted,
    Usage,
)
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.daemon import _decide as decide
from pipeline.daemon import _turn as turn
from pipeline.daemon._replies import Ids
from pipeline.llm import LlmResult
from projections import queue, sessions
from projections.fold import fold

NOW = 1_764_070_000.0
ALICE = "491701111111@s.whatsapp.net"


def loaded(**overrides: Any) -> LoadedConfig:
    data: dict[str, Any] = {
        "whatsapp": {"phone_number": "491700000000", "max_message_chars": 200},
        "monitored_entities": [{"type": "user", "phone": "491701111111"}],
        "polling": {"debounce_seconds": 2},
    }
    data.update(overrides)
    return LoadedConfig(
        config=config_from_dict(data), hash="h", path="app.json", secrets=Secrets(api_key=None)
    )


def facts(*events: AnyEvent, now: float = NOW, config: LoadedConfig | None = None) -> turn.Facts:
    records = [Recorded(n, NOW - 100 + n, e) for n, e in enumerate(events, 1)]
    counter = itertools.count(1)
    ids = Ids(lambda: f"id{next(counter)}", lambda: "WA")
    return turn.Facts(fold(records), config or loaded(), now, ids)


def received(n: int, text: str = "hi") -> MessageReceived:
    return MessageReceived(chat=ALICE, msg_id=f"M{n}", sender=ALICE, text=text, sent_at=NOW)


def test_a_chat_with_nothing_queued_has_nothing_to_plan() -> None:
    assert turn.step(facts(), ALICE) == turn.Plan()


def test_a_burst_waits_out_its_debounce_then_asks_with_a_new_session() -> None:
    first = facts(received(1), now=NOW - 98.5)  # recorded at NOW - 99
    assert turn.step(first, ALICE) == turn.Plan(effect=turn.Wait(NOW - 97))
    plan = turn.step(facts(received(1)), ALICE)
    started, requested = plan.events
    assert isinstance(started, SessionStarted)
    assert (started.reason, started.session_id) == ("new", "id1")
    assert isinstance(requested, LlmRequested)
    assert (requested.call_id, requested.session_id) == ("id2", "id1")
    assert requested.trigger_ids == ["M1"]
    assert isinstance(plan.effect, turn.Ask)
    assert (plan.effect.call_id, plan.effect.to, plan.effect.typing) == ("id2", ALICE, True)
    assert [i.message.msg_id for i in plan.effect.run] == ["M1"]


def test_a_reset_is_planned_without_a_call() -> None:
    plan = turn.step(facts(received(1, " /reset ")), ALICE)
    assert plan.effect is None
    started, reply = plan.events
    assert isinstance(started, SessionStarted)
    assert started.reason == "reset"
    assert isinstance(reply, ReplyPlanned)
    assert reply.text == turn.RESET_REPLY


def test_a_skip_is_recorded_and_said_in_words_never_the_text() -> None:
    old = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="secret", sent_at=NOW - 3600)
    plan = turn.step(facts(old), ALICE)
    assert plan.events == [MessageSkipped(chat=ALICE, msg_id="M1", reason="stale")]
    [(event, fields)] = plan.lines
    assert (event, fields["reason"]) == ("message_skipped", "stale")
    assert "secret" not in repr(plan.lines)


def test_a_call_orphaned_by_a_restart_is_asked_again() -> None:
    orphan = LlmRequested(
        chat=ALICE,
        call_id="C0",
        session_id="S0",
        trigger_ids=["M1"],
        model="m",
        params={},
        messages=[],
        config_hash="h",
    )
    plan = turn.step(facts(received(1), orphan), ALICE)
    assert isinstance(plan.effect, turn.Ask)
    assert [i.message.msg_id for i in plan.effect.run] == ["M1"]


def test_the_budget_spent_by_calls_in_flight_holds_the_turn_until_the_poll() -> None:
    config = loaded(limits={"daily_budget_usd": 0.0001})
    other = "491702222222@s.whatsapp.net"
    spent = LlmCompleted(chat=other, call_id="C9", content="x", usage=Usage(cost_usd=0.00005))
    alone = facts(spent, received(1), config=config)
    assert isinstance(turn.step(alone, ALICE).effect, turn.Ask)  # under the budget
    # A call decided in another chat, not in the log yet, may spend the rest.
    reserved = turn.Facts(alone.view, alone.loaded, alone.now, alone.ids, frozenset({other}))
    assert turn.step(reserved, ALICE) == turn.Plan(effect=turn.AwaitCosts(NOW + 5))


def result(content: str) -> LlmResult:
    return LlmResult(content=content, citations=[], usage=Usage(), finish_reason="stop")


def asked(*events: AnyEvent) -> tuple[list[AnyEvent], turn.Ask]:
    """What the log holds once a turn asked (its events recorded), and the ask."""
    plan = turn.step(facts(*events), ALICE)
    assert isinstance(plan.effect, turn.Ask)
    return [*events, *plan.events], plan.effect


def test_an_answer_is_recorded_with_its_parts() -> None:
    history, ask = asked(received(1))
    text = "A sentence of the answer, long enough to count. " * 6  # two parts of 200
    completed, *parts = turn.answered(facts(*history), ask, result(text)).events
    assert isinstance(completed, LlmCompleted)
    assert completed.call_id == ask.call_id
    assert [p.part for p in parts if isinstance(p, ReplyPlanned)] == [1, 2]
    assert all(isinstance(p, ReplyPlanned) and p.call_id == ask.call_id for p in parts)


def test_an_empty_answer_fails_the_call_for_good() -> None:
    history, ask = asked(received(1))
    completed, failed = turn.answered(facts(*history), ask, result("  ")).events
    assert isinstance(completed, LlmCompleted)
    assert isinstance(failed, LlmFailed)
    assert failed.final


def test_an_answer_to_messages_deleted_meanwhile_goes_nowhere() -> None:
    history, ask = asked(received(1))
    revoked = MessageRevoked(chat=ALICE, msg_id="M1")
    plan = turn.answered(facts(*history, revoked), ask, result("an answer"))
    completed, skipped = plan.events
    assert isinstance(completed, LlmCompleted)
    assert skipped == MessageSkipped(chat=ALICE, msg_id="M1", reason="revoked")
    assert turn.answered(facts(*history), ask, result("an answer")).lines == []


def test_the_answer_to_a_turn_a_compaction_removed_meanwhile_is_not_recorded() -> None:
    history, ask = asked(received(1, "my secret"))
    text = "You said: my secret"
    last = len(history)
    forget = Compacted.of("forget", {"MessageReceived": 1}, last, chats=[ALICE])
    rotation = Compacted.of("rotation", {"MessageReceived": 1}, last, older_than=NOW)
    for compacted in (forget, rotation):
        plan = turn.answered(facts(*history, compacted), ask, result(text))
        assert (plan.events, plan.effect) == ([], None)  # nothing recorded, nothing sent
        assert plan.lines == [("llm_answer_dropped", {"chat": ALICE, "call_id": ask.call_id})]
    # Another chat forgotten meanwhile changes nothing for this one.
    other = Compacted.of("forget", {"MessageReceived": 1}, last, chats=["4917099@s.whatsapp.net"])
    completed, reply = turn.answered(facts(*history, other), ask, result(text)).events
    assert isinstance(completed, LlmCompleted)
    assert isinstance(reply, ReplyPlanned)


def test_a_session_continues_only_under_the_prompt_it_was_answered_with() -> None:
    live = session("S1", system="persona A")
    assert decide.session_start(live, live, "persona A") is None
    assert decide.session_start(live, live, "persona B") == "config_changed"
    assert decide.session_start(None, live, "persona A") == "expired"
    assert decide.session_start(None, None, "persona A") == "new"
    unanswered = session("S2")  # asked nothing yet: it takes any prompt
    assert decide.session_start(unanswered, unanswered, "persona B") is None


def session(session_id: str, system: str = "") -> sessions.Session:
    return sessions.Session(
        session_id=session_id,
        chat=ALICE,
        user=ALICE,
        started_at=NOW,
        last_activity=NOW,
        reason="new",
        system=system,
    )


def test_in_a_group_the_question_sent_right_after_a_mention_is_answered_with_it() -> None:
    group = "120363000000000000@g.us"
    config = loaded(monitored_entities=[{"type": "group", "jid": group}])

    def said(n: int, text: str, **kw: Any) -> MessageReceived:
        return MessageReceived(
            chat=group, msg_id=f"M{n}", sender=ALICE, text=text, is_group=True, sent_at=NOW, **kw
        )

    mention = said(1, "@491700000000", mentions=["491700000000@s.whatsapp.net"])
    plan = turn.step(facts(mention, said(2, "weather in Rome tomorrow?"), config=config), group)
    assert not any(isinstance(e, MessageSkipped) for e in plan.events)
    assert isinstance(plan.effect, turn.Ask)
    assert [i.message.msg_id for i in plan.effect.run] == ["M1", "M2"]


def test_a_message_asked_already_counts_as_its_sender_s_trigger() -> None:
    group = "120363000000000000@g.us"
    config = loaded(monitored_entities=[{"type": "group", "jid": group}])
    mention = MessageReceived(
        chat=group, msg_id="M1", sender=ALICE, text="bot, where to eat?", is_group=True, sent_at=NOW
    )
    follow = MessageReceived(
        chat=group, msg_id="M2", sender=ALICE, text="vegetarian", is_group=True, sent_at=NOW
    )
    asked = LlmRequested(
        chat=group,
        call_id="C1",
        session_id="S1",
        trigger_ids=["M1"],
        model="m",
        params={},
        messages=[],
        config_hash="h",
    )
    now = facts(mention, asked, follow, config=config)
    entity = config.config.find_entity(group)
    assert entity is not None
    items = queue.pending(now.view.queue, group)
    assert [i.status for i in items] == ["requested", "pending"]
    assert turn.arrivals(now, entity, group, items) == turn.Plan()  # M2 not skipped


def test_a_member_s_reset_in_a_mention_group_starts_their_new_session() -> None:
    group = "120363000000000000@g.us"
    config = loaded(monitored_entities=[{"type": "group", "jid": group}])
    reset = MessageReceived(
        chat=group,
        msg_id="M1",
        sender=ALICE,
        text="@491700000000 /reset",
        mentions=["491700000000@s.whatsapp.net"],
        is_group=True,
        sent_at=NOW,
    )
    plan = turn.step(facts(reset, config=config), group)
    assert plan.effect is None
    started, reply = plan.events
    assert isinstance(started, SessionStarted)
    assert (started.reason, started.user, started.chat) == ("reset", ALICE, group)
    assert isinstance(reply, ReplyPlanned)
    assert (reply.text, reply.chat, reply.in_reply_to) == (turn.RESET_REPLY, group, "M1")
