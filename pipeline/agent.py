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

import anyio

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
from pipeline import decide
from pipeline.config import Entity, LoadedConfig
from pipeline.deps import Answering
from pipeline.llm import LlmError, format_reply
from pipeline.logs import get_logger
from pipeline.request import Request, build_request, debug_note, user_text
from pipeline.store import Store
from projections import aliases, queue, sessions
from projections.queue import Item

log = get_logger("wabot.agent")

RESET_REPLY = "New conversation started: I have forgotten what we said before."


class Agent:
    def __init__(
        self,
        store: Store,
        deps: Answering,
        *,
        clock: Callable[[], float],
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.store = store
        self.deps = deps
        self.clock = clock
        self.new_id = new_id
        self.stopping = False
        self._busy: set[str] = set()
        self._deadlines: dict[str, float] = {}
        self._idle = anyio.Event()
        self._limiter = anyio.CapacityLimiter(deps.config.config.polling.max_concurrent_chats)

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            while not self.stopping:
                now = self.clock()
                try:
                    self._dispatch(tg, now)
                except Exception:
                    # Whatever broke (a full disk, a bug), the daemon stays up
                    # and tries again at the next wake-up.
                    log.exception("agent_pass_failed")
                await self.store.changed(self._sleep_for(now))
            await self.idle()

    def _dispatch(self, tg: anyio.abc.TaskGroup, now: float) -> None:
        """Start a worker for every chat with work that is due and not being worked on."""
        self.store.catch_up()
        self._limiter.total_tokens = self.deps.config.config.polling.max_concurrent_chats
        for chat in queue.chats_with_work(self.store.view.queue):
            if chat not in self._busy and self._deadlines.get(chat, 0.0) <= now:
                self._busy.add(chat)
                tg.start_soon(self._work_chat, chat)

    def _sleep_for(self, now: float) -> float:
        poll = self.deps.config.config.polling.interval_seconds
        upcoming = [d for c, d in self._deadlines.items() if c not in self._busy]
        return max(0.0, min([poll, *(d - now for d in upcoming)]))

    async def idle(self) -> None:
        """Wait until no chat is being worked on."""
        while self._busy:
            await self._idle.wait()

    async def _work_chat(self, chat: str) -> None:
        try:
            async with self._limiter:
                await self._drain(chat)
        except Exception:
            log.exception("chat_work_failed", chat=chat)
        finally:
            self._busy.discard(chat)
            self._idle.set()
            self._idle = anyio.Event()

    async def _drain(self, chat: str) -> None:
        """Decide on everything due in ``chat``; note when the next burst is due."""
        self._deadlines.pop(chat, None)
        while not self.stopping:
            loaded = self.deps.config
            items = queue.pending(self.store.view.queue, chat)
            if not items:
                return
            first = items[0]
            entity = decide.entity_for(loaded.config, chat, first.sender_alt, first.is_group)
            if entity is None:
                await self._skip(items, "not_monitored")
                continue
            orphans = [i for i in items if i.status == "requested"]
            if orphans:
                # Requested before a restart and never answered: ask again,
                # unless the restart came too late for an answer to make sense.
                call = _same_call(orphans)
                if decide.is_stale(loaded.config, call[-1], self.clock()):
                    await self._skip(call, "stale")
                else:
                    await self._answer(loaded, entity, chat, call)
                continue
            if await self._judge_arrivals(loaded, entity, chat, items):
                continue
            run = decide.burst(items)
            due = decide.due_at(loaded.config, run)
            if self.clock() < due:
                self._deadlines[chat] = due
                return
            reason = decide.before_turn(self._view(loaded), chat)
            if reason is not None:
                await self._skip(run, reason)
                continue
            await self._answer(loaded, entity, chat, run)

    async def _judge_arrivals(
        self, loaded: LoadedConfig, entity: Entity, chat: str, items: list[Item]
    ) -> bool:
        """Record the skips and resets that need no waiting; True if any were made."""
        view = self._view(loaded)
        events: list[AnyEvent] = []
        for item in items:
            if item.status != "pending":
                continue
            reason = decide.on_arrival(view, entity, item)
            if reason is not None:
                events.append(MessageSkipped(chat=chat, msg_id=item.msg_id, reason=reason))
            elif decide.is_reset(item):
                events += self._reset(chat, item)
        if events:
            await self.store.append(*events)
            self.deps.wake_sender()
        return bool(events)

    def _reset(self, chat: str, item: Item) -> list[AnyEvent]:
        user = aliases.canonical(self.store.view.aliases, item.sender)
        return [
            SessionStarted(chat=chat, session_id=self.new_id(), user=user, reason="reset"),
            ReplyPlanned(
                chat=chat,
                reply_id=self.new_id(),
                purpose="reply",
                text=RESET_REPLY,
                in_reply_to=item.msg_id,
                trigger_ids=[item.msg_id],
                wa_id=self.deps.new_wa_id(),
            ),
        ]

    async def _skip(self, items: list[Item], reason: str) -> None:
        await self.store.append(
            *(MessageSkipped(chat=i.chat, msg_id=i.msg_id, reason=reason) for i in items)
        )

    def _view(self, loaded: LoadedConfig) -> decide.View:
        v = self.store.view
        return decide.View(loaded.config, v.echo, v.takeover, v.budget, self.clock())

    async def _answer(
        self, loaded: LoadedConfig, entity: Entity, chat: str, run: list[Item]
    ) -> None:
        cfg = loaded.config
        memory = cfg.session_memory
        user = aliases.canonical(self.store.view.aliases, run[-1].sender)
        forms = aliases.forms(self.store.view.aliases, user)
        state = self.store.view.sessions
        session = sessions.live(
            state, chat, forms, self.clock(), memory.mode, memory.ttl_minutes, cfg.vitality.timezone
        )
        text = user_text(run, cfg.limits.max_input_chars)
        request = build_request(cfg, entity, [], text)
        events: list[AnyEvent] = []
        if session is not None and session.system in ("", request.messages[0].content):
            session_id = session.session_id
            request = build_request(cfg, entity, sessions.context(session), text)
        else:
            reason: StartReason = (
                # The persona or prompt changed (hot reload): old turns answered another brief.
                "config_changed"
                if session is not None
                else "new"
                if sessions.current(state, chat, forms) is None
                else "expired"
            )
            session_id = self.new_id()
            events.append(
                SessionStarted(chat=chat, session_id=session_id, user=user, reason=reason)
            )
        if entity.debug:
            events.append(self._debug(loaded, entity, chat, request))
        call_id = self.new_id()
        trigger_ids = [i.msg_id for i in run]
        events.append(
            LlmRequested(
                chat=chat,
                call_id=call_id,
                session_id=session_id,
                trigger_ids=trigger_ids,
                model=request.model,
                params=request.params,
                messages=request.messages,
                config_hash=loaded.hash,
                user=user,
            )
        )
        await self.store.append(*events)
        self.deps.wake_sender()
        await self._call(chat, call_id, request, run)

    def _debug(
        self, loaded: LoadedConfig, entity: Entity, chat: str, request: Request
    ) -> ReplyPlanned:
        persona, _ = loaded.config.entity_prompt(entity)
        return ReplyPlanned(
            chat=loaded.config.owner_jid,
            reply_id=self.new_id(),
            purpose="debug",
            text=debug_note(entity.name or chat, request, persona),
            wa_id=self.deps.new_wa_id(),
        )

    async def _call(self, chat: str, call_id: str, request: Request, run: list[Item]) -> None:
        async def failed(error: LlmError, attempt: int, final: bool) -> None:
            log.warning(
                "llm_failed",
                chat=chat,
                call_id=call_id,
                attempt=attempt,
                final=final,
                error=str(error),
            )
            await self.store.append(
                LlmFailed(
                    chat=chat,
                    call_id=call_id,
                    status=error.status,
                    error=str(error),
                    attempt=attempt,
                    final=final,
                )
            )

        try:
            result = await self.deps.llm().complete(
                request.model, request.messages, request.params, on_failure=failed
            )
        except LlmError:
            return  # already recorded as final by ``failed``
        except Exception as exc:
            # A bug on our side, not the API's: record it as final so the
            # messages leave the queue instead of being asked again forever.
            log.exception("llm_call_crashed", chat=chat, call_id=call_id)
            error = f"internal error: {type(exc).__name__}: {exc}"
            await self.store.append(LlmFailed(chat=chat, call_id=call_id, error=error, final=True))
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
            await self.store.append(
                completed,
                LlmFailed(
                    chat=chat, call_id=call_id, error="the LLM answered with no text", final=True
                ),
            )
            return
        await self.store.append(
            completed,
            ReplyPlanned(
                chat=chat,
                reply_id=self.new_id(),
                purpose="reply",
                text=text,
                call_id=call_id,
                in_reply_to=run[-1].msg_id,
                trigger_ids=[i.msg_id for i in run],
                wa_id=self.deps.new_wa_id(),
            ),
        )
        self.deps.wake_sender()


def _same_call(items: list[Item]) -> list[Item]:
    first = items[0].call_id
    return [i for i in items if i.call_id == first]
