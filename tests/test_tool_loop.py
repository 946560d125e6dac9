"""The tool loop as pure rules: what a round of calls comes to, from the view alone
(pipeline/daemon/_loop.py through _turn.answered), and what the projections make of it."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from events.model import (
    AnyEvent,
    ConfigLoaded,
    FactRemembered,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MessageReceived,
    Recorded,
    ReplyPlanned,
    ReplyWithheld,
    ToolCall,
    ToolCalled,
    ToolFinished,
    Usage,
)
from pipeline.daemon import _loop as loop
from pipeline.daemon import _turn as turn
from pipeline.daemon._replies import Ids
from pipeline.llm import LlmResult, Prompt
from projections import budget, queue, sessions
from projections.fold import fold
from tests.test_turn import ALICE, NOW, facts, loaded

GROUP = "120363000000000000@g.us"
BOB = "491702222222@s.whatsapp.net"


def group_config(**tools: Any) -> Any:
    return loaded(
        monitored_entities=[
            {"type": "user", "phone": "491701111111"},
            {"type": "group", "jid": GROUP, "trigger": {"mode": "always"}},
        ],
        tools={"reminders": False, "memory": False, **tools},
    )


def said(n: int, chat: str = GROUP) -> MessageReceived:
    sender = BOB if chat == GROUP else ALICE
    return MessageReceived(
        chat=chat, msg_id=f"M{n}", sender=sender, text="hi", sent_at=NOW, is_group=chat == GROUP
    )


def calls(*pairs: tuple[str, str], content: str = "") -> LlmResult:
    made = [ToolCall(id=f"t{n}", name=name, arguments=args) for n, (name, args) in enumerate(pairs)]
    return LlmResult(
        content=content,
        citations=[],
        usage=Usage(cost_usd=0.002),
        finish_reason="tool_calls",
        tool_calls=made,
    )


def asked(*events: AnyEvent, chat: str = GROUP, **tools: Any) -> tuple[turn.Facts, turn.Ask]:
    known = facts(*events, config=group_config(**tools))
    plan = turn.step(known, chat)
    assert isinstance(plan.effect, turn.Ask), plan
    return facts(*events, *plan.events, config=group_config(**tools)), plan.effect


def test_a_group_is_offered_stay_silent_a_direct_chat_is_not_by_default() -> None:
    _, in_group = asked(said(1))
    _, direct = asked(said(1, ALICE), chat=ALICE)
    _, never = asked(said(1), silence="never")
    _, always = asked(said(1, ALICE), chat=ALICE, silence="always")
    assert (in_group.prompt.tools, in_group.request.tools) == (["stay_silent"], ["stay_silent"])
    assert (direct.prompt.tools, never.prompt.tools) == ([], [])
    assert always.prompt.tools == ["stay_silent"]


def test_stay_silent_ends_the_turn_with_the_reason_and_no_further_call() -> None:
    known, ask = asked(said(1))
    plan = turn.answered(known, ask, calls(("stay_silent", '{"reason": "  not  for me "}')))
    assert plan.effect is None
    completed, called_, finished, withheld = plan.events
    assert isinstance(completed, LlmCompleted)
    assert [c.name for c in completed.tool_calls] == ["stay_silent"]
    assert isinstance(called_, ToolCalled)
    assert (called_.call_id, called_.tool_call_id, called_.round) == (ask.call_id, "t0", 1)
    assert isinstance(finished, ToolFinished)
    assert (finished.error, json.loads(finished.output)) == (False, {"ok": True, "silent": True})
    assert withheld == ReplyWithheld(
        chat=GROUP, call_id=ask.call_id, reason="not for me", trigger_ids=["M1"]
    )
    assert "not for me" not in repr(plan.lines)  # log lines name the tool, never its words
    after = fold([Recorded(n, NOW + n, e) for n, e in enumerate([said(1), *plan.events], 1)])
    assert queue.pending(after.queue, GROUP) == []  # decided: it left the queue


def test_a_round_of_calls_records_every_result_and_asks_the_next_round() -> None:
    known, ask = asked(said(1))
    plan = turn.answered(
        known, ask, calls(("nope", "{}"), ("stay_silent", "[1]"), content="thinking")
    )
    assert isinstance(plan.effect, turn.Ask)
    *recorded, following = plan.events
    finished = [e for e in recorded if isinstance(e, ToolFinished)]
    assert [(f.error, json.loads(f.output)["error"]) for f in finished] == [
        (True, "unknown tool 'nope' (the tools here: stay_silent)"),
        (True, "stay_silent: the arguments must be a JSON object"),
    ]
    assert isinstance(following, LlmRequested)
    assert following.call_id == plan.effect.call_id != ask.call_id
    assert (following.trigger_ids, following.session_id) == (["M1"], ask.request.session_id)
    (done,) = following.rounds
    assert [c.id for c in done.calls] == ["t0", "t1"]
    assert done.outputs == [f.output for f in finished]
    assert done.content == "thinking"
    assert following.tools == ["stay_silent"]
    assert plan.effect.prompt.rounds == following.rounds


def test_the_round_at_max_rounds_offers_no_tools_and_a_call_past_it_is_not_run() -> None:
    known, ask = asked(said(1), max_rounds=1)
    first = turn.answered(known, ask, calls(("nope", "{}")))
    assert isinstance(first.effect, turn.Ask)
    assert first.effect.prompt.tools == []
    later = facts(said(1), ask.request, *first.events, config=group_config())
    past = turn.answered(later, first.effect, calls(("stay_silent", '{"reason": "x"}')))
    completed, failed = past.events
    assert isinstance(completed, LlmCompleted)
    assert completed.tool_calls == []  # not a round: its calls never ran
    assert isinstance(failed, LlmFailed)
    assert (failed.final, failed.error) == (True, loop.PAST_THE_BOUND)
    answer = calls(("nope", "{}"), content="Here you are.")
    worded = turn.answered(later, first.effect, answer)
    assert [type(e) for e in worded.events] == [LlmCompleted, ReplyPlanned]


def test_a_model_offered_no_tools_that_calls_some_is_answered_by_its_text() -> None:
    known, ask = asked(said(1, ALICE), chat=ALICE)
    plan = turn.answered(known, ask, calls(("stay_silent", "{}"), content="Hi!"))
    assert [type(e) for e in plan.events] == [LlmCompleted, ReplyPlanned]
    bare = turn.answered(known, ask, calls(("stay_silent", "{}")))
    assert bare.events[-1] == LlmFailed(
        chat=ALICE, call_id=ask.call_id, error=loop.UNOFFERED, final=True
    )


def test_a_restart_between_rounds_asks_the_recorded_round_again() -> None:
    known, ask = asked(said(1))
    plan = turn.answered(known, ask, calls(("nope", "{}")))
    assert isinstance(plan.effect, turn.Ask)
    log = [said(1), ask.request, *plan.events]  # the daemon dies here
    restarted = facts(*log, config=group_config())
    again = turn.step(restarted, GROUP)
    (requested,) = again.events
    assert isinstance(requested, LlmRequested)
    assert requested.rounds == plan.effect.request.rounds  # as recorded, not composed anew
    assert requested.session_id == ask.request.session_id
    assert isinstance(again.effect, turn.Ask)
    assert again.effect.prompt.rounds == requested.rounds
    # Its answer ends the loop: nothing is left to resume.
    after = fold(
        [Recorded(n, NOW + n, e) for n, e in enumerate([*log, requested], 1)]
        + [
            Recorded(
                99, NOW + 99, LlmCompleted(chat=GROUP, call_id=requested.call_id, content="ok")
            )
        ]
    )
    assert after.loops.chats == {}


def test_every_round_costs_against_the_budget() -> None:
    known, ask = asked(said(1))
    plan = turn.answered(known, ask, calls(("nope", "{}")))
    assert isinstance(plan.effect, turn.Ask)
    last = LlmCompleted(
        chat=GROUP, call_id=plan.effect.call_id, content="ok", usage=Usage(cost_usd=0.003)
    )
    log = [said(1), ask.request, *plan.events, last]
    view = fold([Recorded(n, NOW + n, e) for n, e in enumerate(log, 1)])
    assert round(budget.spent_since(view.budget, NOW), 6) == 0.005
    assert view.budget.in_flight == {}  # the loop's last round landed


def test_an_expired_sessions_texts_take_its_tool_calls_and_silence_along() -> None:
    tracking = ConfigLoaded(
        hash="h", config={"rotation": {"drop_expired_sessions": True}}, path="app.json"
    )
    known, ask = asked(said(1))
    looped = turn.answered(known, ask, calls(("nope", '{"a": "words"}')))
    assert isinstance(looped.effect, turn.Ask)
    silent = turn.answered(known, looped.effect, calls(("stay_silent", '{"reason": "banter"}')))
    log = [tracking, said(1), *known_starts(known, ask), *looped.events, *silent.events]
    records = [Recorded(n, NOW + n, e) for n, e in enumerate(log, 1)]
    view = fold(records)
    later = NOW + 10 * 3600  # the idle session has expired
    gone = sessions.expired_texts(view.sessions, later, "idle", 60, "UTC", later)
    worded = (ToolCalled, ToolFinished, ReplyWithheld, LlmRequested, MessageReceived)
    assert {r.seq for r in records if isinstance(r.event, worded)} <= gone
    assert view.sessions.looping == {}


def known_starts(known: turn.Facts, ask: turn.Ask) -> list[AnyEvent]:
    """The session start and first request the turn recorded (``asked`` folded them)."""
    plan = turn.step(facts(said(1), config=group_config()), GROUP)
    return list(plan.events)


def test_a_model_that_refused_function_calling_is_offered_no_tools() -> None:
    known = facts(said(1), config=group_config())
    refusing = turn.Facts(
        known.view,
        known.loaded,
        known.now,
        known.ids,
        learned=lambda m, p: {**p, "refused": ["tools"]},
    )
    plan = turn.step(refusing, GROUP)
    assert isinstance(plan.effect, turn.Ask)
    assert (plan.effect.request.tools, plan.effect.prompt.tools) == ([], [])


def _model(prompt: Prompt) -> LlmResult:
    """A model that calls a tool in its first two rounds, then answers: the same
    request gets the same answer (the same call ids), as a replayed round would."""
    done = len(prompt.rounds)
    if prompt.tools and done < 2:
        made = [ToolCall(id=f"t{done}", name="nope", arguments=json.dumps({"n": done}))]
        return LlmResult(content="", citations=[], usage=Usage(), tool_calls=made, finish_reason="")
    return LlmResult(content="done", citations=[], usage=Usage(), finish_reason="stop")


def _drive(log: list[AnyEvent], ids: Ids, crash_after: int | None) -> bool:
    """Run the chat's turn as the agent does, commit by commit; False: it crashed."""
    config, commits = group_config(max_rounds=3), 0

    def known() -> turn.Facts:
        records = [Recorded(n, NOW - 100 + n, e) for n, e in enumerate([said(1), *log], 1)]
        return turn.Facts(fold(records), config, NOW, ids)

    while True:
        plan = turn.step(known(), GROUP)
        if not plan.events:
            return True
        while True:
            log.extend(plan.events)
            commits += 1
            if commits == crash_after:
                return False
            if not isinstance(plan.effect, turn.Ask):
                break
            plan = turn.answered(known(), plan.effect, _model(plan.effect.prompt))


@pytest.mark.parametrize("crash_after", [1, 2, 3, 4])
def test_a_crash_at_any_commit_of_the_loop_runs_no_tool_twice_and_answers_once(
    crash_after: int,
) -> None:
    counter = itertools.count(1)
    ids = Ids(lambda: f"id{next(counter)}", lambda: "WA")
    log: list[AnyEvent] = []
    assert not _drive(log, ids, crash_after)  # killed after that commit
    assert _drive(log, ids, None)  # the next start finishes the turn
    called = [e.tool_call_id for e in log if isinstance(e, ToolCalled)]
    finished = [e.tool_call_id for e in log if isinstance(e, ToolFinished)]
    assert called == finished == ["t0", "t1"]
    replies = [e for e in log if isinstance(e, ReplyPlanned) and e.purpose == "reply"]
    assert [(r.text, r.trigger_ids) for r in replies] == [("done", ["M1"])]
    # The round cut by the crash is asked again as recorded; no other is asked twice.
    again = [crash_after - 1] if crash_after < 4 else []
    requests = [len(e.rounds) for e in log if isinstance(e, LlmRequested)]
    assert requests == sorted([0, 1, 2, *again])


def _unnamed(*pairs: tuple[str, dict[str, Any]]) -> LlmResult:
    """Calls with no id, as servers that leave ``call_id`` out (or send "") make them."""
    made = [ToolCall(id="", name=name, arguments=json.dumps(args)) for name, args in pairs]
    return LlmResult(
        content="", citations=[], usage=Usage(), finish_reason="tool_calls", tool_calls=made
    )


def _folded_after(known: turn.Facts, ask: turn.Ask, plan: turn.Plan) -> Any:
    log = [said(1, ALICE), ask.request, *plan.events]
    return fold([Recorded(n, NOW + n, e) for n, e in enumerate(log, 1)])


def test_calls_of_one_answer_each_see_what_the_earlier_ones_did() -> None:
    known, ask = asked(said(1, ALICE), chat=ALICE, reminders=True, memory=True)
    soon, later = "2025-11-26T09:00:00+00:00", "2025-11-26T10:00:00+00:00"
    plan = turn.answered(
        known,
        ask,
        _unnamed(
            ("set_reminder", {"at": soon, "text": "call the dentist"}),
            ("set_reminder", {"at": later, "text": "buy milk"}),
            ("remember", {"fact": "Alice is vegetarian"}),
            ("remember", {"fact": "alice  is Vegetarian"}),
        ),
    )
    outputs = [json.loads(e.output) for e in plan.events if isinstance(e, ToolFinished)]
    first, second = outputs[0]["id"], outputs[1]["id"]
    assert first != second  # the second call saw the first reminder's id taken
    assert outputs[3] == {"ok": True, "already_known": True}
    view = _folded_after(known, ask, plan)
    assert sorted(r.text for r in view.reminders.pending.values()) == [
        "buy milk",
        "call the dentist",
    ]
    assert [f.text for f in view.facts.chats[ALICE]] == ["Alice is vegetarian"]
    assert known.view.reminders.pending == {}  # the daemon's own view is not touched


def test_two_new_facts_in_one_answer_keep_the_bound() -> None:
    earlier = [FactRemembered(chat=ALICE, fact=f"fact {n}", call_id="old") for n in range(50)]
    known, ask = asked(*earlier, said(1, ALICE), chat=ALICE, memory=True)
    plan = turn.answered(
        known, ask, _unnamed(("remember", {"fact": "new one"}), ("remember", {"fact": "new two"}))
    )
    view = fold(
        [
            Recorded(n, NOW + n, e)
            for n, e in enumerate([*earlier, said(1, ALICE), ask.request, *plan.events], 1)
        ]
    )
    texts = [f.text for f in view.facts.chats[ALICE]]
    assert texts == [f"fact {n}" for n in range(2, 50)] + ["new one", "new two"]
