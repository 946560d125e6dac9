"""The running bot: one anyio task group of intake, agent, sender, scheduler and config watcher.

Start-up records ``ConfigLoaded`` and plans the startup message; shutdown on
SIGINT/SIGTERM starts no new turns, lets in-flight chats finish within a grace
period (still recording what arrives), then disconnects and closes the log.
All state lives in the log, so ``kill -9`` at any point loses nothing: the
next start folds the projections and carries on.
"""

from __future__ import annotations

import hashlib
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from events.backends import open_log
from events.model import ConfigLoaded, ReplyPlanned, TransportStatus
from events.protocol import Keyed, LogError
from pipeline.agent import Agent
from pipeline.config import ConfigError, LoadedConfig, load_config
from pipeline.decide import entity_for
from pipeline.llm import LlmClient
from pipeline.logs import get_logger
from pipeline.scheduler import Scheduler
from pipeline.sender import Sender
from pipeline.store import Store
from pipeline.transport.base import Inbound, Transport, TransportError
from projections.runner import Runner

log = get_logger("wabot.daemon")

GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class RunOptions:
    config_path: Path
    env_file: Path | None
    store: Path


class Daemon:
    """Holds what the tasks share: the config in force, the LLM client, the store."""

    def __init__(
        self,
        options: RunOptions,
        loaded: LoadedConfig,
        transport: Transport,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.config = loaded
        self.transport = transport
        self.clock = clock
        self.dropped = 0  # messages from unmonitored chats: counted, never stored
        self._llm: LlmClient | None = None
        self._llm_settings: object = None
        self._retired: list[LlmClient] = []  # replaced clients, closed at shutdown
        self._bad_hash = ""
        self._transport_failure: TransportError | None = None
        log_ = open_log(options.store, synchronous=loaded.config.store.synchronous, clock=clock)
        self.store = Store(log_, Runner.start(log_))
        self.sender = Sender(self.store, transport, clock=clock)
        self.agent = Agent(self.store, self, clock=clock)
        self.scheduler = Scheduler(self.store, self, clock=clock)

    # -- what the agent and scheduler need (pipeline.deps) ----------------

    def llm(self) -> LlmClient:
        """The client for the config in force; a reload that leaves the LLM alone keeps it."""
        llm = self.config.config.llm
        key = self.config.secrets.api_key
        settings = (llm.provider, llm.base_url, key, llm.timeout_seconds, llm.max_retries)
        if self._llm is None or settings != self._llm_settings:
            if self._llm is not None:
                self._retired.append(self._llm)  # a call may still be using it
            self._llm = LlmClient(
                provider=llm.provider,
                base_url=llm.base_url,
                api_key=key,
                timeout=llm.timeout_seconds,
                max_retries=llm.max_retries,
            )
            self._llm_settings = settings
        return self._llm

    def new_wa_id(self) -> str | None:
        return self.transport.new_message_id()

    def wake_sender(self) -> None:
        self.sender.wake()

    # -- tasks -----------------------------------------------------------

    async def serve(self) -> None:
        self.store.watch()
        await self.store.append(self._config_loaded(self.config), self._startup_message())
        log.info(
            "started",
            transport=self.transport.name,
            config_hash=self.config.hash[:12],
            entities=len(self.config.config.monitored_entities),
            store=str(self.options.store),
        )
        try:
            async with anyio.create_task_group() as tg:
                waiting = anyio.CancelScope()
                tg.start_soon(self._intake, waiting)
                tg.start_soon(self.agent.run)
                tg.start_soon(self.sender.run, self._poll)
                tg.start_soon(self._watch_config)
                tg.start_soon(self.scheduler.run)
                with waiting:
                    await self._until_signal()
                # No new turns, but intake goes on through the grace period:
                # WhatsApp has acknowledged what it hands over, so whatever
                # arrives is recorded now and answered after the restart.
                self.agent.stopping = True
                with anyio.move_on_after(GRACE_SECONDS):
                    await self.agent.idle()
                    await self.sender.send_due()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                for client in [*self._retired, *([self._llm] if self._llm else [])]:
                    await client.aclose()
                await self.transport.aclose()
            self.store.close()
            log.info("stopped", dropped_unmonitored=self.dropped)
        if self._transport_failure is not None:
            raise self._transport_failure

    def _poll(self) -> float:
        return self.config.config.polling.interval_seconds

    async def _until_signal(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("stopping", signal=signal.Signals(signum).name)
                return

    async def _intake(self, waiting: anyio.CancelScope) -> None:
        try:
            await self.transport.run(self._deliver, self._status)
        except TransportError as exc:
            # The transport cannot go on (logged out, pairing timed out): stop as on a signal.
            log.error("transport_failed", error=str(exc))  # noqa: TRY400
            self._transport_failure = exc
            waiting.cancel()

    async def _deliver(self, inbound: Inbound) -> None:
        event = inbound.event
        if entity_for(self.config.config, event.chat, event.sender_alt, event.is_group) is None:
            self.dropped += 1
            return
        try:
            await self.store.append(Keyed(event, f"{event.chat}/{event.msg_id}"))
        except LogError as exc:
            # One line, not a traceback: the cause (disk full, locked) is in the message.
            log.error(  # noqa: TRY400
                "message_not_recorded", chat=event.chat, msg_id=event.msg_id, error=str(exc)
            )

    async def _status(self, status: TransportStatus) -> None:
        log.info("transport", state=status.state, detail=status.detail)
        await self.store.append(status)

    async def _watch_config(self) -> None:
        path = self.options.config_path
        while True:
            await anyio.sleep(self._poll())
            try:
                digest = hashlib.sha256(await anyio.Path(path).read_bytes()).hexdigest()
            except OSError as exc:
                digest = f"unreadable:{exc.errno}"
            if digest in (self.config.hash, self._bad_hash):
                continue
            try:
                loaded = load_config(path, env_file=self.options.env_file)
            except ConfigError as exc:
                self._bad_hash = digest
                log.warning("config_rejected", error=str(exc), kept=self.config.hash[:12])
                continue
            await self.store.append(self._config_loaded(loaded))
            self.config = loaded
            log.info("config_reloaded", config_hash=loaded.hash[:12])

    def _config_loaded(self, loaded: LoadedConfig) -> ConfigLoaded:
        return ConfigLoaded(hash=loaded.hash, config=loaded.public_dict(), path=loaded.path)

    def _startup_message(self) -> ReplyPlanned:
        cfg = self.config.config
        return ReplyPlanned(
            chat=cfg.owner_jid,
            reply_id=uuid.uuid4().hex,
            purpose="startup",
            text=(
                f"wabot started: config {self.config.hash[:12]}, "
                f"{len(cfg.monitored_entities)} monitored chats, transport {self.transport.name}."
            ),
            wa_id=self.transport.new_message_id(),
        )
