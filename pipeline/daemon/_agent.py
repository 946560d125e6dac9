"""The agent: turns queued messages into decisions, LLM calls and planned replies.

Woken by every commit (the poll interval is only a fallback), it works each
chat in log order, different chats concurrently up to ``max_concurrent_chats``.
Every decision is an event; what it knows comes from the projections, so a
restart resumes exactly where the log says it stopped: a debounce window is
recomputed from logged times, and a call that was requested but never answered
is requested again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

import anyio
import msgspec

from events.model import (
    AnyEvent,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MessageSkipped,
    ReplyPlanned,
    SessionStarted,
    StartReason,
)
from pipeline.config import Entity, LoadedConfig, Skip, skip_words
from pipeline.daemon import _decide as decide
from pipeline.daemon import _outreach as outreach
from pipeline.daemon._failures import Failures
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._media import MediaStep
from pipeline.daemon._presence import Shows, typing
from pipeline.daemon._replies import Ids, owner_note, reply_parts
from pipeline.daemon._settings import Settings
from pipeline.llm import (
    LlmClient,
    LlmError,
    Prompt,
    compose,
    debug_note,
    format_reply,
    system_text,
    user_turn,
)
from pipeline.logs import get_logger
from projections import addresses, aliases, identity, queue, sessions
from projections.queue import Item

log = get_logger("wabot.agent")

Said = tuple[MessageSkipped, str]  # a skip and why, in words

RESET_REPLY = "New conversation started: I have forgotten what we said before."


class Transport(Shows, Protocol):
    """What the agent needs of the transport: message ids and the typing indicator."""

    def new_message_id(self) -> str | None: ...


class Agent:
    def __init__(
        self,
        folded: FoldedLog,
        settings: Settings,
        llm: Callable[[LoadedConfig], LlmClient],
        transport: Transport,
        *,
        clock: Callable[[], float],
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        media: MediaStep | None = None,
    ) -> None:
        """``media`` readies attachments for a turn; without it they go as they are."""
        self.folded = folded
        self.media = media
        self.settings = settings
        self.llm = llm
        self.transport = transport
        self.new_wa_id = transport.new_message_id
        self.clock = clock
        self.new_id = new_id
        self.stopping = False
        self._busy: set[str] = set()
        self._deadlines: dict[str, float] = {}
        # Chats whose next burst waits for an attachment being fetched: looked at
        # again once the queue says it came (a commit wakes the dispatcher).
        self._fetching: set[str] = set()
        # The budget: chats whose call is decided (it may not be in the log yet),
        # and chats waiting for the costs of calls in flight.
        self._reserving: set[str] = set()
        self._held: set[str] = set()
        self._idle = anyio.Event()
        # Commits wake the dispatcher, and so does every worker that ends: a
        # worker may have just set the debounce deadline the next pass sleeps to.
        self._waker = folded.waker()
        self._limiter = anyio.CapacityLimiter(settings.app.polling.max_concurrent_chats)
        self._pass_failures = Failures(log, "agent_pass_failed")
        self._chat_failures = Failures(log, "chat_work_failed")

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            while not self.stopping:
                now = self.clock()
                # Whatever broke (a full disk, a bug), the daemon stays up
                # and tries again at the next wake-up.
                with self._pass_failures.guard():
                    self._dispatch(tg, now)
                await self._waker.wait(self._sleep_for(now))
            await self.idle()

    def _dispatch(self, tg: anyio.abc.TaskGroup, now: float) -> None:
        """Start a worker for every chat with work that is due and not being worked on."""
        self._limiter.total_tokens = self.settings.app.polling.max_concurrent_chats
        view = self.folded.view.queue
        for chat in queue.chats_with_work(view):
            if chat in self._fetching:
                if decide.fetching(decide.burst(queue.pending(view, chat))):
                    continue
                self._fetching.discard(chat)
            if chat not in self._busy and self._deadlines.get(chat, 0.0) <= now:
                self._busy.add(chat)
                tg.start_soon(self._work_chat, chat)

    def _sleep_for(self, now: float) -> float:
        """Until the next debounce deadline; the poll interval is only a fallback."""
        poll = self.settings.app.polling.interval_seconds
        upcoming = [d for c, d in self._deadlines.items() if c not in self._busy]
        return max(0.0, min([poll, *(d - now for d in upcoming)]))

    async def idle(self) -> None:
        """Wait until no chat is being worked on."""
        while self._busy:
            await self._idle.wait()

    async def _work_chat(self, chat: str) -> None:
        try:
            with self._chat_failures.guard(chat=chat):
                async with self._limiter:
                    await self._drain(chat)
        finally:
            self._busy.discard(chat)
            self._idle.set()
            self._idle = anyio.Event()
            self._waker.wake()

    async def _drain(self, chat: str) -> None:
        """Decide on everything due in ``chat``; note when the next burst is due."""
        self._deadlines.pop(chat, None)
        while not self.stopping:
            loaded = self.settings.loaded
            items = queue.pending(self.folded.view.queue, chat)
            if not items:
                return
            first = items[0]
            entity = loaded.config.entity_for(chat, first.sender_alt, first.is_group)
            if entity is None:
                await self._skip(loaded, None, items, "not_monitored")
                continue
            orphans = [i for i in items if i.status == "requested"]
            if orphans:
                # Requested before a restart and never answered: ask again,
                # unless the restart came too late for an answer to make sense.
                call = _same_call(orphans)
                if decide.is_stale(loaded.config, call[-1], self.clock()):
                    await self._skip(loaded, entity, call, "stale")
                else:
                    await self._answer_reserved(loaded, entity, chat, call)
                continue
            if await self._judge_arrivals(loaded, entity, chat, items):
                continue
            run = decide.burst(items)
            due = decide.due_at(loaded.config, run)
            if self.clock() < due:
                self._deadlines[chat] = due
                return
            if decide.fetching(run):
                self._fetching.add(chat)
                return
            reason = decide.before_turn(self._view(loaded), chat)
            if reason is not None:
                await self._skip(loaded, entity, run, reason)
                continue
            if decide.budget_held(self._view(loaded)):
                # Asked again when a call lands (or at the poll, should none).
                self._held.add(chat)
                self._deadlines[chat] = self.clock() + loaded.config.polling.interval_seconds
                return
            if self.media is not None and await self.media.prepare(loaded, chat, run):
                continue  # a transcript, a document's text or a notice: look again
            await self._answer_reserved(loaded, entity, chat, run)

    async def _judge_arrivals(
        self, loaded: LoadedConfig, entity: Entity, chat: str, items: list[Item]
    ) -> bool:
        """Record the skips and resets that need no waiting; True if any were made."""
        view = self._view(loaded)
        events: list[AnyEvent] = []
        said: list[Said] = []
        for item in items:
            if item.status != "pending":
                continue
            reason = decide.on_arrival(view, entity, item)
            if reason is not None:
                said.append(self._said(loaded, entity, item, reason))
                events.append(said[-1][0])
            elif decide.is_reset(item):
                events += self._reset(chat, item)
        if events:
            await self.folded.append(*events)
            _log_skips(said)
        return bool(events)

    def _reset(self, chat: str, item: Item) -> list[AnyEvent]:
        user = aliases.canonical(self.folded.view.aliases, item.sender)
        return [
            SessionStarted(chat=chat, session_id=self.new_id(), user=user, reason="reset"),
            ReplyPlanned(
                chat=chat,
                reply_id=self.new_id(),
                purpose="reply",
                text=RESET_REPLY,
                in_reply_to=item.msg_id,
                trigger_ids=[item.msg_id],
                wa_id=self.new_wa_id(),
            ),
        ]

    async def _skip(
        self, loaded: LoadedConfig, entity: Entity | None, items: list[Item], reason: str
    ) -> None:
        said = [self._said(loaded, entity, i, reason) for i in items]
        await self.folded.append(*(skipped for skipped, _ in said))
        _log_skips(said)

    def _said(self, loaded: LoadedConfig, entity: Entity | None, item: Item, reason: str) -> Said:
        """The skip of ``item`` and why, in words (never its text)."""
        took_over = self.folded.view.takeover.paused_since.get(item.chat)
        facts = Skip(
            reason=reason,
            at=self.clock(),
            sent_at=item.sent_at or item.ts,
            took_over_at=took_over,
            media=item.media.kind if item.media is not None else None,
        )
        skipped = MessageSkipped(chat=item.chat, msg_id=item.msg_id, reason=reason)
        return skipped, skip_words(facts, loaded.config, entity)

    def _view(self, loaded: LoadedConfig) -> decide.View:
        v = self.folded.view
        owner = identity.owner_forms(v.identity, loaded.config.owner_jid)
        reserving = frozenset(self._reserving)
        return decide.View(
            loaded.config, v.echo, v.takeover, v.budget, self.clock(), owner, reserving
        )

    async def _answer_reserved(
        self, loaded: LoadedConfig, entity: Entity, chat: str, run: list[Item]
    ) -> None:
        """``_answer``, its call counted against the budget from the decision on.

        No await comes between ``budget_held`` and the reservation, so chats
        deciding at once see each other's calls before any is in the log.
        """
        self._reserving.add(chat)
        try:
            await self._answer(loaded, entity, chat, run)
        finally:
            self._reserving.discard(chat)
            for held in self._held:
                self._deadlines.pop(held, None)
            if self._held:
                self._held.clear()
                self._waker.wake()  # its cost is in the log: the held chats decide again

    async def _answer(
        self, loaded: LoadedConfig, entity: Entity, chat: str, run: list[Item]
    ) -> None:
        cfg = loaded.config
        memory = cfg.session_memory
        view = self.folded.view
        user = aliases.canonical(view.aliases, run[-1].sender)
        forms = aliases.forms(view.aliases, user)
        session = sessions.live(
            view.sessions,
            chat,
            forms,
            self.clock(),
            memory.mode,
            memory.ttl_minutes,
            cfg.vitality.timezone,
        )
        events: list[AnyEvent] = []
        # A session answered under another persona or prompt (a hot reload) is not continued.
        if session is not None and session.system in ("", system_text(cfg, entity)):
            session_id = session.session_id
            context = sessions.context(session)
        else:
            reason: StartReason = (
                "config_changed"
                if session is not None
                else "new"
                if sessions.current(view.sessions, chat, forms) is None
                else "expired"
            )
            session_id = self.new_id()
            context = []
            events.append(
                SessionStarted(chat=chat, session_id=session_id, user=user, reason=reason)
            )
        prompt = compose(cfg, entity, context, user_turn(run, cfg))
        # Fields this model refused earlier in this process go out as it takes them, recorded so.
        params = self.llm(loaded).learned(prompt.model, prompt.params)
        prompt = msgspec.structs.replace(prompt, params=params)
        if entity.debug:
            events.append(self._debug(loaded, entity, chat, prompt))
        call_id = self.new_id()
        events.append(
            LlmRequested(
                chat=chat,
                call_id=call_id,
                session_id=session_id,
                trigger_ids=[i.msg_id for i in run],
                model=prompt.model,
                params=prompt.params,
                messages=prompt.messages,
                config_hash=loaded.hash,
                user=user,
            )
        )
        await self.folded.append(*events)
        await self._call(loaded, chat, call_id, prompt, run)

    def _debug(
        self, loaded: LoadedConfig, entity: Entity, chat: str, prompt: Prompt
    ) -> ReplyPlanned:
        persona, _ = loaded.config.entity_prompt(entity)
        text = debug_note(entity.name or chat, prompt, persona)
        ids = Ids(self.new_id, self.new_wa_id)
        # It quotes the chat's words: forget takes the note with the chat.
        return owner_note(loaded.config.owner_jid, "debug", text, ids, quotes_chat=chat)

    async def _call(
        self, loaded: LoadedConfig, chat: str, call_id: str, prompt: Prompt, run: list[Item]
    ) -> None:
        async def failed(error: LlmError, attempt: int, final: bool) -> None:
            log.warning(
                "llm_failed",
                chat=chat,
                call_id=call_id,
                attempt=attempt,
                final=final,
                error=error.loggable,
            )
            await self.folded.append(
                LlmFailed(
                    chat=chat,
                    call_id=call_id,
                    status=error.status,
                    error=str(error),
                    attempt=attempt,
                    final=final,
                )
            )

        view = self.folded.view
        address = addresses.destination(
            view.addresses, chat, loaded.config.owner_jid, view.identity.me_lid
        )
        # "typing…" is sent to the chat too: not to others while the account is restricted.
        held = outreach.hold_until(view, self.clock()) is not None
        shown = loaded.config.whatsapp.typing and not (held and chat != loaded.config.owner_jid)
        try:
            async with typing(self.transport, address, enabled=shown):
                result = await self.llm(loaded).complete(
                    prompt.model, prompt.messages, prompt.params, on_failure=failed
                )
        except LlmError:
            return  # already recorded as final by ``failed``
        except Exception as exc:
            # A bug on our side, not the API's: record it as final so the
            # messages leave the queue instead of being asked again forever.
            log.exception("llm_call_crashed", chat=chat, call_id=call_id)
            error = f"internal error: {type(exc).__name__}: {exc}"
            await self.folded.append(LlmFailed(chat=chat, call_id=call_id, error=error, final=True))
            return
        completed = LlmCompleted(
            chat=chat,
            call_id=call_id,
            content=result.content,
            citations=result.citations,
            usage=result.usage,
            latency_ms=result.latency_ms,
            finish_reason=result.finish_reason,
        )
        text = format_reply(result.content, result.citations)
        if not text.strip():
            await self.folded.append(
                completed,
                LlmFailed(
                    chat=chat, call_id=call_id, error="the LLM answered with no text", final=True
                ),
            )
            return
        still = {i.msg_id: i for i in queue.pending(self.folded.view.queue, chat)}
        asked = [still[i.msg_id] for i in run if i.msg_id in still]
        if asked and all(i.revoked for i in asked):
            # Deleted while the model was answering: the answer goes nowhere.
            entity = loaded.config.find_entity(chat)
            said = [self._said(loaded, entity, i, "revoked") for i in run]
            await self.folded.append(completed, *(skipped for skipped, _ in said))
            _log_skips(said)
            return
        parts = reply_parts(
            chat,
            text,
            run,
            whatsapp=loaded.config.whatsapp,
            call_id=call_id,
            new_id=self.new_id,
            new_wa_id=self.new_wa_id,
        )
        await self.folded.append(completed, *parts)


def _log_skips(said: list[Said]) -> None:
    """One INFO line per skip, once it is in the log: why no answer came."""
    for skipped, why in said:
        log.info(
            "message_skipped",
            chat=skipped.chat,
            msg_id=skipped.msg_id,
            reason=skipped.reason,
            why=why,
        )


def _same_call(items: list[Item]) -> list[Item]:
    first = items[0].call_id
    return [i for i in items if i.call_id == first]
