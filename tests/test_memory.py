"""Memory as pure rules: the facts the model keeps per person (tools ``remember``,
``forget_fact``), their bounds, the projection across a person's PN and LID, and the
system prompt that carries them (pipeline/toolbox/_memory.py, projections/facts.py)."""

from __future__ import annotations

import json
from typing import Any

from events.model import (
    AnyEvent,
    Compacted,
    FactForgotten,
    FactRemembered,
    MessageReceived,
    Recorded,
    ToolCall,
)
from pipeline import toolbox
from pipeline.daemon import _decide as decide
from pipeline.daemon import _turn as turn
from pipeline.llm import composed_at, same_system, system_text
from pipeline.toolbox import _memory as memory
from projections import facts
from projections.fold import States, fold
from tests.llm_server import untimed
from tests.test_turn import ALICE, NOW, loaded, received, session
from tests.test_turn import facts as turn_facts

LID = "123456789012345@lid"
TOOLS = ("remember", "forget_fact")


def states(*events: AnyEvent) -> States:
    return fold([Recorded(n, NOW - 100 + n, e) for n, e in enumerate(events, 1)])


def call(view: States, name: str, chat: str = ALICE, **args: Any) -> toolbox.Result:
    where = toolbox.Scene(view, chat, NOW, loaded().config, "t1", "call1")
    return toolbox.run(where, ToolCall(id="t1", name=name, arguments=json.dumps(args)), TOOLS)


def kept(text: str, chat: str = ALICE) -> FactRemembered:
    return FactRemembered(chat=chat, fact=text)


def test_remember_keeps_a_fact_once_whitespace_collapsed() -> None:
    done = call(States(), "remember", fact="  likes   green tea ")
    assert done.events == [FactRemembered(chat=ALICE, fact="likes green tea", call_id="call1")]
    assert done.output == {"ok": True}
    again = call(states(*done.events), "remember", fact="Likes green TEA")
    assert (again.events, again.output) == ([], {"ok": True, "already_known": True})
    empty = call(States(), "remember", fact="  ")
    assert empty.error


def test_a_new_fact_past_fifty_drops_the_oldest_with_a_record() -> None:
    view = states(*(kept(f"fact {n}") for n in range(memory.MAX_FACTS)))
    done = call(view, "remember", fact="the newest")
    assert done.events[1:] == [
        FactForgotten(chat=ALICE, facts=["fact 0"], reason="bound", call_id="call1")
    ]
    after = states(*(kept(f"fact {n}") for n in range(memory.MAX_FACTS)), *done.events)
    texts = facts.of_chat(after.facts, after.aliases, ALICE)
    assert (len(texts), texts[0], texts[-1]) == (memory.MAX_FACTS, "fact 1", "the newest")


def test_a_new_fact_past_four_thousand_characters_drops_as_many_oldest_as_it_takes() -> None:
    long = [kept(f"{n}" + "x" * 999) for n in range(4)]  # 4,000 characters
    done = call(states(*long), "remember", fact="y" * 500)
    (forgotten,) = [e for e in done.events if isinstance(e, FactForgotten)]
    assert [f[0] for f in forgotten.facts] == ["0"]
    assert done.output["dropped_oldest"] == forgotten.facts


def test_forget_fact_drops_the_facts_containing_the_text_ignoring_case() -> None:
    view = states(kept("lives in Porto"), kept("daughter Mia"), kept("moved from porto in 2020"))
    done = call(view, "forget_fact", fact="PORTO")
    assert done.events == [
        FactForgotten(
            chat=ALICE,
            text="PORTO",
            facts=["lives in Porto", "moved from porto in 2020"],
            call_id="call1",
        )
    ]
    after = states(
        kept("lives in Porto"), kept("daughter Mia"), kept("moved from porto in 2020"), *done.events
    )
    assert facts.of_chat(after.facts, after.aliases, ALICE) == ["daughter Mia"]
    none = call(view, "forget_fact", fact="Lisbon")
    assert none.error
    assert none.output == {"error": "forget_fact: no fact contains 'Lisbon'"}


def test_a_persons_facts_are_one_list_across_their_phone_jid_and_lid() -> None:
    tie = MessageReceived(chat=ALICE, msg_id="m", sender=ALICE, sender_alt=LID, text="hi")
    view = states(tie, kept("from the LID chat", chat=LID), kept("from the phone chat"))
    assert facts.of_chat(view.facts, view.aliases, ALICE) == [
        "from the LID chat",
        "from the phone chat",
    ]
    # Forgetting reaches the fact where it is filed.
    done = call(view, "forget_fact", fact="LID chat")
    assert [(e.chat, e.facts) for e in done.events if isinstance(e, FactForgotten)] == [
        (LID, ["from the LID chat"])
    ]


def test_forget_chat_removes_its_facts_and_rotation_keeps_live_ones() -> None:
    bob = "491702222222@s.whatsapp.net"
    forgot = Compacted.of("forget", {"FactRemembered": 1}, 2, chats=[ALICE])
    view = states(kept("alice's"), kept("bob's", chat=bob), forgot)
    assert (facts.of_chat(view.facts, view.aliases, ALICE), view.facts.chats[bob][0].text) == (
        [],
        "bob's",
    )
    assert facts.kept(states(kept("a"), kept("b")).facts) == frozenset({1, 2})


def test_the_facts_go_last_in_the_system_prompt_and_do_not_end_the_session() -> None:
    config = loaded().config
    (entity,) = config.monitored_entities
    plain = system_text(config, entity)
    with_facts = system_text(config, entity, ["likes tea", "daughter Mia"])
    assert with_facts == f"{plain}\n\nFacts:\n- likes tea\n- daughter Mia"
    assert same_system(with_facts, plain)
    assert not same_system(with_facts, "another persona")
    assert decide.session_start(session("S", system=with_facts), None, plain) is None


def test_a_turn_asks_with_the_chats_facts_and_without_when_memory_is_off() -> None:
    known = turn_facts(kept("likes tea"), received(1))
    plan = turn.step(known, ALICE)
    assert isinstance(plan.effect, turn.Ask)
    assert untimed(plan.effect.request.messages[0].content).endswith("\n\nFacts:\n- likes tea")
    assert {"remember", "forget_fact"} <= set(plan.effect.request.tools)
    off = turn_facts(kept("likes tea"), received(1), config=loaded(tools={"memory": False}))
    plan = turn.step(off, ALICE)
    assert isinstance(plan.effect, turn.Ask)
    assert "Facts:" not in plan.effect.request.messages[0].content
    assert "remember" not in plan.effect.request.tools


def test_the_time_goes_last_in_the_owners_zone_and_does_not_end_the_session() -> None:
    config = loaded(vitality={"timezone": "America/New_York"}).config
    (entity,) = config.monitored_entities
    plain = system_text(config, entity)
    # 2026-03-08 07:30 UTC: 03:30 in New York, an hour after its clocks went forward.
    at = 1_772_955_000.0
    timed = system_text(config, entity, ["likes tea"], now=at)
    assert timed == (
        f"{plain}\n\nFacts:\n- likes tea\n\nNow: 2026-03-08T03:30-04:00 (Sunday, America/New_York)"
    )
    assert composed_at(timed) == at - at % 60  # to the minute, back from the text alone
    assert same_system(timed, plain)
    later = system_text(config, entity, now=at + 3600)
    assert decide.session_start(session("S", system=timed), None, plain) is None
    assert same_system(later, plain)
    assert not same_system(timed, "another persona")


def test_a_prompt_that_ends_like_a_time_line_is_still_compared_whole() -> None:
    config = loaded().config
    (entity,) = config.monitored_entities
    plain = system_text(config, entity)
    recorded_before = f"{plain}\n\nNow: whenever you like"  # a persona's own words
    assert composed_at(recorded_before) is None
    assert not same_system(recorded_before, plain)
