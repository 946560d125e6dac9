"""Reminders as pure rules: reading the model's time (DST, bad input), the three
tools on a chat's own reminders, the pending projection, and which reminders the
scheduler fires or records as missed (pipeline/toolbox/_reminders.py, _when.py,
projections/reminders.py, pipeline/daemon/_reminding.py)."""

from __future__ import annotations

import itertools
import json
import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from events.model import (
    AnyEvent,
    Compacted,
    ConfigLoaded,
    Recorded,
    ReminderCancelled,
    ReminderFired,
    ReminderSet,
    ReplyFailed,
    ReplyPlanned,
    ToolCall,
)
from events.units import DAY, MINUTE
from pipeline import toolbox
from pipeline.daemon import _commands as commands
from pipeline.daemon import _reminding as reminding
from pipeline.daemon import _turn as turn
from pipeline.daemon._replies import Ids
from pipeline.toolbox import _when as when
from pipeline.tools.replay import _tools as replay_tools
from projections import calls, outbox, reminders
from projections.fold import States, fold
from tests.test_turn import ALICE, NOW, loaded, received
from tests.test_turn import facts as turn_facts

BERLIN = ZoneInfo("Europe/Berlin")
BOB = "491702222222@s.whatsapp.net"
TOOLS = ("set_reminder", "list_reminders", "cancel_reminder")


def at(text: str) -> float:
    """A wall-clock time in Berlin as unix seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


# -- reading the time -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T09:00:00+01:00", "2026-03-01T09:00:00+01:00"),
        ("2026-03-01T08:00:00Z", "2026-03-01T09:00:00+01:00"),
        ("2026-03-01T09:00:00", "2026-03-01T09:00:00+01:00"),  # naive: vitality.timezone
        ("2026-07-01T09:00", "2026-07-01T09:00:00+02:00"),  # summer time
        ("2026-03-29T02:30:00", "2026-03-29T03:00:00+02:00"),  # does not exist: the jump
        ("2026-10-25T02:30:00", "2026-10-25T02:30:00+02:00"),  # happens twice: the first
        ("2026-10-25T02:30:00+01:00", "2026-10-25T02:30:00+01:00"),  # the second, by offset
        ("2026-05-01", "2026-05-01T00:00:00+02:00"),
    ],
)
def test_a_time_with_an_offset_is_that_instant_a_naive_one_is_local(
    text: str, expected: str
) -> None:
    now = at("2026-01-01T00:00:00")
    found = when.parse(text, BERLIN, now)
    assert isinstance(found, float)
    assert when.iso(found, BERLIN) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("tomorrow at nine", "is not a time"),
        ("", "is not a time"),
        ("2026-13-01T09:00", "is not a time"),
        ("2025-12-31T23:59:59", "is in the past"),
        ("2026-01-01T00:00:00", "is in the past"),  # now is not the future
        ("2027-01-01T00:00:01", "more than a year ahead"),
    ],
)
def test_a_bad_past_or_far_time_is_refused_in_words(text: str, why: str) -> None:
    found = when.parse(text, BERLIN, at("2026-01-01T00:00:00"))
    assert isinstance(found, str)
    assert why in found


@pytest.mark.parametrize(
    ("text", "why"),
    [
        # Years 1 and 9999 leave datetime's range once moved to another offset: still
        # a refusal the model can relay, never an exception.
        ("9999-12-31T23:00:00-05:00", "9999-12-31T23:00:00-05:00 is more than a year ahead"),
        ("9999-12-31T23:59:59", "9999-12-31T23:59:59 is more than a year ahead"),
        ("9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59-23:59 is more than a year ahead"),
        ("0001-01-01T00:00:00", "0001-01-01T00:00:00 is in the past (now it is 2026-01-01T00"),
        ("0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00+14:00 is in the past (now it is"),
        ("0001-01-01", "0001-01-01T00:00:00 is in the past"),
        ("2029-01-01T00:00:00", "2029-01-01T00:00:00 is more than a year ahead"),
    ],
)
def test_a_year_at_the_ends_of_the_calendar_is_refused_as_written(text: str, why: str) -> None:
    found = when.parse(text, BERLIN, at("2026-01-01T00:00:00"))
    assert isinstance(found, str)
    assert found.startswith(why)


def test_a_year_ahead_to_the_second_is_still_accepted() -> None:
    now = at("2026-01-01T00:00:00")
    assert when.parse(when.iso(now + 365 * DAY, BERLIN), BERLIN, now) == now + 365 * DAY


# -- the tools ------------------------------------------------------------------------


def scene(*events: AnyEvent, chat: str = ALICE, tool_call_id: str = "t1") -> toolbox.Scene:
    records = [Recorded(n, NOW - 100 + n, e) for n, e in enumerate(events, 1)]
    return toolbox.Scene(fold(records), chat, NOW, loaded().config, tool_call_id, "call1")


def call(where: toolbox.Scene, name: str, **args: Any) -> toolbox.Result:
    return toolbox.run(
        where, ToolCall(id=where.tool_call_id, name=name, arguments=json.dumps(args)), TOOLS
    )


def reminder(
    rid: str, chat: str = ALICE, due: float = NOW + 3600, text: str = "tea"
) -> ReminderSet:
    return ReminderSet(chat=chat, reminder_id=rid, at=due, text=text)


def test_set_reminder_records_the_reminder_for_this_chat_and_answers_its_id() -> None:
    done = call(scene(), "set_reminder", at="2025-11-26T09:00:00", text=" call mum ")
    (event,) = done.events
    assert isinstance(event, ReminderSet)
    assert (event.chat, event.text, event.at) == (ALICE, "call mum", at("2025-11-26T09:00:00"))
    assert (event.call_id, event.tool_call_id) == ("call1", "t1")
    assert done.output == {"id": event.reminder_id, "at": "2025-11-26T09:00:00+01:00"}
    assert event.reminder_id.startswith("R")
    assert len(event.reminder_id) == 9
    # The same call answered again (a replay, a round asked again) makes the same id.
    assert call(scene(), "set_reminder", at="2025-11-26T09:00:00", text="x").output["id"] == (
        event.reminder_id
    )
    assert (
        call(scene(tool_call_id="t2"), "set_reminder", at="2025-11-26T09:00", text="x").output["id"]
        != event.reminder_id
    )


def test_set_reminder_refuses_a_past_time_and_an_empty_text_as_results() -> None:
    past = call(scene(), "set_reminder", at="2025-11-25T09:00:00", text="late")
    assert (past.error, past.events) == (True, [])
    assert "is in the past" in past.output["error"]
    far = call(scene(), "set_reminder", at="9999-12-31T23:00:00-05:00", text="typo")
    assert far.output == {
        "error": "set_reminder: 9999-12-31T23:00:00-05:00 is more than a year ahead"
    }
    empty = call(scene(), "set_reminder", at="2025-11-26T09:00:00", text="   ")
    assert (empty.error, empty.output) == (True, {"error": "set_reminder: the text is empty"})
    # The chat is never an argument: the schema refuses one.
    other = call(scene(), "set_reminder", at="2025-11-26T09:00:00", text="x", chat=BOB)
    assert other.error
    assert "unknown argument 'chat'" in other.output["error"]


def test_list_and_cancel_see_only_this_chats_reminders() -> None:
    where = scene(reminder("RB", chat=BOB), reminder("RA2", due=NOW + 7200), reminder("RA1"))
    listed = call(where, "list_reminders")
    assert [r["id"] for r in listed.output] == ["RA1", "RA2"]  # earliest first
    assert listed.output[0] == {"id": "RA1", "at": "2025-11-25T13:26:40+01:00", "text": "tea"}
    refused = call(where, "cancel_reminder", id="RB")
    assert refused.error
    assert refused.events == []
    assert "no pending reminder 'RB' in this chat" in refused.output["error"]
    done = call(where, "cancel_reminder", id="RA2")
    assert done.events == [ReminderCancelled(chat=ALICE, reminder_id="RA2", call_id="call1")]


def test_the_tools_are_offered_where_tools_reminders_says() -> None:
    on = toolbox.offered(loaded().config, False)
    off = toolbox.offered(loaded(tools={"reminders": False}).config, False)
    assert set(TOOLS) <= set(on)
    assert not set(TOOLS) & set(off)


# -- the projection -------------------------------------------------------------------


def states(*events: AnyEvent) -> States:
    return fold([Recorded(n, NOW - 100 + n, e) for n, e in enumerate(events, 1)])


def test_a_reminder_is_pending_until_fired_or_cancelled_and_due_in_time_order() -> None:
    view = states(
        reminder("R1", due=NOW + 30),
        reminder("R2", due=NOW + 10),
        reminder("R3", due=NOW + 20),
        reminder("R1", due=NOW + 99),  # a repeat of an id changes nothing
        ReminderCancelled(chat=ALICE, reminder_id="R3"),
        ReminderFired(chat=ALICE, reminder_id="R2", reply_id="x"),
        ReminderCancelled(chat=ALICE, reminder_id="R9"),  # unknown: no-op
    ).reminders
    assert [r.reminder_id for r in reminders.every(view)] == ["R1"]
    assert reminders.next_due(view) == NOW + 30
    assert reminders.due_by(view, NOW + 29) == []
    assert reminders.kept(view) == frozenset({1})


def test_a_compaction_that_removed_a_reminder_drops_it_and_forget_leaves_others() -> None:
    gone = Compacted.of("forget", {"ReminderSet": 1}, 2, chats=[BOB])
    view = states(reminder("RA"), reminder("RB", chat=BOB), gone).reminders
    assert [r.reminder_id for r in reminders.every(view)] == ["RA"]
    rotated = Compacted.of("rotation", {"ReminderSet": 1}, 2, older_than=NOW, keep=[1])
    kept = states(reminder("RA"), reminder("RB", chat=BOB), rotated).reminders
    assert [r.reminder_id for r in reminders.every(kept)] == ["RA"]


# -- firing ---------------------------------------------------------------------------


def ids() -> Ids:
    counter = itertools.count(1)
    return Ids(lambda: f"P{next(counter)}", lambda: "WA")


def test_a_due_reminder_is_planned_to_its_chat_with_its_fired_record() -> None:
    view = states(reminder("R1", due=NOW), reminder("R2", due=NOW + 1, chat=BOB)).reminders
    done = reminding.due(view, loaded().config, NOW + 0.5, ids())
    fired, planned = done.events
    assert fired == ReminderFired(chat=ALICE, reminder_id="R1", reply_id="P1", late=0.5)
    assert isinstance(planned, ReplyPlanned)
    assert (planned.chat, planned.purpose, planned.text, planned.wa_id) == (
        ALICE,
        "reminder",
        "tea",
        "WA",
    )
    assert (done.fired, done.missed, done.more) == (1, 0, False)


def test_one_due_longer_ago_than_catch_up_is_missed_and_says_so_in_one_line() -> None:
    config = loaded(polling={"catch_up_minutes": 10}).config
    view = states(
        reminder("R1", due=NOW - 10 * MINUTE, text="on\ntime"),
        reminder("R2", due=NOW - 10 * MINUTE - 1, text="buy\n milk"),
    ).reminders
    done = reminding.due(view, config, NOW, ids())
    first, second = done.events[1], done.events[3]
    assert isinstance(first, ReplyPlanned)
    assert isinstance(second, ReplyPlanned)
    assert [e.missed for e in done.events if isinstance(e, ReminderFired)] == [True, False]
    assert first.text == (
        "Missed reminder (due 2025-11-25 12:16 CET, while I was offline): buy milk"
    )
    assert second.text == "on\ntime"  # at most catch_up_minutes late: sent as it is
    assert (done.fired, done.missed) == (1, 1)


def test_a_reminder_still_unsent_past_catch_up_after_its_due_time_goes_as_missed() -> None:
    """WhatsApp down (or the account held) after it fired on time: past the same
    lateness a reminder missed while the bot was down has, it says it was missed."""
    config = loaded(polling={"catch_up_minutes": 10}).config
    view = states(reminder("R1", due=NOW - 100, text="take\n the pill"))
    fired = reminding.due(view.reminders, config, NOW - 99, ids()).events  # 1 s late
    [entry] = outbox.unsent(states(*fired).outbox)
    assert entry.due == NOW - 100  # its log time less its lateness
    assert reminding.overdue(entry, config) == NOW - 100 + 10 * MINUTE
    failed, instead = reminding.missed_late(entry, config, ids())
    assert isinstance(failed, ReplyFailed)
    assert (failed.reply_id, failed.final) == (entry.event.reply_id, True)
    assert failed.error.startswith("stale: not sent within polling.catch_up_minutes (10)")
    assert isinstance(instead, ReplyPlanned)
    assert (instead.chat, instead.purpose, instead.text) == (
        ALICE,
        "reminder",
        "Missed reminder (due 2025-11-25 12:25 CET, while I was offline): take the pill",
    )
    # The line in its place, a missed one's and the owner's notices are never too late.
    after = states(*fired, failed, instead)
    [again] = outbox.unsent(after.outbox)
    assert (again.event.reply_id, again.due) == (instead.reply_id, None)
    missed = reminding.due(view.reminders, config, NOW + 11 * MINUTE, ids()).events
    [entry] = outbox.unsent(states(*missed).outbox)
    assert reminding.overdue(entry, config) == math.inf


def test_a_late_reminder_of_a_chat_no_longer_monitored_gets_no_line_in_its_place() -> None:
    """As ``due`` cancels one whose chat left the config: nothing new is written there."""
    config = loaded(polling={"catch_up_minutes": 10}).config
    view = states(reminder("R1", due=NOW - 100))
    fired = reminding.due(view.reminders, config, NOW - 99, ids()).events
    [entry] = outbox.unsent(states(*fired).outbox)
    elsewhere = loaded(
        polling={"catch_up_minutes": 10},
        monitored_entities=[{"type": "user", "phone": "491702222222"}],
    ).config
    [failed] = reminding.missed_late(entry, elsewhere, ids())
    assert isinstance(failed, ReplyFailed)
    assert (failed.reply_id, failed.final) == (entry.event.reply_id, True)


def test_more_due_than_a_batch_are_planned_over_several_passes() -> None:
    many = [reminder(f"R{n}", due=NOW - n) for n in range(reminding.BATCH + 5)]
    done = reminding.due(states(*many).reminders, loaded().config, NOW, ids())
    assert (done.fired, done.more) == (reminding.BATCH, True)


def test_slash_reminders_lists_every_chats_pending_reminders() -> None:
    config = loaded(
        monitored_entities=[
            {"type": "user", "phone": "491701111111", "name": "Alice"},
            {"type": "user", "phone": "491702222222"},
        ]
    ).config
    view = states(reminder("RB", chat=BOB, due=NOW + DAY, text="b\nb"), reminder("RA"))
    # One message a chat, each naming the chat it quotes: forget of one takes only its own.
    assert commands.reminders(view, config, NOW) == [
        ("1 reminder pending for Alice:\nRA 13:26 CET Alice: tea", ALICE),
        (f"1 reminder pending for {BOB}:\nRB 2025-11-26 12:26 CET {BOB}: b b", BOB),
    ]
    assert commands.reminders(States(), config, NOW) == [("No reminders pending.", None)]
    assert commands.reminders(states(reminder("RA")), config, NOW) == [
        ("1 reminder pending:\nRA 13:26 CET Alice: tea", ALICE)
    ]


# -- replay ---------------------------------------------------------------------------


def test_replay_simulates_list_reminders_on_the_chats_reminders_at_the_call() -> None:
    config = loaded()
    stored = ConfigLoaded(hash="h", config=msgspec.to_builtins(config.config), path="app.json")
    before: list[AnyEvent] = [
        stored,
        reminder("RA1", text="tea"),
        reminder("RB", chat=BOB),
        received(1),
    ]
    known = turn_facts(*before, config=config)
    plan = turn.step(known, ALICE)
    records = [
        Recorded(n, NOW - 100 + n, e)
        for n, e in enumerate([*before, *plan.events, reminder("RA2", text="later")], 1)
    ]
    (call,) = calls.calls(records, ALICE)
    listed = ToolCall(id="x", name="list_reminders", arguments="{}")
    done = replay_tools.answer(call, listed, list(TOOLS), config.config, 1)
    assert done.trace.source == "simulated"
    assert [r["id"] for r in json.loads(done.trace.output or "")] == ["RA1"]  # as it was then


def test_a_reminder_longer_than_one_message_is_refused() -> None:
    short = toolbox.Scene(
        States(),
        ALICE,
        NOW,
        loaded(whatsapp={"phone_number": "491700000000", "max_message_chars": 300}).config,
        "t1",
        "call1",
    )
    done = call(short, "set_reminder", at="2025-11-26T09:00:00", text="x" * 201)
    assert done.output == {"error": "set_reminder: the text is longer than 200 characters"}
    assert call(short, "set_reminder", at="2025-11-26T09:00:00", text="x" * 200).events


def test_a_reminder_due_in_a_chat_no_longer_monitored_is_cancelled_not_sent() -> None:
    # Bob's chat was taken out of app.json after his reminder was set.
    view = states(reminder("R1", due=NOW, chat=BOB), reminder("R2", due=NOW)).reminders

    done = reminding.due(view, loaded().config, NOW + 1, ids())

    dropped, fired, planned = done.events
    assert dropped == ReminderCancelled(chat=BOB, reminder_id="R1", reason="not_monitored")
    assert isinstance(fired, ReminderFired)
    assert isinstance(planned, ReplyPlanned)
    assert (planned.chat, planned.text) == (ALICE, "tea")
    assert (done.fired, done.missed, done.dropped) == (1, 0, 1)
    after = states(reminder("R1", due=NOW, chat=BOB), dropped).reminders
    assert reminders.due_by(after, NOW + 1, 10) == []  # not asked again at every pass
