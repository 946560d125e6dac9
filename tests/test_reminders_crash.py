"""Property: a reminder set by the model fires exactly once whatever commit a crash
(kill -9) follows, and whenever the daemon is up again: the turn that sets it, the
scheduler's pass that plans it and the sender's confirmation are each one commit,
driven here as the daemon drives them (pipeline/daemon/_turn.py, _reminding.py)."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from events.model import (
    AnyEvent,
    MessageReceived,
    Recorded,
    ReminderFired,
    ReplyPlanned,
    ReplySent,
    ToolCall,
    ToolCalled,
    Usage,
)
from events.units import MINUTE
from pipeline.daemon import _reminding as reminding
from pipeline.daemon import _turn as turn
from pipeline.daemon._replies import Ids
from pipeline.llm import LlmResult, Prompt
from projections import outbox
from projections.fold import States, fold
from tests.test_turn import ALICE, NOW, loaded

CONFIG = loaded(polling={"debounce_seconds": 0, "catch_up_minutes": 30})
DUE = NOW + 10 * MINUTE  # 2025-11-25T12:36:40+01:00


class Crash(Exception):
    """kill -9 after a commit."""


def _model(prompt: Prompt) -> LlmResult:
    """Calls set_reminder in its first round, then confirms in words."""
    if prompt.tools and not prompt.rounds:
        args = json.dumps({"at": "2025-11-25T12:36:40+01:00", "text": "stretch"})
        made = [ToolCall(id="t0", name="set_reminder", arguments=args)]
        return LlmResult(
            content="", citations=[], usage=Usage(), tool_calls=made, finish_reason="tool_calls"
        )
    return LlmResult(content="Set for 12:36.", citations=[], usage=Usage(), finish_reason="stop")


class Life:
    """One run of the daemon at ``now`` over ``log``, crashing after commit ``crash_at``."""

    def __init__(self, log: list[AnyEvent], ids: Ids, now: float, crash_at: int | None) -> None:
        self.log, self.ids, self.now, self.crash_at = log, ids, now, crash_at
        self.sent: list[str] = []  # wa_ids the transport was asked to send

    def view(self) -> States:
        return fold(Recorded(n, NOW - 100 + n, e) for n, e in enumerate(self.log, 1))

    def commit(self, events: list[AnyEvent], commits: list[int]) -> None:
        self.log.extend(events)
        commits[0] += 1
        if commits[0] == self.crash_at:
            raise Crash

    def run(self, commits: list[int]) -> None:
        self._turn(commits)
        fired = reminding.due(self.view().reminders, CONFIG.config, self.now, self.ids)
        if fired.events:
            self.commit(fired.events, commits)
        for entry in outbox.unsent(self.view().outbox):
            self.sent.append(entry.event.wa_id or "")
            sent = ReplySent(
                chat=entry.event.chat, reply_id=entry.event.reply_id, wa_id="w", sent_at=self.now
            )
            self.commit([sent], commits)

    def _turn(self, commits: list[int]) -> None:
        while True:
            plan = turn.step(turn.Facts(self.view(), CONFIG, self.now, self.ids), ALICE)
            if not plan.events:
                return
            while True:
                self.commit(plan.events, commits)
                if not isinstance(plan.effect, turn.Ask):
                    break
                facts = turn.Facts(self.view(), CONFIG, self.now, self.ids)
                plan = turn.answered(facts, plan.effect, _model(plan.effect.prompt))


@settings(max_examples=150, deadline=None)
@given(
    crash_at=st.integers(1, 8),
    # When the daemon is up: a start before the reminder is due, then starts after it.
    later=st.lists(st.floats(0, 60 * MINUTE, allow_nan=False), min_size=1, max_size=4),
)
def test_a_reminder_fires_exactly_once_for_any_crash_point(
    crash_at: int, later: list[float]
) -> None:
    counter = itertools.count(1)
    ids = Ids(lambda: f"id{next(counter)}", lambda: f"WA{next(counter)}")
    log: list[AnyEvent] = [
        MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="remind me", sent_at=NOW)
    ]
    # A start at once after a crash in the first; the last start never crashes.
    starts = [NOW, NOW + 1, *sorted(DUE + s for s in later), DUE + 61 * MINUTE]
    commits = [0]
    sent: list[str] = []
    crashed_at: float | None = None
    for n, now in enumerate(starts):
        life = Life(log, ids, now, crash_at if n < len(starts) - 1 else None)
        try:
            life.run(commits)
        except Crash:
            crashed_at = crashed_at or now
        sent += life.sent
    fired = [e for e in log if isinstance(e, ReminderFired)]
    planned = [e for e in log if isinstance(e, ReplyPlanned) and e.purpose == "reminder"]
    assert len(fired) == len(planned) == 1
    assert fired[0].reply_id == planned[0].reply_id
    assert [e.name for e in log if isinstance(e, ToolCalled)] == ["set_reminder"]
    # The transport was asked to send it once, or again only under its own wa_id
    # after a crash between the send and its record (the outbox's at-least-once).
    assert set(sent) >= {planned[0].wa_id}
    assert sent.count(planned[0].wa_id or "") <= 2
    # Planned at the first start after it was due (the next one, if that one crashed
    # first); missed when that was more than catch_up_minutes late.
    planned_at = DUE + fired[0].late
    assert any(abs(planned_at - s) < 0.01 for s in starts)
    if crashed_at is None or crashed_at < DUE:
        assert abs(planned_at - min(s for s in starts if s >= DUE)) < 0.01
    assert fired[0].missed == (fired[0].late > 30 * MINUTE)
    replies = [e for e in log if isinstance(e, ReplyPlanned) and e.purpose == "reply"]
    assert [r.text for r in replies] == ["Set for 12:36."]
