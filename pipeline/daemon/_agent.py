"""The agent: runs each chat's turn, as ``_turn`` plans it, until the chat must wait.

Woken by every commit (the poll interval is only a fallback), it works each
chat in log order, different chats concurrently up to ``max_concurrent_chats``
(``_dispatch``). For a chat it asks ``_turn.step`` what comes next, appends
the events the plan names, then runs its one effect: the LLM call (with the
typing indicator, its failures and its outcome recorded), an attachment's
step (``_media``), or a wait. Every decision is an event and what it knows
comes from the projections, so a restart resumes exactly where the log says
it stopped: a debounce window is recomputed from logged times, and a call
that was requested but never answered is requested again.

Every append about a chat carries a guard (``FoldedLog.guard``): a ``forget``
of the chat recorded (or under way) after the view it was decided from makes
the log refuse it, in the append's own transaction, so no request, answer or
reply decided from the forgotten words is recorded, asked or sent. The chat
is then looked at again once the view has the forget (at the next poll).
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable
from typing import Protocol

from events.model import LlmFailed
from events.protocol import Forgotten
from pipeline import toolbox
from pipeline.config import LoadedConfig
from pipeline.daemon import _decide as decide
from pipeline.daemon import _turn as turn
from pipeline.daemon._dispatch import Dispatcher, Pass
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._media import MediaStep
from pipeline.daemon._presence import Shows, typing
from pipeline.daemon._replies import Ids
from pipeline.daemon._settings import Settings
from pipeline.llm import LlmClient, LlmError
from pipeline.logs import get_logger
from projections import pauses, queue

log = get_logger("wabot.agent")


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
        self.clock = clock
        self.ids = Ids(new_id, transport.new_message_id)
        self._chats = Dispatcher(
            folded, settings, log, "agent_pass_failed", clock=clock, limited=True
        )
        # Chats whose next burst waits for an attachment being fetched: looked at
        # again once the queue says it came (a commit wakes the dispatcher).
        self._fetching: set[str] = set()
        # Chats the owner paused, waiting for the pause's end: a /resume (a commit
        # that wakes the dispatcher) lets them be looked at again at once.
        self._paused: set[str] = set()
        # The budget: chats whose call is decided (it may not be in the log yet),
        # and chats waiting for the costs of calls in flight.
        self._reserving: set[str] = set()
        self._held: set[str] = set()

    @property
    def stopping(self) -> bool:
        """Set at shutdown: no new turns; ``run`` returns once the chats in work are done."""
        return self._chats.stopping

    @stopping.setter
    def stopping(self, value: bool) -> None:
        self._chats.stopping = value

    async def run(self) -> None:
        await self._chats.run(self._look)

    async def idle(self) -> None:
        """Wait until no chat is being worked on."""
        await self._chats.idle()

    def _look(self, now: float) -> Pass:
        """A worker for every chat with work that is due and not being worked on."""
        view = self.folded.view.queue
        due = []
        for chat in [
            c for c in self._paused if pauses.until(self.folded.view.pauses, c, now) is None
        ]:
            self._paused.discard(chat)
            self._chats.undefer(chat)
        for chat in queue.chats_with_work(view):
            if chat in self._fetching:
                if decide.fetching(decide.burst(queue.pending(view, chat))):
                    continue
                self._fetching.discard(chat)
            if self._chats.ready(chat, now):
                due.append((chat, functools.partial(self._drain, chat)))
        return Pass(due)

    def _facts(self, loaded: LoadedConfig) -> turn.Facts:
        return turn.Facts(
            self.folded.view,
            loaded,
            self.clock(),
            self.ids,
            frozenset(self._reserving),
            lambda model, params: self.llm(loaded).learned(model, params),
            self.media is not None,
        )

    async def _drain(self, chat: str) -> None:
        """Run ``chat``'s turn step by step, until it has nothing left or must wait."""
        self._chats.undefer(chat)
        try:
            await self._steps(chat)
        except Forgotten:
            # A forget of the chat came after the view the step read: nothing was
            # recorded. Once the view has it (the marker: at the next poll), the turn
            # is decided again from what is left.
            self.folded.refresh()
            log.info("turn_dropped_forgotten", chat=chat)
            self._chats.defer(chat, self.clock() + self.settings.app.polling.interval_seconds)

    async def _steps(self, chat: str) -> None:
        while not self.stopping:
            loaded = self.settings.loaded
            plan = turn.step(self._facts(loaded), chat)
            effect = plan.effect
            if isinstance(effect, turn.Ask):
                # No await between the budget's judgement and the reservation, so
                # chats deciding at once see each other's calls before any is in the log.
                await self._reserved(loaded, plan, effect)
                continue
            if plan.events:
                await self._record(chat, plan)
            if isinstance(effect, turn.Prepare) and self.media is not None:
                await self.media.run(loaded, chat, effect.step)
            elif isinstance(effect, turn.Wait):
                self._chats.defer(chat, effect.until)
                return
            elif isinstance(effect, turn.AwaitResume):
                if chat not in self._paused:
                    log.info("chat_paused", chat=chat, look_again_at=effect.until)
                self._paused.add(chat)
                self._chats.defer(chat, effect.until)
                return
            elif isinstance(effect, turn.AwaitFetch):
                self._fetching.add(chat)
                return
            elif isinstance(effect, turn.AwaitCosts):
                # Asked again when a call lands (or at the poll, should none).
                self._held.add(chat)
                self._chats.defer(chat, effect.until)
                return
            elif not plan.events:
                return

    async def _record(self, chat: str, plan: turn.Plan) -> None:
        """Append the plan's events, on condition that ``chat`` was not forgotten since
        the view they were decided from (``Forgotten``); then say why (one INFO line a
        skip or notice)."""
        await self.folded.append(*plan.events, guard=self.folded.guard(chat))
        for event, fields in plan.lines:
            log.info(event, **fields)

    async def _reserved(self, loaded: LoadedConfig, plan: turn.Plan, asked: turn.Ask) -> None:
        """Record the request and make the call, counted against the budget from the
        decision on, and each round of its tool loop the same way (a round's request
        is in the log before it goes out); then the chats held for its cost decide again."""
        self._reserving.add(asked.chat)
        try:
            await self._record(asked.chat, plan)
            following = await self._ask(loaded, asked)
            # At shutdown the next round is in the log, and asked at the next start.
            while following is not None and not self.stopping:
                following = await self._ask(loaded, following)
        finally:
            self._reserving.discard(asked.chat)
            for held in self._held:
                self._chats.undefer(held)
            if self._held:
                self._held.clear()
                self._chats.wake()  # its cost is in the log: the held chats decide again

    def _forgotten(self, asked: turn.Ask) -> bool:
        """Whether a compaction (a ``forget``) removed the turn while its call was out:
        read from the log now, not at the next poll, since what follows records words."""
        self.folded.refresh()
        return turn.forgotten(self.folded.view, asked.chat, asked.run)

    async def _ask(self, loaded: LoadedConfig, asked: turn.Ask) -> turn.Ask | None:
        """The LLM call, "typing…" while it runs; each failure and the outcome recorded.
        Returns the tool loop's next round, its request recorded, if the answer asks one."""
        chat, call_id, prompt = asked.chat, asked.call_id, asked.prompt

        async def failed(error: LlmError, attempt: int, final: bool) -> None:
            log.warning(
                "llm_failed",
                chat=chat,
                call_id=call_id,
                attempt=attempt,
                final=final,
                error=error.loggable,
            )
            if self._forgotten(asked):
                return  # forgotten meanwhile: the API's error may echo the chat's words
            await self._append_unless_forgotten(
                asked,
                LlmFailed(
                    chat=chat,
                    call_id=call_id,
                    status=error.status,
                    error=str(error),
                    attempt=attempt,
                    final=final,
                    usage=error.usage,  # an answer with nothing usable may be billed
                ),
            )

        try:
            async with typing(self.transport, asked.to, enabled=asked.typing):
                result = await self.llm(loaded).complete(
                    prompt.model,
                    prompt.messages,
                    prompt.params,
                    on_failure=failed,
                    tools=toolbox.specs(prompt.tools),
                    rounds=prompt.rounds,
                )
        except LlmError:
            return None  # already recorded as final by ``failed``
        except Exception as exc:
            # A bug on our side, not the API's: record it as final so the
            # messages leave the queue instead of being asked again forever.
            log.exception("llm_call_crashed", chat=chat, call_id=call_id)
            if self._forgotten(asked):
                return None
            error = f"internal error: {type(exc).__name__}: {exc}"
            failed_for_good = LlmFailed(chat=chat, call_id=call_id, error=error, final=True)
            await self._append_unless_forgotten(asked, failed_for_good)
            return None
        self.folded.refresh()  # a forget while the call was out: its answer is dropped
        plan = turn.answered(self._facts(loaded), asked, result)
        try:
            await self._record(chat, plan)
        except Forgotten:
            # Forgotten after that read, before the answer was in: never recorded nor sent.
            log.info("llm_answer_dropped", chat=chat, call_id=call_id)
            raise
        return plan.effect if isinstance(plan.effect, turn.Ask) else None

    async def _append_unless_forgotten(self, asked: turn.Ask, failed: LlmFailed) -> None:
        """Record a failure of the call, unless its chat was forgotten meanwhile (the
        API's error may echo the chat's words)."""
        with contextlib.suppress(Forgotten):
            await self.folded.append(failed, guard=self.folded.guard(asked.chat))
