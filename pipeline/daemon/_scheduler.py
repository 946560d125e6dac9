"""The scheduler: the check-in to the owner's chat, the periodic rotation, and reminders.

Every decision reads the config in force, so edits to ``vitality`` and
``rotation`` apply without a restart. With ``rotation.drop_expired_sessions``
each rotation also removes the texts of ended sessions (``retention.expiry``) and
saves a snapshot at once, replacing the one that still held them.
What already ran comes from the log (``projections.schedule``), so a restart
neither repeats a check-in nor rotates early; ``_timetable`` has the rules.
Two facts are also kept in memory, because the log cannot hold them:

- the last rotation attempt: an empty rotation appends nothing, so without it
  the daemon would rescan the log at every wake-up. The log's newest
  ``Compacted(rotation)`` (or, when there is none, its oldest event) stays
  the durable record, so a restart may rescan once, never rotate early, and
  restarts more often than ``rotation.interval_hours`` never put it off.
- the last check-in planned, until the log has it (rotation keeps the newest
  check-in and what marked it sent, ``projections.retention``).

A check-in due at start waits (``timetable.TRANSPORT_GRACE`` at most) until
the transport has reported, since the daemon's start records ``connecting``.
The scheduler is woken by commits, so it plans the check-in the moment the
report is in, and runs its jobs as soon as a reloaded config makes one due;
between those, a wake-up costs a comparison.

Reminders fall due by the clock too: the earliest pending one's time
(``projections.reminders.next_due``) is one more due time, so a new reminder
set for a minute from now wakes the scheduler then, and a pass reads only the
reminders due (``_reminding``). Firing them is a commit like the check-in's:
the messages are planned with ``ReminderFired`` and the outbox sends them.
A rotation keeps every pending reminder (``reminders.kept``) and every live
fact (``facts.kept``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio
import anyio.to_thread
from croniter import CroniterBadDateError

from events.model import Compacted, ReplyPlanned
from events.units import DAY
from pipeline.config import LoadedConfig
from pipeline.daemon import _reminding as reminding
from pipeline.daemon import _timetable as timetable
from pipeline.daemon._dispatch import Dispatcher
from pipeline.daemon._failures import Failures
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._replies import Ids, owner_note
from pipeline.daemon._settings import Settings
from pipeline.logs import get_logger
from pipeline.media import MediaStore
from projections import (
    aliases,
    budget,
    configs,
    connection,
    facts,
    pauses,
    reminders,
    retention,
    schedule,
)

log = get_logger("wabot.scheduler")


class Scheduler:
    def __init__(
        self,
        folded: FoldedLog,
        settings: Settings,
        ids: Ids,
        *,
        clock: Callable[[], float],
        media: MediaStore | None = None,
    ) -> None:
        """``ids``: the check-in's; ``media``: the attachments a rotation sweeps after
        the events naming them went."""
        self.folded = folded
        self.media = media
        self.settings = settings
        self.ids = ids
        self.clock = clock
        self.started = clock()
        self._checked_in = 0.0
        self._rotation_tried = 0.0
        # The oldest event's time (None: the log was empty), read once, while the
        # log holds no rotation yet.
        self._log_began: float | None = None
        self._began_read = False
        self._failures = Failures(log, "scheduled_job_failed")
        self._impossible_cron: str | None = None  # reported once, not at every wake-up
        self._awaiting_transport = False  # a check-in is due, the transport not heard from
        self._wake = 0.0  # when a job falls due next
        self._reminders_retry = 0.0  # after a failed reminders pass: not before then
        self._seen: LoadedConfig | None = None  # the config the jobs last ran under
        # Its jobs fall due by the clock; commits matter only for what they have run,
        # a reloaded config, the transport's first report and the reminders set.
        reads = (
            schedule.PROJECTION,
            connection.PROJECTION,
            configs.PROJECTION,
            reminders.PROJECTION,
        )
        self._dispatch = Dispatcher(
            folded, settings, log, "scheduler_pass_failed", clock=clock, reads=reads
        )

    async def run(self) -> None:
        """Run jobs as they fall due, as a config reload changes them, as the transport reports."""
        await self._dispatch.repeat(self._step)

    async def _step(self) -> float:
        now = self.clock()
        if now >= self._wake or self.settings.loaded is not self._seen or self._awaiting_transport:
            self._seen = self.settings.loaded
            # Should the pass fail: again at the next poll.
            self._wake = now + self.settings.app.polling.interval_seconds
            self._wake = await self.run_due(now)
        elif now >= self._reminder_due():
            with self._failures.guard(job="reminders"):
                await self._reminders(now)
        return min(self._wake, self._reminder_due())

    def _reminder_due(self) -> float:
        """When the earliest pending reminder is due (after a failed pass, the poll
        after it: a reminder that cannot be planned must not spin the loop)."""
        due = reminders.next_due(self.folded.view.reminders)
        return math.inf if due is None else max(due, self._reminders_retry)

    async def run_due(self, now: float) -> float:
        """Run every job due at ``now``; returns when the next one falls due (inf: none)."""
        wakes: list[float] = []
        for job in (self._vitality, self._rotation, self._reminders):
            # A full disk or a bug must not stop the daemon; the job is
            # tried again at the next wake-up.
            with self._failures.guard(job=job.__name__.strip("_")):
                wakes.append(await job(now))
        return min(wakes, default=math.inf)

    async def _vitality(self, now: float) -> float:
        self._awaiting_transport = False
        vitality = self.settings.app.vitality
        if not vitality.enabled:
            return math.inf
        done = max(self.folded.view.schedule.last_vitality, self._checked_in)
        try:
            due = timetable.vitality_due(vitality, done, now)
        except CroniterBadDateError:
            if self._impossible_cron != vitality.cron_expression:
                self._impossible_cron = vitality.cron_expression
                log.warning("vitality_never_due", cron=vitality.cron_expression)
            return math.inf
        if due > now:
            return due
        grace_ends = self.started + timetable.TRANSPORT_GRACE
        state = self.folded.view.connection.state
        self._awaiting_transport = state == "connecting" and now < grace_ends
        if self._awaiting_transport:
            return grace_ends
        await self.folded.append(self._check_in(vitality.message, now))
        self._checked_in = now
        log.info("vitality_planned", scheduled_for=due)
        return timetable.vitality_due(vitality, now, now)

    async def _reminders(self, now: float) -> float:
        """Fire every reminder due at ``now`` (or record it missed); returns when the
        next one falls due."""
        self._reminders_retry = now + self.settings.app.polling.interval_seconds
        while True:
            fired = reminding.due(self.folded.view.reminders, self.settings.app, now, self.ids)
            if not fired.events:
                break
            await self.folded.append(*fired.events)
            log.info(
                "reminders_fired", fired=fired.fired, missed=fired.missed, dropped=fired.dropped
            )
            if not fired.more:
                break
        self._reminders_retry = 0.0
        return self._reminder_due()

    def _check_in(self, message: str, now: float) -> ReplyPlanned:
        view = self.folded.view
        replies = schedule.replies_since(view.schedule, now - DAY)
        spent = budget.spent_since(view.budget, now - DAY)
        connection = view.connection.state or "unknown"
        status = (
            f"— {replies} {'reply' if replies == 1 else 'replies'}, ${spent:.2f} spent "
            f"in the last 24 h, connection: {connection}"
        )
        text = f"{message}\n{status}"
        return owner_note(self.settings.app.owner_jid, "vitality", text, self.ids)

    async def _rotation(self, now: float) -> float:
        rotation_cfg = self.settings.app.rotation
        last_rotation = self.folded.view.schedule.last_rotation
        if not last_rotation and not self._began_read:
            self._log_began = await anyio.to_thread.run_sync(self._oldest)
            self._began_read = True
        last = timetable.rotation_since(last_rotation, self._log_began, self.started)
        due = timetable.rotation_due(rotation_cfg, max(last, self._rotation_tried))
        if due > now:
            return due
        self._rotation_tried = now
        # The rotation deletes in short chunks on a worker thread: the loop keeps answering.
        view = self.folded.view
        # What ties the ids of a person served, and the owner's pauses in force, stay.
        keep = (
            aliases.teachers(view.aliases, self.settings.app.people)
            | pauses.kept(view.pauses, now)
            | reminders.kept(view.reminders)
            | facts.kept(view.facts)
        )
        selection = retention.rotation(view.retention, rotation_cfg.retention_days, now, keep)
        marker = await anyio.to_thread.run_sync(self.folded.log.compact, "rotation", selection)
        self.folded.catch_up()  # each projection drops what the marker says went
        expired = rotation_cfg.drop_expired_sessions and await self._drop_expired(now)
        if self.media is not None:
            swept = await anyio.to_thread.run_sync(self._sweep, self.media)
            if swept:
                log.info("media_swept", removed=swept)
        if marker is None:
            log.info("rotation_empty", retention_days=rotation_cfg.retention_days)
        else:
            removed = marker.event.removed if isinstance(marker.event, Compacted) else 0
            log.info("rotated", removed=removed, retention_days=rotation_cfg.retention_days)
        if marker is not None or expired:
            # The log dropped the snapshot folded before: it held what went.
            await self.folded.snapshot()
        return timetable.rotation_due(rotation_cfg, now)

    async def _drop_expired(self, now: float) -> bool:
        """Remove the texts of the sessions that ended (``Compacted``, reason ``expiry``);
        whether any went."""
        app, view = self.settings.app, self.folded.view
        selection = retention.expiry(
            view.sessions,
            now,
            app.session_memory.mode,
            app.session_memory.ttl_minutes,
            app.vitality.timezone,
            aliases.teachers(view.aliases),
        )
        if selection is None:
            return False
        marker = await anyio.to_thread.run_sync(self.folded.log.compact, "expiry", selection)
        self.folded.catch_up()
        if marker is not None and isinstance(marker.event, Compacted):
            log.info("expired_sessions_dropped", removed=marker.event.removed)
        return marker is not None

    def _oldest(self) -> float | None:
        """When the log's oldest event was recorded (None: the log is empty)."""
        first = next(iter(self.folded.log.read(limit=1)), None)
        return None if first is None else first.ts

    def _sweep(self, media: MediaStore) -> int:
        """Delete the attachments no event in the log refers to any more."""
        return media.sweep(self.folded.log.media())
