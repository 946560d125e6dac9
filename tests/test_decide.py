"""The agent's judgements, from config and projection states alone."""

import dataclasses
from typing import Any

import msgspec
import pytest

from events.model import (
    LlmCompleted,
    MessageReceived,
    MessageSkipped,
    Quoted,
    Recorded,
    ReplyPlanned,
    SessionStarted,
    Usage,
)
from pipeline.config import AppConfig, GroupEntity, Trigger, config_from_dict
from pipeline.daemon import _decide as decide
from projections import budget, own_sends, sessions, takeover
from projections.queue import Item
from tests.test_projections_limits import requested

NOW = 1_764_070_000.0
ALICE = "491701111111@s.whatsapp.net"
OWNER = "491700000000@s.whatsapp.net"
GROUP = "120363000000000000@g.us"
OWNER_LID = "123456789012345@lid"


def config(**overrides: Any) -> AppConfig:
    data: dict[str, Any] = {
        "whatsapp": {"phone_number": "491700000000"},
        "monitored_entities": [
            {"type": "user", "phone": "491701111111", "name": "Alice"},
            {"type": "group", "jid": GROUP, "trigger": {"mode": "mention", "keywords": ["bot"]}},
            {"type": "self"},
        ],
        "polling": {"debounce_seconds": 2, "catch_up_minutes": 30},
        "limits": {"replies_per_chat_per_hour": 2, "daily_budget_usd": 0.01},
        "takeover": {"minutes": 30},
    }
    data.update(overrides)
    return config_from_dict(data)


def item(text: str = "hi", *, chat: str = ALICE, seq: int = 1, **kw: Any) -> Item:
    """A queued message: ``kw`` names the queue's own fields (ts, revoked…) or the message's."""
    queued = {"ts": NOW} | {k: kw.pop(k) for k in list(kw) if k in _QUEUED}
    said: dict[str, Any] = {
        "msg_id": f"M{seq}",
        "sender": chat,
        "is_group": chat.endswith("@g.us"),
        "sent_at": NOW,
    }
    return Item(seq=seq, message=MessageReceived(chat=chat, text=text, **(said | kw)), **queued)


_QUEUED = {f.name for f in msgspec.structs.fields(Item)}


def view(cfg: AppConfig | None = None, *records: Recorded, now: float = NOW) -> decide.View:
    e, t, b = own_sends.State(), takeover.State(), budget.State()
    for rec in records:
        own_sends.apply(e, rec)
        takeover.apply(t, rec)
        budget.apply(b, rec)
    return decide.View(cfg or config(), e, t, b, now)


def entity(cfg: AppConfig, chat: str) -> Any:
    found = cfg.find_entity(chat)
    assert found is not None
    return found


def planned(text: str, chat: str = ALICE, wa_id: str = "WA1", seq: int = 10) -> Recorded:
    ev = ReplyPlanned(chat=chat, reply_id=f"R{seq}", purpose="reply", text=text, wa_id=wa_id)
    return Recorded(seq, NOW - 10, ev)


def test_echo_by_id_always_and_by_text_only_from_the_owner() -> None:
    cfg = config()
    v = view(cfg, planned("The answer"))
    alice = entity(cfg, ALICE)
    assert decide.on_arrival(v, alice, item("anything", msg_id="WA1")) == "echo"
    assert decide.on_arrival(v, alice, item("The  answer ", from_me=True)) == "echo"
    assert decide.on_arrival(v, alice, item("The answer")) is None


def test_owner_message_elsewhere_is_a_takeover_but_in_self_is_input() -> None:
    cfg = config()
    v = view(cfg)
    assert decide.on_arrival(v, entity(cfg, ALICE), item(from_me=True)) == "takeover"
    assert decide.on_arrival(v, entity(cfg, OWNER), item(chat=OWNER, from_me=True)) is None
    off = config(takeover={"enabled": False})
    assert decide.on_arrival(view(off), entity(off, ALICE), item(from_me=True)) == "own_message"


@pytest.mark.parametrize(("age_minutes", "reason"), [(29.9, None), (30.1, "stale")])
def test_stale_on_both_sides_of_catch_up(age_minutes: float, reason: str | None) -> None:
    cfg = config()
    msg = item(sent_at=NOW - age_minutes * 60)
    assert decide.on_arrival(view(cfg), entity(cfg, ALICE), msg) == reason


def test_empty_text_is_skipped() -> None:
    cfg = config()
    assert decide.on_arrival(view(cfg), entity(cfg, ALICE), item("  ", kind="image")) == "empty"


@pytest.mark.parametrize(
    ("text", "mentions", "mode", "fires"),
    [
        ("hello all", [], "mention", False),
        ("hey BOT, what's up", [], "mention", True),
        ("robots are cool", [], "mention", False),
        ("hi @491700000000", [], "mention", True),
        ("hi there", ["491700000000:12@s.whatsapp.net"], "mention", True),
        ("hi @491700000000", [], "keyword", False),
        ("bot?", [], "keyword", True),
        ("anything", [], "always", True),
        # The owner's LID, once the connection has taught it.
        ("hi @123456789012345", [], "mention", True),
        ("hi there", ["123456789012345@lid"], "mention", True),
        ("hi @1234567890123456", [], "mention", False),
    ],
)
def test_group_triggers(text: str, mentions: list[str], mode: str, fires: bool) -> None:
    cfg = config()
    group = GroupEntity(jid=GROUP, trigger=Trigger(mode=mode, keywords=("bot",)))  # type: ignore[arg-type]
    msg = item(text, chat=GROUP, sender=ALICE, mentions=mentions)
    seen = dataclasses.replace(view(cfg), owner=frozenset({OWNER_LID}))
    assert decide.triggered(seen, group, msg) is fires


def test_a_mention_of_the_owners_lid_needs_the_lid_to_be_known() -> None:
    group = GroupEntity(jid=GROUP, trigger=Trigger(mode="mention"))
    msg = item("hi @123456789012345", chat=GROUP, sender=ALICE, mentions=[OWNER_LID])
    assert decide.triggered(view(config()), group, msg) is False


def test_a_revoked_message_is_never_answered() -> None:
    cfg = config()
    assert decide.on_arrival(view(cfg), entity(cfg, ALICE), item("hi", revoked=True)) == "revoked"


def test_pause_lasts_takeover_minutes() -> None:
    cfg = config()
    paused = Recorded(5, NOW, MessageSkipped(chat=ALICE, msg_id="O1", reason="takeover"))
    assert decide.before_turn(view(cfg, paused, now=NOW + 29 * 60), ALICE) == "paused"
    assert decide.before_turn(view(cfg, paused, now=NOW + 30 * 60), ALICE) is None
    assert decide.before_turn(view(cfg, paused, now=NOW + 60), "other@s.whatsapp.net") is None


def test_rate_limit_counts_replies_in_the_last_hour() -> None:
    cfg = config()
    two = (planned("a", seq=1), planned("b", seq=2))
    assert decide.before_turn(view(cfg, *two), ALICE) == "rate_limited"
    assert decide.before_turn(view(cfg, *two, now=NOW + 3600), ALICE) is None
    assert decide.before_turn(view(cfg, two[0]), ALICE) is None


def test_budget_resets_at_local_midnight() -> None:
    cfg = config()
    spent = Recorded(
        3, NOW, LlmCompleted(chat=ALICE, call_id="C", content="x", usage=Usage(cost_usd=0.02))
    )
    assert decide.before_turn(view(cfg, spent), ALICE) == "budget"
    tomorrow = cfg.local_midnight(NOW) + 86_400 + 1
    assert decide.before_turn(view(cfg, spent, now=tomorrow), ALICE) is None


def test_burst_is_the_leading_run_of_one_sender_and_due_after_debounce() -> None:
    cfg = config()
    a1 = item("1", chat=GROUP, seq=1, sender=ALICE, ts=NOW)
    a2 = item("2", chat=GROUP, seq=2, sender=ALICE, ts=NOW + 1)
    b1 = item("3", chat=GROUP, seq=3, sender=OWNER, ts=NOW + 1.5)
    run = decide.burst([a1, a2, b1])
    assert [i.message.msg_id for i in run] == ["M1", "M2"]
    assert decide.due_at(cfg, run) == NOW + 3
    assert decide.burst([]) == []


def test_reset_command() -> None:
    assert decide.is_reset(item(" /Reset "))
    assert not decide.is_reset(item("/reset now"))


def test_entity_found_through_the_senders_phone_id() -> None:
    cfg = config()
    lid = item(chat="123456789012345@lid", sender_alt=ALICE)
    said = lid.message
    assert cfg.entity_for(said.chat, said.sender_alt, said.is_group) is not None
    assert cfg.entity_for(said.chat, None, False) is None


def test_a_turn_waits_while_the_calls_in_flight_may_spend_the_budget() -> None:
    cfg = config()  # a budget of $0.01
    other = "491702222222@s.whatsapp.net"

    def call(seq: int, chat: str, call_id: str) -> Recorded:
        return Recorded(seq, NOW - 60 + seq, requested(chat, call_id))

    cost = LlmCompleted(chat=ALICE, call_id="C1", content="x", usage=Usage(cost_usd=0.004))
    history = (call(1, ALICE, "C1"), Recorded(2, NOW - 50, cost), call(3, other, "C2"))
    v = view(cfg, *history)

    assert decide.before_turn(v, ALICE) is None  # $0.004 spent: under the budget
    assert not decide.budget_held(v)  # and one call in flight at about $0.004
    # A third call, decided in another chat and not yet in the log, may reach it.
    held = dataclasses.replace(v, reserving=frozenset({GROUP}))
    assert decide.budget_held(held)
    # Nothing in flight: the spend alone decides, and it is under the budget.
    assert not decide.budget_held(view(cfg, *history[:2]))


# -- issue 21: reply-to-bot and the listening window ---------------------------


def _group(**groups: Any) -> AppConfig:
    """A mention group, with ``groups`` keys set on the entity (global ones left as shipped)."""
    group: dict[str, Any] = {"type": "group", "jid": GROUP, "trigger": {"mode": "mention"}}
    if groups:
        group["groups"] = groups
    return config(monitored_entities=[group, {"type": "self"}])


def _talked(cfg: AppConfig, sender: str, at: float) -> decide.View:
    """The bot asked the LLM for ``sender`` in the group at ``at`` (their session)."""
    s = sessions.State()
    started = SessionStarted(chat=GROUP, session_id="S1", user=sender, reason="new")
    sessions.apply(s, Recorded(1, at - 1, started))
    asked = msgspec.structs.replace(requested(GROUP, "C1"), session_id="S1")
    sessions.apply(s, Recorded(2, at, asked))
    return dataclasses.replace(view(cfg), sessions=s)


@pytest.mark.parametrize(
    ("quoted_id", "groups", "fires"),
    [
        ("WA1", {}, True),  # the bot's own message, quoted: a mention by default
        ("WA9", {}, False),  # someone else's message
        ("WA1", {"reply_to_bot_is_mention": False}, False),
    ],
)
def test_quoting_the_bot_is_a_mention(quoted_id: str, groups: dict[str, Any], fires: bool) -> None:
    cfg = _group(**groups)
    v = view(cfg, planned("Meet at 7", chat=GROUP, wa_id="WA1"))
    msg = item("and then?", chat=GROUP, sender=ALICE, quoted=Quoted(id=quoted_id, text="x"))

    assert decide.triggered(v, entity(cfg, GROUP), msg) is fires


def test_quoting_the_bot_does_not_trigger_a_keyword_group() -> None:
    cfg = config(
        monitored_entities=[
            {"type": "group", "jid": GROUP, "trigger": {"mode": "keyword", "keywords": ["bot"]}}
        ]
    )
    v = view(cfg, planned("Meet at 7", chat=GROUP, wa_id="WA1"))
    msg = item("and then?", chat=GROUP, sender=ALICE, quoted=Quoted(id="WA1"))

    assert decide.triggered(v, entity(cfg, GROUP), msg) is False


@pytest.mark.parametrize(
    ("window", "ago", "fires"),
    [(0, 5, False), (60, 5, True), (60, 59, True), (60, 61, False)],
)
def test_after_an_exchange_the_sender_is_heard_for_a_while(
    window: float, ago: float, fires: bool
) -> None:
    cfg = _group(listen_after_mention_seconds=window)
    v = _talked(cfg, ALICE, NOW - ago)
    follow_up = item("and a table for four", chat=GROUP, sender=ALICE)
    other = item("me too", chat=GROUP, sender="491702222222@s.whatsapp.net", seq=2)

    assert decide.triggered(v, entity(cfg, GROUP), follow_up) is fires
    assert decide.triggered(v, entity(cfg, GROUP), other) is False


def test_a_queued_trigger_opens_the_window_for_the_sender_s_next_messages() -> None:
    cfg = _group(listen_after_mention_seconds=30)
    follow_up = item("at 7?", chat=GROUP, sender=ALICE, ts=NOW + 10)

    assert decide.on_arrival(view(cfg), entity(cfg, GROUP), follow_up, NOW) is None
    assert decide.on_arrival(view(cfg), entity(cfg, GROUP), follow_up, NOW - 60) == (
        "not_triggered"
    )


def test_a_group_s_own_keys_win_over_the_global_ones() -> None:
    cfg = config(
        groups={"listen_after_mention_seconds": 60, "context_messages": 5},
        monitored_entities=[
            {"type": "group", "jid": GROUP, "groups": {"listen_after_mention_seconds": 0}},
        ],
    )
    settings = cfg.group_settings(entity(cfg, GROUP))

    assert (settings.listen_after_mention_seconds, settings.context_messages) == (0, 5)
    assert settings.reply_to_bot_is_mention is True


def test_the_sender_s_next_message_within_the_debounce_joins_a_trigger_s_burst() -> None:
    cfg = _group()  # shipped: no listening window, a 2 s debounce
    question = item("what's the weather in Rome tomorrow?", chat=GROUP, sender=ALICE, ts=NOW + 1)
    later = item("and in Milan?", chat=GROUP, sender=ALICE, ts=NOW + 3)

    assert decide.on_arrival(view(cfg), entity(cfg, GROUP), question, NOW) is None
    assert decide.on_arrival(view(cfg), entity(cfg, GROUP), later, NOW) == "not_triggered"
    assert decide.on_arrival(view(cfg), entity(cfg, GROUP), question) == "not_triggered"


def test_a_message_sent_while_the_bot_answers_the_sender_is_heard_in_the_window() -> None:
    cfg = _group(listen_after_mention_seconds=120)
    v = _talked(cfg, ALICE, NOW - 10)  # asked for Alice at NOW - 10 ...
    done = LlmCompleted(chat=GROUP, call_id="C1", content="Try Luigi's.")
    sessions.apply(v.sessions, Recorded(3, NOW, done))  # ... and answered at NOW
    during = item("it must be vegetarian", chat=GROUP, sender=ALICE, ts=NOW - 5)
    other = item("me too", chat=GROUP, sender="491702222222@s.whatsapp.net", ts=NOW - 5)

    assert decide.on_arrival(v, entity(cfg, GROUP), during) is None
    assert decide.on_arrival(v, entity(cfg, GROUP), other) == "not_triggered"


@pytest.mark.parametrize("text", ["/reset", "@491700000000 /reset", " @bot  /RESET "])
def test_a_reset_in_a_mention_group_triggers_and_is_one(text: str) -> None:
    cfg = _group()
    reset = item(text, chat=GROUP, sender=ALICE, mentions=[OWNER] if "@4917" in text else [])

    assert decide.on_arrival(view(cfg), entity(cfg, GROUP), reset) is None
    assert decide.is_reset(reset)
    assert not decide.is_reset(item("@491700000000 /reset please", chat=GROUP))
