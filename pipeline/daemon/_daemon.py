"""The running bot: one anyio task group of intake, agent, sender, scheduler and config watch.

Start-up records ``ConfigLoaded`` and the connection as ``connecting``, and plans
the startup message (at most one per ``STARTUP_QUIET``); shutdown on
SIGINT/SIGTERM starts no new turns, lets in-flight chats finish within a grace
period (still recording what arrives), then disconnects, records the
connection as ``stopped`` and closes the log.
All state lives in the log, so ``kill -9`` at any point loses nothing: the
next start folds the projections and carries on.
"""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import anyio

from events.model import ReplyPlanned, TransportStatus
from events.protocol import LogError, LogWriter
from pipeline.daemon import _deadline
from pipeline.daemon import _timetable as timetable
from pipeline.daemon._agent import Agent
from pipeline.daemon._alerter import Alerter
from pipeline.daemon._attachments import missing_key
from pipeline.daemon._exits import EXIT_NEEDS_OWNER
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._intake import Intake
from pipeline.daemon._liveness import Liveness
from pipeline.daemon._media import MediaStep
from pipeline.daemon._memory import return_large_blocks
from pipeline.daemon._replies import Ids, owner_note
from pipeline.daemon._scheduler import Scheduler
from pipeline.daemon._sender import Sender
from pipeline.daemon._settings import Settings, config_loaded
from pipeline.daemon._speaker import Speaker
from pipeline.daemon._voice import missing_speech_key
from pipeline.llm import LlmPool
from pipeline.logs import get_logger
from pipeline.media import MediaStore
from pipeline.transport import Transport, TransportError

log = get_logger("wabot.daemon")

GRACE_SECONDS = 10.0
# Something the command line runs beside the workers (the web console), given the liveness.
Service = Callable[[Liveness], Awaitable[None]]


class Daemon:
    """Wires the workers to the log, the config in force, the LLM and the transport."""

    def __init__(
        self,
        log_: LogWriter,
        settings: Settings,
        transport: Transport,
        *,
        store: Path,
        clock: Callable[[], float] = time.time,
        services: Sequence[Service] = (),
        media: MediaStore | None = None,
    ) -> None:
        """``media``: where attachments go (default ``STORE/media``)."""
        self.settings = settings
        self.transport = transport
        self.store = store
        self.clock = clock
        self.folded = FoldedLog(log_)
        self.media = media if media is not None else MediaStore.of(store)
        self.llm = LlmPool(images=self.media.data_url)
        self.intake = Intake(self.folded, settings, self.media, clock=clock)
        self.ids = Ids(lambda: uuid.uuid4().hex, transport.new_message_id)
        attachments = MediaStep(self.folded, self.llm.transcriber, self.media, self.ids)
        self.agent = Agent(
            self.folded, settings, self.llm.client, transport, clock=clock, media=attachments
        )
        speaker = Speaker(self.folded, self.llm.synthesizer, self.media)
        self.sender = Sender(
            self.folded, transport, settings, clock=clock, speaker=speaker, ids=self.ids
        )
        self.scheduler = Scheduler(self.folded, settings, self.ids, clock=clock, media=self.media)
        self.alerter = Alerter(self.folded, settings, self.ids, clock=clock)
        self.liveness = Liveness()
        self._services = tuple(services)
        self._transport_failure: TransportError | None = None

    async def serve(self) -> None:
        return_large_blocks()
        self.folded.watch()
        await self._begin()
        try:
            async with anyio.create_task_group() as tg:
                waiting = anyio.CancelScope()
                tg.start_soon(self.folded.keep_current, self._poll_interval)
                tg.start_soon(self.llm.run)  # closes the LLM clients a reload replaces
                tg.start_soon(self._receive, waiting)
                tg.start_soon(self.intake.run)
                tg.start_soon(self.intake.receipts.run)
                tg.start_soon(self.liveness.run_agent, self.agent.run)
                tg.start_soon(self.sender.run)
                tg.start_soon(self.settings.watch, self.folded)
                tg.start_soon(self.scheduler.run)
                tg.start_soon(self.alerter.run)
                tg.start_soon(self.liveness.tell_systemd)
                for service in self._services:
                    tg.start_soon(self._run_service, service)
                with waiting:
                    await _until_signal()
                await self._wind_down()
                tg.cancel_scope.cancel()
        finally:
            await self._close()
        if self._transport_failure is not None:
            raise self._transport_failure

    async def _begin(self) -> None:
        """Record the start (the config, the connection not yet reported) and say it."""
        loaded = self.settings.loaded
        # Until the transport reports, the connection is not what the last run
        # left in the log ("stopped", or "connected" before a kill -9).
        starting = TransportStatus(state="connecting", detail="daemon started")
        # A fetch the last run left unfinished will not finish: its source went with it.
        interrupted = self.intake.interrupted()
        await self.folded.append(
            config_loaded(loaded), starting, *interrupted, *self._startup_message()
        )
        log.info(
            "started",
            transport=self.transport.name,
            config_hash=loaded.hash[:12],
            entities=len(self.settings.app.monitored_entities),
            store=str(self.store),
        )
        if missing_key(loaded):
            log.warning(
                "transcription_key_missing",
                hint="voice notes cannot be transcribed: set TRANSCRIPTION_API_KEY or LLM_API_KEY",
            )
        if missing_speech_key(loaded):
            log.warning(
                "speech_key_missing",
                hint="replies cannot be spoken (they go as text): set TTS_API_KEY or LLM_API_KEY",
            )

    async def _wind_down(self) -> None:
        """A signal came: no new turns, but what is under way finishes in the grace period."""
        self.liveness.stop()
        failed = self._transport_failure is not None
        _deadline.arm(_deadline.STOP_DEADLINE, EXIT_NEEDS_OWNER if failed else 0)
        # No new turns, but intake goes on through the grace period:
        # WhatsApp has acknowledged what it hands over, so whatever
        # arrives is recorded now and answered after the restart.
        self.agent.stopping = True
        with anyio.move_on_after(GRACE_SECONDS):
            await self.alerter.send_due()  # e.g. the logout that stops us
            await self.agent.idle()
            await self.intake.fetched()  # an attachment on its way, recorded now
            # Owed replies stay in the log for the next start: waiting for
            # a reconnect here would only hold the stop up.
            if self.folded.view.connection.state == "connected":
                await self.sender.send_due()

    async def _close(self) -> None:
        """Close the clients, and say in the log that the bot stopped."""
        with anyio.CancelScope(shield=True):
            await self.llm.aclose()
            await self.transport.aclose()
        # Said in the log, so nothing reads "connected" off a stopped bot.
        with contextlib.suppress(LogError):
            self.folded.fold(
                self.folded.log.append(TransportStatus(state="stopped", detail="daemon stopped"))
            )
        self.folded.close()
        log.info("stopped", dropped_unmonitored=self.intake.dropped)

    def _poll_interval(self) -> float:
        return self.settings.app.polling.interval_seconds

    async def _receive(self, waiting: anyio.CancelScope) -> None:
        try:
            await self.transport.run(self.intake.deliver, self.intake.status)
        except TransportError as exc:
            # The transport cannot go on (logged out, pairing timed out): stop as on a signal.
            log.error("transport_failed", error=str(exc))  # noqa: TRY400
            self._transport_failure = exc
            waiting.cancel()

    async def _run_service(self, service: Service) -> None:
        try:
            await service(self.liveness)
        except Exception:
            # A side service (the console) failing must not stop the bot.
            log.exception("service_failed")

    def _startup_message(self) -> list[ReplyPlanned]:
        """The owner's note that the bot is up; none so soon after the last one."""
        last, now = self.folded.view.schedule.last_startup, self.clock()
        if not timetable.startup_due(last, now):
            log.info("startup_message_skipped", minutes_since_last=round((now - last) / 60, 1))
            return []
        app = self.settings.app
        text = (
            f"wabot started: config {self.settings.loaded.hash[:12]}, "
            f"{len(app.monitored_entities)} monitored chats, transport {self.transport.name}."
        )
        return [owner_note(app.owner_jid, "startup", text, self.ids)]


async def _until_signal() -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("stopping", signal=signal.Signals(signum).name)
            return
