"""Owner commands as pure functions: parsing, the rules, and a paused chat's turn."""

from __future__ import annotations

import itertools
import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from events.compaction import removed
from events.model import (
    AnyEvent,
    ChatPaused,
    ChatResumed,
    LlmFailed,
    LlmRequested,
    MessageReceived,
    MessageSkipped,
    Recorded,
    ReminderSet,
    ReplyPlanned,
    TransportStatus,
)
from events.protocol import Selection
from pipeline.config import LoadedConfig, Secrets, clock, config_from_dict
from pipeline.daemon import _commands as commands
from pipeline.daemon import _status as status
from pipeline.daemon import _turn as turn
from pipeline.daemon._replies import Ids
from projections import pauses, queue, takeover
from projections.fold import fold

NOW = 1_764_070_000.0
OWNER = "491700000000@s.whatsapp.net"
OWNER_LID = "99999999999@lid"
ALICE = "491701111111@s.whatsapp.net"
BOB = "491702222222@s.whatsapp.net"


def loaded(**overrides: Any) -> LoadedConfig:
    data: dict[str, Any] = {
        "whatsapp": {"phone_number": "491700000000"},
        "monitored_entities": [
            {"type": "self", "name": "Me"},
            {"type": "user", "phone": "491701111111", "name": "Alice"},
            {"type": "user", "phone": "491702222222", "name": "Bob Smith"},
        ],
        "polling": {"debounce_seconds": 2, "catch_up_minutes": 10},
    }
    data.update(overrides)
    return LoadedConfig(
        config=config_from_dict(data), hash="h", path="app.json", secrets=Secrets(api_key=None)
    )


def records(*events: AnyEvent, at: float = NOW - 100) -> list[Recorded]:
    """Events recorded a second apart from ``at`` on."""
    return [Recorded(n, at + n, e) for n, e in enumerate(events, 1)]


def facts(*recs: Recorded, now: float = NOW) -> turn.Facts:
    counter = itertools.count(1)
    ids = Ids(lambda: f"id{next(counter)}", lambda: "WA")
    return turn.Facts(fold(recs), loaded(), now, ids)


def own(text: str, msg_id: str = "C1", chat: str = OWNER) -> MessageReceived:
    return MessageReceived(
        chat=chat, msg_id=msg_id, sender=OWNER, text=text, from_me=True, sent_at=NOW
    )


def said(plan: turn.Plan) -> ReplyPlanned:
    reply = plan.events[-1]
    assert isinstance(reply, ReplyPlanned)
    return reply


# -- parsing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/status", commands.Command("status", "")),
        ("  /STATUS  ", commands.Command("status", "")),
        ("/pause Bob Smith 2h", commands.Command("pause", "Bob Smith 2h")),
        ("/resume\nall", commands.Command("resume", "all")),
        ("/frobnicate now", commands.Command("frobnicate", "now")),
        ("/reset", None),  # every chat's, handled apart
        ("/etc/hosts is a file", None),
        ("/", None),
        ("status", None),
        ("what does /status say?", None),
    ],
)
def test_parse(text: str, expected: commands.Command | None) -> None:
    assert commands.parse(text) == expected


@pytest.mark.parametrize(
    ("word", "seconds"),
    [("30m", 1800), ("2h", 7200), ("1d", 86400), ("90min", 5400), ("2H", 7200), ("2x", None)],
)
def test_duration(word: str, seconds: float | None) -> None:
    assert commands.duration(word) == seconds


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("Alice 30m", ("Alice", "30m")),
        ("Alice 30 min", ("Alice", "30 min")),  # a space before the unit, as people type
        ("Alice 2 h", ("Alice", "2 h")),
        ("Bob Smith 2h", ("Bob Smith", "2h")),
        ("Bob Smith", ("Bob Smith", None)),
        ("Bob \n Smith  2h", ("Bob Smith", "2h")),
        ("Room 5 30 min", ("Room 5", "30 min")),
        ("Alice 5y", ("Alice", "5y")),  # not a duration: said so
        ("Alice 2 hours", ("Alice", "2 hours")),
        ("2 h", ("2 h", None)),  # no name: "Which chat?"
        ("491709999999", ("491709999999", None)),
        ("", ("", None)),
    ],
)
def test_split_duration(args: str, expected: tuple[str, str | None]) -> None:
    assert commands.split_duration(args) == expected


def test_the_log_line_names_a_known_command_never_what_was_typed() -> None:
    assert commands.logged("/pause Alice 2h") == "pause"
    assert commands.logged("/secretword") == "unknown"


# -- the rules --------------------------------------------------------------------


def test_status_is_answered_in_the_owners_chat_without_a_call() -> None:
    status = TransportStatus(state="connected")
    plan = turn.step(facts(*records(status, own("/status"))), OWNER)
    assert plan.effect is None
    reply = said(plan)
    assert (reply.chat, reply.purpose, reply.in_reply_to) == (OWNER, "command", "C1")
    assert reply.trigger_ids == ["C1"]
    text = reply.text
    assert "Connection: connected since" in text
    assert "Restriction: none" in text
    assert "Queue: 0 messages to decide in 0 chats, 0 to send" in text
    assert "Today: 0 replies, $0.0000 spent of $" in text
    assert "Last error: none" in text
    assert not [e for e in plan.events if isinstance(e, LlmRequested)]


def test_status_counts_an_answer_split_into_parts_once() -> None:
    parts = [
        ReplyPlanned(chat=ALICE, reply_id=f"P{n}", purpose="reply", text="x", part=n, parts=4)
        for n in range(1, 5)
    ]
    reply = said(turn.step(facts(*records(*parts, own("/status"))), OWNER))
    assert "Today: 1 reply, $0.0000 spent of $" in reply.text


def test_status_counts_the_whole_local_day_when_clocks_go_back() -> None:
    """2026-10-25 is 25 hours long in Berlin: at 23:50 its first reply, at 00:10, is
    more than 24 h old and still today's."""
    berlin = ZoneInfo("Europe/Berlin")

    def at(when: str) -> float:
        return datetime.fromisoformat(when).replace(tzinfo=berlin).timestamp()

    answers = [
        Recorded(n, at(when), ReplyPlanned(chat=ALICE, reply_id=f"R{n}", purpose="reply", text="a"))
        for n, when in enumerate(["2026-10-25 00:10", "2026-10-25 23:40"], 1)
    ]
    now = at("2026-10-25 23:50")
    assert now - answers[0].ts > 24 * 3600
    line = status.today_line(fold(answers), loaded().config, now)
    assert line.startswith("Today: 2 replies"), line


def test_status_names_the_last_error_and_its_chat_goes_with_the_answer() -> None:
    failed = LlmFailed(chat=ALICE, call_id="X", status=500, error="upstream down", final=True)
    reply = said(turn.step(facts(*records(failed, own("/status"))), OWNER))
    assert "LLM in Alice: HTTP 500: upstream down" in reply.text
    assert reply.quotes_chat == ALICE  # forget --chat Alice takes the answer too


def test_pause_with_a_duration_records_until_and_says_so() -> None:
    plan = turn.step(facts(*records(own("/pause alice 30m"))), OWNER)
    paused, _ = plan.events
    assert paused == ChatPaused(chat=ALICE, until=NOW + 1800, msg_id="C1")
    assert said(plan).text.startswith("Paused Alice until ")


@pytest.mark.parametrize(
    ("text", "chat", "seconds"),
    [
        ("/pause Alice 30 min", ALICE, 1800),
        ("/pause Alice 2 h", ALICE, 7200),
        ("/pause Bob Smith 1 d", BOB, 86400),
    ],
)
def test_a_duration_with_a_space_before_its_unit_is_read(
    text: str, chat: str, seconds: float
) -> None:
    plan = turn.step(facts(*records(own(text))), OWNER)
    assert plan.events[0] == ChatPaused(chat=chat, until=NOW + seconds, msg_id="C1")


def test_a_name_with_spaces_and_no_duration_pauses_until_resume() -> None:
    plan = turn.step(facts(*records(own("/pause Bob Smith"))), OWNER)
    assert plan.events[0] == ChatPaused(chat=BOB, until=None, msg_id="C1")
    assert "until /resume" in said(plan).text


def test_pause_all_pauses_every_chat_but_the_owners() -> None:
    plan = turn.step(facts(*records(own("/pause all 1d"))), OWNER)
    paused = [e for e in plan.events if isinstance(e, ChatPaused)]
    assert {p.chat for p in paused} == {ALICE, BOB}
    assert {p.until for p in paused} == {NOW + 86400}


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("/pause Carol", "No chat named 'Carol' (the names are Me, Alice, Bob Smith)."),
        ("/pause", "Which chat? /pause NAME|all [30m|2h|1d]"),
        ("/pause 2h", "Which chat? /pause NAME|all [30m|2h|1d]"),
        ("/pause 2 h", "Which chat? /pause NAME|all [30m|2h|1d]"),
        ("/pause Alice 2 hours", "'2 hours' is not a duration: say 30m, 2h or 1d."),
        ("/pause Alice 5y", "'5y' is not a duration: say 30m, 2h or 1d."),
        ("/pause Alice 0m", "A pause lasts from 1 minute to 365 days"),
        ("/pause 491709999999", "'491709999999' is not a monitored chat."),
        ("/resume Alice", "Alice is not paused."),
        ("/resume all", "No chat is paused."),
        ("/resume", "Which chat? /resume NAME|all"),
    ],
)
def test_what_cannot_be_done_is_answered_clearly_and_records_nothing(
    text: str, answer: str
) -> None:
    plan = turn.step(facts(*records(own(text))), OWNER)
    [reply] = plan.events
    assert isinstance(reply, ReplyPlanned)
    assert reply.text.startswith(answer)


def test_an_unknown_command_gets_the_help_text() -> None:
    reply = said(turn.step(facts(*records(own("/frobnicate"))), OWNER))
    assert reply.text.startswith("Unknown command /frobnicate.")
    assert commands.HELP in reply.text
    assert said(turn.step(facts(*records(own("/help"))), OWNER)).text == commands.HELP


def test_reminders_says_none_are_pending() -> None:
    reply = said(turn.step(facts(*records(own("/reminders"))), OWNER))
    assert reply.text == "No reminders pending."


def test_a_long_reminders_answer_goes_in_numbered_parts_within_the_limit() -> None:
    # 30 reminders near the longest a reminder may be: one message would be over
    # 100,000 characters, more than WhatsApp takes; split as a reply is, nothing lost.
    long = "x" * 3800
    set_ = [
        ReminderSet(chat=ALICE, reminder_id=f"RA{n:03d}", at=NOW + 3600 + n, text=f"{n} {long}")
        for n in range(commands.REMINDERS_SHOWN - 1)
    ]
    bob = ReminderSet(chat=BOB, reminder_id="RB", at=NOW + 60, text="tea")
    plan = turn.step(facts(*records(*set_, bob, own("/reminders"))), OWNER)
    sent = [e for e in plan.events if isinstance(e, ReplyPlanned)]
    limit = loaded().config.whatsapp.max_message_chars
    assert all(len(m.text) <= limit for m in sent)
    alice = [m for m in sent if m.quotes_chat == ALICE]
    assert len(alice) > 1
    numbers = [(m.part, m.parts) for m in alice]
    assert numbers == [(n, len(alice)) for n in range(1, len(alice) + 1)]
    assert alice[0].text.startswith(f"(1/{len(alice)}) 29 reminders pending for Alice:")
    words = " ".join(m.text for m in alice).split()
    assert all(f"RA{n:03d}" in words for n in range(len(set_)))
    assert sum(w.count("x") for w in words) == len(set_) * len(long)
    [for_bob] = [m for m in sent if m.quotes_chat == BOB]  # Bob's own message, whole
    assert (for_bob.part, for_bob.parts) == (None, None)
    assert {(m.chat, m.purpose, m.in_reply_to) for m in sent} == {(OWNER, "command", "C1")}


def test_a_command_by_the_owners_lid_is_one_too() -> None:
    status = TransportStatus(state="connected", me_lid=OWNER_LID)
    by_lid = MessageReceived(
        chat=OWNER, msg_id="C1", sender=OWNER_LID, text="/help", from_me=True, sent_at=NOW
    )
    assert said(turn.step(facts(*records(status, by_lid)), OWNER)).purpose == "command"


def test_the_same_text_from_anyone_else_is_an_ordinary_message() -> None:
    alice = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="/status", sent_at=NOW)
    plan = turn.step(facts(*records(alice)), ALICE)
    assert isinstance(plan.effect, turn.Ask)  # an LLM turn


def test_the_owners_message_in_another_chat_is_no_command() -> None:
    plan = turn.step(facts(*records(own("/pause all", chat=ALICE))), ALICE)
    assert plan.events == [MessageSkipped(chat=ALICE, msg_id="C1", reason="takeover")]


def test_the_answer_drains_the_command_from_the_queue() -> None:
    recs = records(own("/status"))
    plan = turn.step(facts(*recs), OWNER)
    after = [*recs, *(Recorded(10 + n, NOW, e) for n, e in enumerate(plan.events))]
    assert queue.pending(fold(after).queue, OWNER) == []


# -- a paused chat ------------------------------------------------------------------


def alice(n: int, at_offset: float = 0.0) -> MessageReceived:
    return MessageReceived(
        chat=ALICE, msg_id=f"M{n}", sender=ALICE, text="hi", sent_at=NOW + at_offset
    )


def test_a_paused_chats_messages_wait_until_the_pause_ends() -> None:
    recs = records(ChatPaused(chat=ALICE, until=NOW + 1800), alice(1))
    plan = turn.step(facts(*recs), ALICE)
    # Looked at again when the pause ends, or when M1 is no longer recent (10 min).
    assert plan == turn.Plan(effect=turn.AwaitResume(NOW + 600))  # sent at NOW
    short = records(ChatPaused(chat=ALICE, until=NOW + 300), alice(1))
    assert turn.step(facts(*short), ALICE) == turn.Plan(effect=turn.AwaitResume(NOW + 300))
    # After the pause, a message still recent is answered.
    later = turn.step(facts(*short, now=NOW + 300), ALICE)
    assert isinstance(later.effect, turn.Ask)


def test_a_message_too_old_by_the_pauses_end_is_skipped_as_paused() -> None:
    old = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="hi", sent_at=NOW - 99)
    recs = records(ChatPaused(chat=ALICE), old)
    assert turn.step(facts(*recs, now=NOW + 601), ALICE).events == [
        MessageSkipped(chat=ALICE, msg_id="M1", reason="paused")
    ]
    resumed = Recorded(3, NOW + 700, ChatResumed(chat=ALICE))
    plan = turn.step(facts(*recs, resumed, now=NOW + 701), ALICE)
    assert plan.events == [MessageSkipped(chat=ALICE, msg_id="M1", reason="paused")]
    [(_, line)] = plan.lines
    assert "you paused this chat (/pause)" in line["why"]


def test_an_unpaused_old_message_is_still_stale() -> None:
    old = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="hi", sent_at=NOW - 99)
    assert turn.step(facts(*records(old), now=NOW + 601), ALICE).events == [
        MessageSkipped(chat=ALICE, msg_id="M1", reason="stale")
    ]


def test_resume_records_and_counts_what_will_be_answered() -> None:
    recs = records(ChatPaused(chat=ALICE), alice(1), own("/resume ALICE"))
    plan = turn.step(facts(*recs), OWNER)
    resumed, _ = plan.events
    assert resumed == ChatResumed(chat=ALICE, msg_id="C1")
    assert said(plan).text == "Resumed Alice. 1 message that waited will be answered now."
    after = fold([*recs, Recorded(9, NOW, resumed)])
    assert pauses.until(after.pauses, ALICE, NOW) is None
    assert isinstance(
        turn.step(turn.Facts(after, loaded(), NOW, facts().ids), ALICE).effect, turn.Ask
    )


def test_a_pause_ends_by_itself_at_its_until() -> None:
    state = fold(records(ChatPaused(chat=ALICE, until=NOW + 60))).pauses
    assert pauses.until(state, ALICE, NOW) == NOW + 60
    assert pauses.until(state, ALICE, NOW + 60) is None
    assert pauses.paused_chats(fold(records(ChatPaused(chat=BOB))).pauses, NOW) == {BOB: math.inf}


def test_a_pause_in_force_is_kept_by_rotation_and_one_removed_is_gone() -> None:
    recs = records(ChatPaused(chat=ALICE), ChatPaused(chat=BOB, until=NOW - 10))
    state = fold(recs).pauses
    assert pauses.kept(state, NOW) == frozenset({1})  # Bob's ended
    forgot = removed(Selection(chats=frozenset({ALICE})), "forget", [(1, "ChatPaused", ALICE)])
    assert forgot is not None
    after = fold([*recs, Recorded(3, NOW, forgot)]).pauses
    assert pauses.until(after, ALICE, NOW) is None


def test_a_pause_whose_first_extensions_went_dates_from_the_oldest_left() -> None:
    # Paused three times in a row (each /pause extends the one in force), then the oldest
    # two ChatPaused went: the pause began when the oldest left began it, as a refold says.
    recs = [Recorded(n, NOW + 10 * n, ChatPaused(chat=ALICE)) for n in (1, 2, 3)]
    gone = removed(Selection(seqs=frozenset({1})), "expiry", [(1, "ChatPaused", ALICE)])
    assert gone is not None

    after = fold([*recs, Recorded(4, NOW + 40, gone)]).pauses
    refold = fold([*recs[1:], Recorded(4, NOW + 40, gone)]).pauses

    assert after.chats[ALICE].since == NOW + 20 == refold.chats[ALICE].since
    assert pauses.covered(after, ALICE, NOW + 25)
    assert not pauses.covered(after, ALICE, NOW + 15)


def test_the_queue_line_counts_in_words() -> None:
    alice = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="hi", sent_at=NOW)
    one = status.queue_line(fold(records(alice)))
    assert one.startswith("Queue: 1 message to decide in 1 chat, ")


# -- takeovers: the owner wrote in the chat --------------------------------------


def test_status_lists_a_takeover_and_resume_ends_it_early() -> None:
    took = MessageSkipped(chat=ALICE, msg_id="O1", reason="takeover")
    recs = records(took, own("/status"))  # the takeover recorded at NOW - 99
    text = said(turn.step(facts(*recs), OWNER)).text
    until = clock(NOW - 99 + 30 * 60, NOW, loaded().config)
    assert f"Paused: Alice until {until} (you wrote there)" in text

    recs = records(took, own("/resume Alice"))
    plan = turn.step(facts(*recs), OWNER)
    resumed, _ = plan.events
    assert resumed == ChatResumed(chat=ALICE, msg_id="C1")
    assert said(plan).text == "Resumed Alice."
    after = fold([*recs, Recorded(9, NOW, resumed), Recorded(10, NOW + 1, alice(1))])
    assert takeover.paused_until(after.takeover, ALICE, 30) == NOW
    later = turn.Facts(after, loaded(), NOW + 3, facts().ids)
    assert isinstance(turn.step(later, ALICE).effect, turn.Ask)  # no longer "paused"
    assert "Paused:" not in status.report(after, loaded().config, NOW + 3)[0]
    all_ = said(turn.step(facts(*records(took, own("/resume all"))), OWNER))
    assert all_.text == "Resumed Alice."


def test_a_takeover_after_a_resume_pauses_again_and_a_removed_resume_is_undone() -> None:
    took = MessageSkipped(chat=ALICE, msg_id="O1", reason="takeover")
    recs = records(took, ChatResumed(chat=ALICE), took)
    assert takeover.paused_until(fold(recs).takeover, ALICE, 30) == NOW - 97 + 1800
    once = records(took, ChatResumed(chat=ALICE))
    gone = removed(Selection(seqs=frozenset({2})), "expiry", [(2, "ChatResumed", ALICE)])
    assert gone is not None
    after = fold([*once, Recorded(3, NOW, gone)]).takeover
    assert after == fold(once[:1]).takeover  # as a fold of what is left
