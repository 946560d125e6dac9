"""The parts of judged replay that need no server: arithmetic, parsing, verdicts, references."""

from __future__ import annotations

import io
from typing import Any

import pytest

from events.model import (
    ChatTurn,
    ConfigLoaded,
    LlmRequested,
    MessageReceived,
    MessageSkipped,
    Recorded,
)
from pipeline.tools.replay._evaluate import sample
from pipeline.tools.replay._judge import Asked, combine, for_new, parse_answer
from pipeline.tools.replay._progress import Progress
from pipeline.tools.replay._reference import owner_replies
from pipeline.tools.replay._stats import wilson, win_rate

CHAT = "491701111111@s.whatsapp.net"
OTHER = "491702222222@s.whatsapp.net"


# -- the confidence interval ---------------------------------------------------


@pytest.mark.parametrize(
    ("wins", "n", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion",
        # Statistics in Medicine 17:857-872, table I, method 3 (Wilson score, no correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0),
    ],
)
def test_wilson_matches_published_intervals(wins: int, n: int, low: float, high: float):
    interval = wilson(wins, n)

    assert interval is not None
    assert interval == pytest.approx((low, high), abs=5e-5)


def test_wilson_is_symmetric_and_undefined_without_decisions():
    low, high = wilson(8, 10) or (0.0, 0.0)
    mirrored = wilson(2, 10) or (0.0, 0.0)

    assert (low, high) == pytest.approx((1 - mirrored[1], 1 - mirrored[0]))
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=5e-5)
    assert wilson(0, 0) is None
    with pytest.raises(ValueError, match="3 successes out of 2"):
        wilson(3, 2)


def test_the_win_rate_leaves_ties_out_and_concludes_only_outside_one_half():
    clear = win_rate(wins=18, losses=2)
    unclear = win_rate(wins=3, losses=1)
    worse = win_rate(wins=1, losses=19)

    assert clear.rate == pytest.approx(0.9)
    assert clear.decided == 20
    assert clear.conclusion == "the new settings are better"
    assert unclear.conclusion == "no clear difference"
    assert worse.conclusion == "the new settings are worse"
    assert win_rate(0, 0).conclusion == "no turn decided"


# -- reading the judge ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"verdict": "A", "reason": "names a hotel"}', ("A", "names a hotel")),
        ('```json\n{"verdict": "b", "reason": "shorter"}\n```', ("B", "shorter")),
        (
            'Sure. {"verdict": " Tie ", "reason": "both\n fine"} Hope this helps',
            ("tie", "both fine"),
        ),
        ('{"verdict": "B"}', ("B", "")),
    ],
)
def test_judge_answers_are_read_inside_prose_and_fences(text: str, expected: tuple[str, str]):
    assert parse_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    ["I think the first one.", '{"verdict": "C"}', '{"verdict": 1}', '["A"]', "{oops}", ""],
)
def test_an_unreadable_judge_answer_is_none(text: str):
    assert parse_answer(text) is None


def _asked(first: Any, answer: Any, reason: str = "r") -> Asked:
    return Asked(first=first, answer=answer, reason=reason, raw=["…"], calls=1)


def test_the_answer_maps_to_the_new_reply_whichever_side_it_was_shown_on():
    assert for_new(_asked("old", "B")) == "win"
    assert for_new(_asked("new", "A")) == "win"
    assert for_new(_asked("old", "A")) == "loss"
    assert for_new(_asked("new", "B")) == "loss"
    assert for_new(_asked("new", "tie")) == "tie"


def test_orders_that_agree_give_their_verdict_and_disagreeing_ones_a_tie():
    agree = combine([_asked("old", "B", "clearer"), _asked("new", "A", "also clearer")])
    biased = combine([_asked("old", "A"), _asked("new", "A")])  # always picks the first
    half = combine([_asked("old", "B"), _asked("new", "tie")])

    assert (agree.verdict, agree.reason) == ("win", "clearer")
    assert biased.verdict == "tie"
    assert biased.reason.startswith("the two orders disagree: loss with the recorded reply first")
    assert half.verdict == "tie"


def test_one_unreadable_order_leaves_the_turn_unjudged_with_the_raw_text():
    broken = Asked(first="new", raw=["no idea", "still no"], calls=2, error="unreadable")

    judged = combine([_asked("old", "B"), broken])

    assert judged.verdict == "unjudged"
    assert judged.reason == "unreadable (new reply shown first)"
    assert judged.orders[1].raw == ["no idea", "still no"]


# -- the owner's reference answers ---------------------------------------------


class _Log:
    def __init__(self) -> None:
        self.records: list[Recorded] = []

    def add(self, ts: float, event: Any) -> None:
        self.records.append(Recorded(seq=len(self.records) + 1, ts=ts, event=event))

    def call(self, ts: float, call_id: str, chat: str = CHAT) -> None:
        self.add(
            ts,
            LlmRequested(
                chat=chat,
                call_id=call_id,
                session_id="s",
                trigger_ids=["m"],
                model="m",
                params={},
                messages=[ChatTurn("user", "q")],
                config_hash="h",
            ),
        )

    def owner(self, ts: float, msg_id: str, text: str, reason: str = "takeover") -> None:
        self.add(
            ts, MessageReceived(chat=CHAT, msg_id=msg_id, sender="me", text=text, from_me=True)
        )
        self.add(ts, MessageSkipped(chat=CHAT, msg_id=msg_id, reason=reason))

    def other(self, ts: float, msg_id: str) -> None:
        self.add(ts, MessageReceived(chat=CHAT, msg_id=msg_id, sender=CHAT, text="hm"))


def _log() -> _Log:
    log = _Log()
    log.add(0, ConfigLoaded(hash="h", config={"takeover": {"minutes": 10}}, path="app.json"))
    return log


def test_the_owners_messages_right_after_a_call_are_its_reference():
    log = _log()
    log.call(100, "c1")
    log.owner(160, "o1", "Try the Lungarno.")
    log.owner(170, "o2", "180 a night.")

    assert owner_replies(log.records, CHAT) == {"c1": "Try the Lungarno.\n180 a night."}


def test_no_reference_after_the_window_after_someone_else_wrote_or_for_an_echo():
    log = _log()
    log.call(100, "late")
    log.owner(100 + 10 * 60 + 1, "o1", "too late")
    log.call(2000, "interrupted")
    log.other(2010, "m2")
    log.owner(2020, "o2", "answers m2, not the bot's turn")
    log.call(3000, "echoed")
    log.owner(3001, "o3", "the bot's own reply coming back", reason="echo")
    log.call(4000, "elsewhere", chat=OTHER)
    log.owner(4001, "o4", "in another chat than the call")

    assert owner_replies(log.records, CHAT) == {}


def test_own_messages_count_when_takeovers_are_off():
    log = _log()
    log.call(100, "c1")
    log.owner(110, "o1", "by hand", reason="own_message")

    assert owner_replies(log.records, CHAT) == {"c1": "by hand"}


# -- sampling and progress -----------------------------------------------------


def test_a_sample_is_reproducible_by_seed_and_keeps_log_order():
    items = list(range(100))

    first, again, other = sample(items, 10, 7), sample(items, 10, 7), sample(items, 10, 8)

    assert first == again
    assert first == sorted(first)
    assert len(set(first)) == 10
    assert other != first
    assert sample(items, 500, 7) == items
    assert sample(items, None, 7) == items


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_draws_only_on_a_terminal():
    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        progress = Progress("judging", 4, stream)
        progress.step()
        progress.step()
        progress.clear()

    assert "\rjudging [############............] 2/4" in tty.getvalue()
    assert tty.getvalue().endswith("\r\033[K")
    assert pipe.getvalue() == ""
