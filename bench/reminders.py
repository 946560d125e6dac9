"""10,000 pending reminders: what they add to start-up and what a scheduler tick costs.

Start-up: ``Runner.start`` (read + decode + fold, no snapshot) on a log of the
corpus's history with 10,000 ``ReminderSet`` events appended, against the same
history without them, in alternating rounds (median of 3). Goal: at most
``STARTUP_GOAL`` seconds more.

Tick: what the scheduler does at a wake-up (``Scheduler._step``): when the
earliest reminder is due (``reminders.next_due``) and which are due now
(``_reminding.due``), with 10,000 pending and none due, against the same with
one pending; and a tick that fires the earliest of 10,000 (the rule, then the
fold of its ``ReminderFired`` and ``ReplyPlanned``). Goal: a tick at most
``TICK_GOAL`` ms.
"""

from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path

from bench.corpus import history, write_log
from bench.measure import REPEATS, seconds
from bench.report import Row
from bench.workspace import Workspace, progress
from events.backends import open_log
from events.model import Recorded, ReminderSet
from pipeline.config import config_from_dict
from pipeline.daemon import _reminding as reminding
from pipeline.daemon._replies import Ids
from projections import reminders
from projections.fold import States, dispatch_table, feed
from projections.runner import Runner

NAME = "reminders"
PENDING = 10_000
STARTUP_GOAL = 0.5  # seconds added to Runner.start by 10,000 pending reminders
TICK_GOAL = 5.0  # ms per scheduler tick with 10,000 pending
TICKS = 2_000
FIRINGS = 1_000
CHATS = [f"4917{n:08d}@s.whatsapp.net" for n in range(200)]
# The chats are monitored: a reminder of a chat taken out of app.json is cancelled, not sent.
CONFIG = config_from_dict(
    {
        "whatsapp": {"phone_number": "491700000000"},
        "monitored_entities": [{"type": "user", "jid": chat} for chat in CHATS],
    }
)


def run(ws: Workspace) -> list[Row]:
    return [*_startup(ws), *_ticks()]


def _reminders(after: Recorded, count: int) -> list[Recorded]:
    """``count`` reminders set after ``after``, due over the next year, in random order."""
    due = itertools.cycle(range(0, 365 * 86400, 3137))
    return [
        Recorded(
            after.seq + n,
            after.ts + n,
            ReminderSet(
                chat=CHATS[n % len(CHATS)],
                reminder_id=f"R{n:08X}",
                at=after.ts + 3600 + next(due) + n,
                text="Call the dentist about the appointment on Thursday",
            ),
        )
        for n in range(1, count + 1)
    ]


def _startup(ws: Workspace) -> list[Row]:
    size = max(ws.sizes.history // 10, 20_000)
    progress(f"{NAME}: Runner.start on a {size:,}-event log, with and without {PENDING:,}")
    base = history(size)
    plain, loaded = ws.scratch("reminders-plain"), ws.scratch("reminders-pending")
    write_log(plain / "events.db", base)
    write_log(loaded / "events.db", [*base, *_reminders(base[-1], PENDING)])
    times: dict[Path, list[float]] = {plain: [], loaded: []}
    for _ in range(REPEATS):
        for store in (loaded, plain):
            times[store].append(_start(store))
    with_them, without = statistics.median(times[loaded]), statistics.median(times[plain])
    return [
        Row(
            bench=NAME,
            measure=f"Runner.start with {PENDING:,} pending reminders",
            value=with_them,
            unit="s",
            baseline=without,
            baseline_label=f"the same {size:,}-event log without them",
            target=without + STARTUP_GOAL,
            better="lower",
            note=f"added {with_them - without:.3f} s; goal +{STARTUP_GOAL} s; median of 3",
        )
    ]


def _start(store: Path) -> float:
    log = open_log(store)
    try:
        return seconds(lambda: Runner.start(log))
    finally:
        log.close()


def _folded(records: list[Recorded]) -> States:
    states = States()
    feed(states, dispatch_table(states), records)
    return states


def _ticks() -> list[Row]:
    progress(f"{NAME}: scheduler ticks with {PENDING:,} pending and with one")
    start = Recorded(1, time.time(), ReminderSet(chat=CHATS[0], reminder_id="R0", at=0, text=""))
    many = _folded(_reminders(start, PENDING))
    one = _folded(_reminders(start, 1))
    now = start.ts  # before the earliest: nothing is due
    counter = itertools.count()
    ids = Ids(lambda: f"P{next(counter)}", lambda: None)
    idle_many = _per_tick(many.reminders, now, ids)
    idle_one = _per_tick(one.reminders, now, ids)
    firing = _firing(many, ids)
    note = f"{idle_many * 1000:.1f} µs vs {idle_one * 1000:.1f} µs; median of {REPEATS} runs"
    return [
        Row(
            bench=NAME,
            measure=f"scheduler tick, {PENDING:,} pending, none due",
            value=idle_many,
            unit="ms",
            baseline=idle_one,
            baseline_label="the same tick with one pending",
            target=TICK_GOAL,
            better="lower",
            note=note,
        ),
        Row(
            bench=NAME,
            measure=f"scheduler tick firing the earliest of {PENDING:,} (rule + fold)",
            value=firing,
            unit="ms",
            baseline=idle_many,
            baseline_label="a tick with none due",
            target=TICK_GOAL,
            better="lower",
            note=f"{firing * 1000:.1f} µs; mean over {FIRINGS:,} firings",
        ),
    ]


def _per_tick(state: reminders.State, now: float, ids: Ids) -> float:
    """Milliseconds per idle tick: the next due time, and the (empty) rule."""
    runs = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(TICKS):
            reminders.next_due(state)
            reminding.due(state, CONFIG, now, ids)
        runs.append((time.perf_counter() - started) / TICKS * 1000)
    return statistics.median(runs)


def _firing(states: States, ids: Ids) -> float:
    """Milliseconds per tick that fires one reminder and folds what it recorded."""
    table = dispatch_table(states)
    seq = itertools.count(states.seq + 1)
    started = time.perf_counter()
    for _ in range(FIRINGS):
        due = reminders.next_due(states.reminders)
        assert due is not None
        fired = reminding.due(states.reminders, CONFIG, due, ids)
        feed(states, table, [Recorded(next(seq), due, e) for e in fired.events])
    return (time.perf_counter() - started) / FIRINGS * 1000
