"""The scheduler on a real log with a fake clock: check-ins and rotations, across restarts."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import pytest

from events.backends import open_log
from events.model import (
    AnyEvent,
    Compacted,
    FactRemembered,
    LlmCompleted,
    MediaTranscribed,
    MessageReceived,
    Recorded,
    ReminderFired,
    ReminderSet,
    ReplyPlanned,
    TransportStatus,
    Usage,
)
from events.testing import FakeClock
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.daemon import FoldedLog, Scheduler, Settings
from pipeline.daemon import _timetable as timetable
from pipeline.daemon._replies import Ids
from projections import aliases, queue, reminders, schedule
from projections.fold import SNAPSHOT_VERSION, fold
from projections.runner import SNAPSHOT_NAME

BERLIN = ZoneInfo("Europe/Berlin")
OWNER_JID = "491700000000@s.whatsapp.net"
ALICE = "491701111111@s.whatsapp.net"
HOUR = 3600.0
DAY = 24 * HOUR
ROTATION = {"retention_days": 1, "interval_hours": 24}


def at(local: str) -> float:
    """Unix time of a Berlin wall-clock time, e.g. ``at("2025-06-02 09:00")``."""
    return datetime.fromisoformat(local).replace(tzinfo=BERLIN).timestamp()


def loaded(**sections: Any) -> LoadedConfig:
    data = {
        "whatsapp": {"phone_number": "491700000000"},
        # Reminders go only to monitored chats.
        "monitored_entities": [{"type": "user", "phone": "491701111111", "name": "Alice"}],
        "polling": {"interval_seconds": 0.05},
        "rotation": ROTATION,
        **sections,
    }
    return LoadedConfig(
        config=config_from_dict(data), hash="h", path="app.json", secrets=Secrets(api_key=None)
    )


class Bot:
    """The folded log and a scheduler on one file; ``restart`` is a new daemon on the same file."""

    def __init__(self, path: Path, clock: FakeClock, config: LoadedConfig) -> None:
        self.path = path
        self.clock = clock
        self.settings = Settings(config)
        self.folded = self._open()
        self.scheduler = self._scheduler()

    def _open(self) -> FoldedLog:
        return FoldedLog(open_log(self.path, clock=self.clock))

    def _scheduler(self) -> Scheduler:
        return Scheduler(self.folded, self.settings, Ids(new_id, lambda: "WA1"), clock=self.clock)

    def restart(self, now: float) -> None:
        self.folded.close()
        self.clock.now = now
        self.folded = self._open()
        self.scheduler = self._scheduler()

    async def tick(self, now: float) -> float:
        self.clock.now = now
        return await self.scheduler.run_due(now)

    def append(self, when: float, *events: AnyEvent) -> None:
        """Events the daemon recorded earlier: in the log and folded, as its appends are."""
        self.clock.now = when
        self.folded.fold(self.folded.log.append(*events))

    def records(self) -> list[Recorded]:
        return list(self.folded.log.read())

    def check_ins(self) -> list[ReplyPlanned]:
        return [
            r.event
            for r in self.records()
            if isinstance(r.event, ReplyPlanned) and r.event.purpose == "vitality"
        ]

    def rotations(self) -> list[Recorded]:
        return [
            r
            for r in self.records()
            if isinstance(r.event, Compacted) and r.event.reason == "rotation"
        ]


@pytest.fixture
def make_bot(tmp_path: Path) -> Iterator[Any]:
    bots: list[Bot] = []

    def make(start: float, **sections: Any) -> Bot:
        bot = Bot(tmp_path / f"bot{len(bots)}", FakeClock(start), loaded(**sections))
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        bot.folded.close()


def reply(n: int) -> ReplyPlanned:
    return ReplyPlanned(chat=ALICE, reply_id=f"R{n}", purpose="reply", text="answer")


def cost(usd: float) -> LlmCompleted:
    return LlmCompleted(chat=ALICE, call_id="C", content="answer", usage=Usage(cost_usd=usd))


# -- vitality --------------------------------------------------------------


@pytest.mark.anyio
async def test_the_check_in_is_planned_at_its_time_once(make_bot: Any) -> None:
    bot = make_bot(at("2025-06-02 08:00"), rotation={"interval_hours": 1000})

    assert await bot.tick(at("2025-06-02 08:59:30")) == at("2025-06-02 09:00")
    assert bot.check_ins() == []

    assert await bot.tick(at("2025-06-02 09:00")) == at("2025-06-03 09:00")
    assert await bot.tick(at("2025-06-02 09:00:05")) == at("2025-06-03 09:00")
    [check_in] = bot.check_ins()
    assert check_in.chat == OWNER_JID
    assert check_in.wa_id == "WA1"
    assert check_in.text == (
        "Bot alive\n— 0 replies, $0.00 spent in the last 24 h, connection: unknown"
    )


@pytest.mark.anyio
async def test_the_status_line_counts_the_last_day(make_bot: Any) -> None:
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine - 2 * DAY, vitality={"message": "Still here"})
    bot.append(nine - 25 * HOUR, reply(1), cost(1.0))
    bot.append(nine - 3 * HOUR, reply(2), cost(0.03), TransportStatus(state="connected"))
    bot.append(nine - HOUR, reply(3), cost(0.02))
    # A voice note's transcription is spend too (projections.spend), as in stats and /metrics.
    heard = MediaTranscribed(
        chat=ALICE, msg_id="V1", text="Hallo", model="whisper-1", cost_usd=0.01
    )
    bot.append(nine - HOUR, heard)

    await bot.tick(nine)

    assert [c.text for c in bot.check_ins()] == [
        "Still here\n— 2 replies, $0.06 spent in the last 24 h, connection: connected"
    ]


@pytest.mark.anyio
async def test_a_restart_does_not_repeat_a_check_in_that_happened(make_bot: Any) -> None:
    bot = make_bot(at("2025-06-02 08:00"), rotation={"interval_hours": 1000})
    await bot.tick(at("2025-06-02 09:00"))

    bot.restart(at("2025-06-02 09:10"))

    assert await bot.tick(at("2025-06-02 09:10")) == at("2025-06-03 09:00")
    assert len(bot.check_ins()) == 1


@pytest.mark.parametrize(("start", "sent"), [("09:59", 1), ("10:01", 0)])
@pytest.mark.anyio
async def test_a_check_in_missed_while_down_is_sent_only_within_the_hour(
    make_bot: Any, start: str, sent: int
) -> None:
    now = at(f"2025-06-02 {start}")
    bot = make_bot(now, rotation={"interval_hours": 1000})

    assert await bot.tick(now) == at("2025-06-03 09:00")
    assert len(bot.check_ins()) == sent


@pytest.mark.anyio
async def test_several_missed_check_ins_make_one(make_bot: Any) -> None:
    bot = make_bot(at("2025-06-02 08:00"), vitality={"cron": "*/10 * * * *"})
    await bot.tick(at("2025-06-02 08:00"))

    bot.restart(at("2025-06-02 08:45"))
    assert await bot.tick(at("2025-06-02 08:45")) == at("2025-06-02 08:50")

    assert len(bot.check_ins()) == 2


@pytest.mark.anyio
async def test_config_edits_apply_from_the_next_decision(make_bot: Any) -> None:
    bot = make_bot(at("2025-06-02 08:00"), vitality={"enabled": False})
    await bot.tick(at("2025-06-02 09:00"))
    assert bot.check_ins() == []

    bot.settings.loaded = loaded(vitality={"cron": "*/15 * * * *", "message": "Tick"})
    await bot.tick(at("2025-06-02 09:01"))
    assert await bot.tick(at("2025-06-02 09:14")) == at("2025-06-02 09:15")
    await bot.tick(at("2025-06-02 09:15"))

    assert [c.text.splitlines()[0] for c in bot.check_ins()] == ["Tick", "Tick"]


@pytest.mark.anyio
async def test_a_retention_shorter_than_the_catch_up_keeps_the_check_in(make_bot: Any) -> None:
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation={"retention_days": 0.0001, "interval_hours": 0.01})
    await bot.tick(nine)
    [planned] = bot.check_ins()
    bot.append(nine + 1, reply(1))

    await bot.tick(nine + 60)
    [marker] = bot.rotations()
    assert isinstance(marker.event, Compacted)
    assert marker.event.by_type == {"ReplyPlanned": 1}  # the reply, not the check-in
    bot.restart(nine + 61)  # nothing in memory: the log must say it was sent
    await bot.tick(nine + 61)

    assert bot.check_ins() == [planned]  # kept, and not planned again


@pytest.mark.anyio
async def test_a_repeated_hour_when_clocks_go_back_checks_in_once(make_bot: Any) -> None:
    first = at("2025-10-26 02:30")  # fromisoformat picks the first (summer time) 02:30
    bot = make_bot(first - HOUR, vitality={"time": "02:30"}, rotation={"interval_hours": 1000})
    await bot.tick(first)

    assert await bot.tick(first + HOUR) == at("2025-10-27 02:30")
    assert len(bot.check_ins()) == 1


@pytest.mark.anyio
async def test_a_cron_that_never_matches_plans_nothing(make_bot: Any) -> None:
    bot = make_bot(at("2025-06-02 08:00"), vitality={"cron": "0 0 31 2 *"})

    assert await bot.tick(at("2025-06-02 09:00")) == at("2025-06-03 08:00")  # the rotation
    assert bot.check_ins() == []


def test_daily_runs_keep_their_wall_clock_time_across_daylight_saving() -> None:
    def runs(expr: str, start: str, n: int) -> list[str]:
        out, after = [], at(start)
        for _ in range(n):
            after = timetable.next_occurrence(expr, BERLIN, after)
            out.append(datetime.fromtimestamp(after, BERLIN).isoformat())
        return out

    assert runs("0 9 * * *", "2025-03-29 12:00", 2) == [
        "2025-03-30T09:00:00+02:00",
        "2025-03-31T09:00:00+02:00",
    ]
    # 02:30 does not exist on 30 March: it runs at the jump.
    assert runs("30 2 * * *", "2025-03-29 12:00", 2) == [
        "2025-03-30T03:00:00+02:00",
        "2025-03-31T02:30:00+02:00",
    ]
    # 02:30 happens twice on 26 October: it runs the first time only.
    assert runs("30 2 * * *", "2025-10-25 12:00", 2) == [
        "2025-10-26T02:30:00+02:00",
        "2025-10-27T02:30:00+01:00",
    ]


# -- rotation --------------------------------------------------------------


@pytest.mark.anyio
async def test_rotation_runs_every_interval_and_a_restart_does_not_advance_it(
    make_bot: Any,
) -> None:
    start = at("2025-06-02 12:00")
    rotation = {"retention_days": 0.5, "interval_hours": 24}
    bot = make_bot(start, vitality={"enabled": False}, rotation=rotation)
    old = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="old")
    bot.append(start, old)

    assert await bot.tick(start + 23 * HOUR) == start + DAY
    assert bot.rotations() == []
    assert [i.message.msg_id for i in queue.pending(bot.folded.view.queue, ALICE)] == ["M1"]

    assert await bot.tick(start + DAY) == start + 2 * DAY
    [marker] = bot.rotations()
    assert isinstance(marker.event, Compacted)
    assert marker.event.by_type == {"MessageReceived": 1}
    # Absorbed: the rotated message is no longer waiting for a decision.
    assert queue.pending(bot.folded.view.queue, ALICE) == []
    assert bot.folded.view.stats.compacted == 1

    bot.restart(start + 30 * HOUR)
    assert await bot.tick(start + 30 * HOUR) == start + 2 * DAY
    assert len(bot.rotations()) == 1


@pytest.mark.anyio
async def test_restarts_more_often_than_the_interval_do_not_put_the_first_rotation_off(
    make_bot: Any,
) -> None:
    """With no rotation in the log yet, the interval counted from each start: a bot
    restarted every 20 h kept everything past the retention for as long as it ran."""
    start = at("2026-01-01 12:00")
    rotation = {"retention_days": 30, "interval_hours": 24}
    bot = make_bot(start, vitality={"enabled": False}, rotation=rotation)
    bot.append(start, MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="old"))
    now = start
    while now < start + 40 * DAY:
        now += 20 * HOUR
        bot.restart(now)
        for step in range(0, 20, 2):
            await bot.tick(now + step * HOUR)

    [marker] = bot.rotations()
    assert start + 30 * DAY <= marker.ts <= start + 31 * DAY
    assert not [r for r in bot.records() if isinstance(r.event, MessageReceived)]


@pytest.mark.anyio
async def test_a_log_never_rotated_rotates_at_a_start_an_interval_after_it_began(
    make_bot: Any,
) -> None:
    start = at("2025-06-02 12:00")
    bot = make_bot(start, vitality={"enabled": False})
    bot.append(start - 2 * DAY, MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="x"))
    bot.restart(start)

    assert await bot.tick(start) == start + DAY
    [marker] = bot.rotations()
    assert marker.ts == start


@pytest.mark.anyio
@pytest.mark.parametrize("drop_expired_sessions", [False, True])
async def test_a_rotation_leaves_no_byte_of_what_it_removed_while_the_bot_runs(
    make_bot: Any, drop_expired_sessions: bool
) -> None:
    """The snapshot saved at the last stop held the expired texts until the next
    stop (or 10,000 events later), and the WAL's frames held them too."""
    start = at("2025-06-02 12:00")
    rotation = {**ROTATION, "drop_expired_sessions": drop_expired_sessions}
    bot = make_bot(start, vitality={"enabled": False}, rotation=rotation)
    secret = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="zebra-quartz")
    bot.append(start - 2 * DAY, secret)
    bot.restart(start)  # its stop saved the snapshot, texts and all
    store = bot.path
    assert _holding(store, b"zebra-quartz") != []

    await bot.tick(start + DAY)
    [marker] = bot.rotations()
    assert _holding(store, b"zebra-quartz") == []
    # A fresh snapshot of the absorbed state: a crash now does not refold the whole log.
    found = bot.folded.log.load_snapshot(SNAPSHOT_NAME, SNAPSHOT_VERSION)
    assert found is not None
    assert found[0] >= marker.seq


def _holding(store: Path, text: bytes) -> list[str]:
    """The store's files holding ``text``, and its snapshots that do."""
    files = [p.name for p in sorted(store.rglob("*")) if p.is_file() and text in p.read_bytes()]
    with closing(sqlite3.connect(f"{(store / 'events.db').as_uri()}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT name, state FROM snapshots").fetchall()
    return files + [f"snapshot {name}" for name, state in rows if text in state]


@pytest.mark.anyio
async def test_an_empty_rotation_leaves_no_mark_and_waits_a_full_interval(make_bot: Any) -> None:
    start = at("2025-06-02 12:00")
    bot = make_bot(start, vitality={"enabled": False})
    bot.append(start, MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="new"))

    assert await bot.tick(start + DAY) == start + 2 * DAY
    assert await bot.tick(start + DAY + 1) == start + 2 * DAY

    assert bot.rotations() == []
    assert len(bot.records()) == 1


@pytest.mark.anyio
async def test_the_rotation_settings_in_force_are_used(make_bot: Any) -> None:
    start = at("2025-06-02 12:00")
    bot = make_bot(start, vitality={"enabled": False})
    bot.append(start, MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="recent"))

    bot.settings.loaded = loaded(rotation={"retention_days": 0.5, "interval_hours": 1})
    assert await bot.tick(start + HOUR) == start + 2 * HOUR
    assert bot.rotations() == []
    await bot.tick(start + 13 * HOUR)

    assert [r.ts for r in bot.rotations()] == [start + 13 * HOUR]


# -- the loop and the projection ---------------------------------------------


@pytest.mark.anyio
async def test_run_plans_what_is_due(make_bot: Any) -> None:
    bot = make_bot(at("2025-06-02 09:00"))
    bot.folded.watch()
    changed = bot.folded.waker()

    async with anyio.create_task_group() as tg:
        tg.start_soon(bot.scheduler.run)
        with anyio.fail_after(5):
            while not bot.check_ins():
                await changed.wait(1.0)
        tg.cancel_scope.cancel()

    assert len(bot.check_ins()) == 1


def test_the_projection_keeps_a_day_and_more_of_replies_and_the_last_runs() -> None:
    def rec(seq: int, ts: float, event: AnyEvent) -> Recorded:
        return Recorded(seq, ts, event)

    checkin = ReplyPlanned(chat=OWNER_JID, reply_id="V", purpose="vitality", text="hi")
    rotation = Compacted(reason="rotation", before=1, removed=1)
    forget = Compacted(reason="forget", before=1, removed=1)
    state = fold(
        [
            rec(1, 0.0, reply(1)),
            rec(2, 10.0, checkin),
            rec(3, 20.0, rotation),
            rec(4, 30.0, forget),
            rec(5, DAY + 5.0, reply(2)),
            rec(6, schedule.KEEP + 6.0, reply(3)),
        ]
    ).schedule

    # Enough for the longest local day (25 h when clocks go back), not much more.
    assert schedule.KEEP > 25 * 3600
    assert state.replies == [DAY + 5.0, schedule.KEEP + 6.0]
    assert (state.last_vitality, state.last_rotation) == (10.0, 20.0)


@pytest.mark.parametrize(
    ("last_rotation", "log_began", "started", "since"),
    [
        (500.0, 100.0, 900.0, 500.0),  # the last rotation, whatever else
        (0.0, 100.0, 900.0, 100.0),  # none yet: when the log began, not this start
        (0.0, None, 900.0, 900.0),  # an empty log: this start
        (0.0, 950.0, 900.0, 900.0),  # events after the start (the clock): the start
    ],
)
def test_the_rotation_counts_from_the_last_one_else_from_the_log_s_beginning(
    last_rotation: float, log_began: float | None, started: float, since: float
) -> None:
    assert timetable.rotation_since(last_rotation, log_began, started) == since


def test_the_projection_counts_an_answer_in_parts_once() -> None:
    """The check-in's and /status's reply counts are of answers, however many messages."""
    parts = [
        ReplyPlanned(chat=ALICE, reply_id=f"P{n}", purpose="reply", text="x", part=n, parts=3)
        for n in (1, 2, 3)
    ]
    events = [reply(1), *parts, reply(2)]
    state = fold([Recorded(n, 100.0 + n, e) for n, e in enumerate(events, 1)]).schedule
    assert schedule.replies_since(state, 0.0) == 3
    assert schedule.replies_since(state, 102.0) == 2  # the split answer and the last


def test_a_start_tells_the_owner_at_most_once_per_quiet_time() -> None:
    startup = ReplyPlanned(chat=OWNER_JID, reply_id="S", purpose="startup", text="started")
    last = fold([Recorded(1, 100.0, reply(1)), Recorded(2, 200.0, startup)]).schedule.last_startup
    quiet = timetable.STARTUP_QUIET

    assert last == 200.0
    assert timetable.startup_due(0.0, 200.0)  # never said
    assert not timetable.startup_due(last, last + 5)  # a crash loop's next start
    assert not timetable.startup_due(last, last + quiet - 1)
    assert timetable.startup_due(last, last + quiet)
    assert timetable.startup_due(last, last - HOUR)  # the clock was set back


@pytest.mark.anyio
async def test_a_check_in_due_at_start_waits_for_the_transport_to_report(make_bot: Any) -> None:
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation={"interval_hours": 1000})
    bot.append(nine, TransportStatus(state="stopped"))  # the last run's clean stop
    bot.append(nine, TransportStatus(state="connecting", detail="daemon started"))

    wake = await bot.tick(nine)
    assert bot.check_ins() == []
    assert nine < wake <= nine + timetable.TRANSPORT_GRACE

    bot.append(nine + 2, TransportStatus(state="connected"))
    await bot.tick(nine + 2)
    [check_in] = bot.check_ins()
    assert check_in.text.endswith("connection: connected")


@pytest.mark.anyio
async def test_a_transport_that_does_not_report_holds_the_check_in_a_minute_at_most(
    make_bot: Any,
) -> None:
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation={"interval_hours": 1000})
    bot.append(nine, TransportStatus(state="connecting", detail="daemon started"))

    await bot.tick(nine + timetable.TRANSPORT_GRACE - 1)
    assert bot.check_ins() == []
    await bot.tick(nine + timetable.TRANSPORT_GRACE)
    [check_in] = bot.check_ins()
    assert check_in.text.endswith("connection: connecting")


@pytest.mark.anyio
async def test_the_loop_plans_the_held_check_in_as_soon_as_the_transport_reports(
    make_bot: Any,
) -> None:
    bot = make_bot(at("2025-06-02 09:00"))
    bot.append(bot.clock.now, TransportStatus(state="connecting", detail="daemon started"))
    bot.folded.watch()
    changed = bot.folded.waker()

    async with anyio.create_task_group() as tg:
        tg.start_soon(bot.scheduler.run)
        await bot.folded.append(TransportStatus(state="connected"))
        with anyio.fail_after(5):  # the clock stands still: only the commit can wake it
            while not bot.check_ins():
                await changed.wait(1.0)
        tg.cancel_scope.cancel()

    assert bot.check_ins()[0].text.endswith("connection: connected")


def new_id() -> str:
    return uuid.uuid4().hex


# -- reminders ---------------------------------------------------------------


def set_reminder(rid: str, due: float, chat: str = ALICE) -> ReminderSet:
    return ReminderSet(chat=chat, reminder_id=rid, at=due, text=f"remember {rid}")


def fired(bot: Bot) -> list[ReminderFired]:
    return [r.event for r in bot.records() if isinstance(r.event, ReminderFired)]


@pytest.mark.anyio
async def test_a_reminder_set_after_a_pass_wakes_the_scheduler_at_its_time_once(
    make_bot: Any,
) -> None:
    start = at("2025-06-02 12:00")
    bot = make_bot(start, vitality={"enabled": False})
    assert await bot.scheduler._step() == start + DAY  # the rotation, nothing else due
    bot.append(start + 1, set_reminder("R1", start + 60))

    bot.clock.now = start + 2
    assert await bot.scheduler._step() == start + 60  # woken by the commit: sleeps till then
    bot.clock.now = start + 60
    assert await bot.scheduler._step() == start + DAY
    assert await bot.scheduler._step() == start + DAY

    (record,) = fired(bot)
    planned = [r.event for r in bot.records() if isinstance(r.event, ReplyPlanned)]
    assert [(p.chat, p.purpose, p.text, p.reply_id) for p in planned] == [
        (ALICE, "reminder", "remember R1", record.reply_id)
    ]
    bot.restart(start + 120)  # a new daemon plans it no more
    await bot.scheduler._step()
    assert len(fired(bot)) == 1


@pytest.mark.anyio
async def test_a_failing_reminders_pass_waits_for_the_poll_instead_of_spinning(
    make_bot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = at("2025-06-02 12:00")
    bot = make_bot(start, vitality={"enabled": False})
    await bot.scheduler._step()
    bot.append(start, set_reminder("R1", start + 10))
    bot.clock.now = start + 10

    async def broken(*events: AnyEvent, **kw: Any) -> list[Recorded]:
        raise OSError("disk full")

    monkeypatch.setattr(bot.folded, "append", broken)
    assert await bot.scheduler._step() == start + 10 + 0.05  # polling.interval_seconds
    monkeypatch.undo()
    bot.clock.now = start + 10.05
    await bot.scheduler._step()
    assert len(fired(bot)) == 1


@pytest.mark.anyio
async def test_a_rotation_keeps_pending_reminders_and_live_facts_however_old(
    make_bot: Any,
) -> None:
    start = at("2025-06-02 12:00")
    bot = make_bot(start, vitality={"enabled": False})
    bot.append(start - 3 * DAY, set_reminder("RDONE", start - 2 * DAY))
    bot.append(start - 2 * DAY, ReminderFired(chat=ALICE, reminder_id="RDONE", reply_id="P0"))
    bot.append(start - 3 * DAY, set_reminder("RLATER", start + 300 * DAY))
    bot.append(start - 3 * DAY, FactRemembered(chat=ALICE, fact="likes tea"))

    await bot.tick(start + DAY)

    (marker,) = bot.rotations()
    assert isinstance(marker.event, Compacted)
    assert marker.event.by_type == {"ReminderFired": 1, "ReminderSet": 1}
    left = [r.event for r in bot.records()]
    assert set_reminder("RLATER", start + 300 * DAY) in left
    assert [r.reminder_id for r in reminders.every(bot.folded.view.reminders)] == ["RLATER"]
    assert FactRemembered(chat=ALICE, fact="likes tea") in left


@pytest.mark.anyio
async def test_months_of_group_members_coming_and_going_keep_no_more_ties_than_a_month(
    make_bot: Any,
) -> None:
    """A group member writing by LID with their number ties two ids; a monitored person's
    tie stays however old (their LID alone must still find their chat), anyone else's
    goes with the retention: kept, they would pile up for every member ever seen."""
    start = at("2025-06-02 12:00")
    group = "120363000000000001@g.us"
    entities = [
        {"type": "user", "phone": "491701111111", "name": "Alice"},
        {"type": "group", "jid": group, "trigger": {"mode": "keyword", "keywords": ["bot"]}},
    ]
    bot = make_bot(
        start,
        monitored_entities=entities,
        vitality={"enabled": False},
        rotation={"retention_days": 30, "interval_hours": 24},
    )
    alice_lid = "111111111111111@lid"
    bot.append(start, tie(ALICE, alice_lid, ALICE, "A0"))  # once, long ago
    ties = {}
    for day in range(1, 121):
        now = start + day * DAY
        member = f"4917{30_000_000 + day:08d}@s.whatsapp.net"  # a new one every day
        bot.append(now, tie(group, f"{200_000_000_000_000 + day}@lid", member, f"G{day}"))
        bot.append(now, tie(group, alice_lid, ALICE, f"AG{day}"))  # Alice in the group
        await bot.tick(now + 60)
        if day in (60, 120):
            kept = [r for r in bot.records() if not isinstance(r.event, Compacted)]
            ties[day] = (len(bot.folded.view.aliases.links), len(kept))

    assert ties[120] == ties[60]  # a month of members' ties (and their messages), no more
    assert aliases.canonical(bot.folded.view.aliases, alice_lid) == ALICE


def tie(chat: str, lid: str, phone: str, msg_id: str) -> MessageReceived:
    """A message by ``lid`` that names the sender's number too."""
    return MessageReceived(
        chat=chat,
        msg_id=msg_id,
        sender=lid,
        sender_alt=phone,
        text="hi",
        is_group=chat.endswith("@g.us"),
    )
