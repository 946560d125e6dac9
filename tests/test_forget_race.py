"""A ``forget`` landing between the agent's last read and its answer's append.

The real agent, folded log and sender on a real log (SQLite, PostgreSQL); the
real ``forget`` tool runs from inside the log's ``append`` of the answer: the
agent has read the log after the LLM answered and decided, and its events are
not committed yet. Nothing of the chat may be recorded or sent afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import anyio
import pytest

from events.backends import open_log
from events.model import AccountRestricted, LlmCompleted, MessageReceived, ReplyPlanned, Usage
from events.protocol import Keyed, LogWriter
from events.testing import FakeClock
from pipeline.daemon import Agent, FoldedLog, Sender
from pipeline.llm import LlmClient, LlmResult
from pipeline.tools import forget
from pipeline.tools._where import Where
from pipeline.transport import MemoryTransport, Outgoing, SendReceipt, TransportError
from tests.pg_support import own_schema, require_server, schema_url
from tests.test_agent import settings

NOW = 1_764_070_000.0
ALICE = "491701111111@s.whatsapp.net"
NUMBER = "491700000000"
WORD = "zebra-quartz-7731"


class AnsweringLlm:
    """Answers at once, echoing the chat's words."""

    def __init__(self) -> None:
        self.calls = 0

    def learned(self, model: str, params: dict[str, Any]) -> dict[str, Any]:
        return params

    async def complete(self, *args: Any, **kwargs: Any) -> LlmResult:
        self.calls += 1
        return LlmResult(
            content=f"Your word is {WORD}.", citations=[], usage=Usage(), finish_reason="stop"
        )


class ForgetInsideAppend:
    """The log, but the first append of an answer runs ``forget`` of its chat first:
    the forget lands after the agent's decision and before its events commit."""

    def __init__(self, log: LogWriter, where: Where) -> None:
        self._log = log
        self._where = where
        self.forgot = ""
        self.answer_appended = False

    def _maybe_forget(self, items: tuple[Any, ...]) -> None:
        events = [i.event if isinstance(i, Keyed) else i for i in items]
        answer = next((e for e in events if isinstance(e, LlmCompleted)), None)
        if answer is not None and not self.forgot:
            self.forgot = forget(self._where, answer.chat)

    def append(self, *items: Any, **kw: Any) -> Any:
        self._maybe_forget(items)
        try:
            return self._log.append(*items, **kw)
        finally:
            self.answer_appended = bool(self.forgot)

    def append_now(self, *items: Any, **kw: Any) -> Any:
        now = getattr(self._log, "append_now", None)
        if now is None:
            return None  # PostgreSQL: every append goes through ``append``
        self._maybe_forget(items)
        try:
            done = now(*items, **kw)
        except BaseException:  # refused (``Forgotten``)
            self.answer_appended = bool(self.forgot)
            raise
        self.answer_appended = bool(self.forgot) and done is not None  # None: ``append`` next
        return done

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


@contextlib.contextmanager
def _where(backend: str, store: Path) -> Iterator[Where]:
    if backend == "sqlite":
        yield Where(store)
        return
    require_server()
    with own_schema() as schema:
        yield Where(store, schema_url(schema), NUMBER)


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Where]:
    with _where(request.param, tmp_path) as found:
        yield found


@pytest.mark.anyio
async def test_an_answer_decided_before_a_forget_and_appended_after_is_not_kept(
    where: Where,
) -> None:
    clock = FakeClock(NOW)
    raw = open_log(where.store, url=where.url, name=where.number, clock=clock)
    hooked = ForgetInsideAppend(raw, where)
    folded = FoldedLog(cast(LogWriter, hooked))
    folded.watch()
    changed = folded.waker()
    transport = MemoryTransport(clock=clock)
    llm = AnsweringLlm()
    agent = Agent(folded, settings(), lambda _loaded: cast(LlmClient, llm), transport, clock=clock)
    message = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text=WORD, sent_at=NOW)
    await folded.append(Keyed(message, f"{ALICE}/M1"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(agent.run)
        with anyio.fail_after(20):
            while not hooked.answer_appended:
                await changed.wait(1.0)
            await agent.idle()
        agent.stopping = True
        tg.cancel_scope.cancel()
    folded.refresh()
    await Sender(folded, transport, settings(), clock=clock).send_due()

    assert hooked.forgot.startswith(f"forgot {ALICE}: ")
    assert llm.calls == 1
    assert [type(r.event).__name__ for r in raw.read(chats=[ALICE])] == []
    assert not any(WORD in str(r.event) for r in raw.read())
    assert [s for s in transport.sent if s.chat == ALICE] == []
    folded.close()


class ForgetWhileSending(MemoryTransport):
    """Runs ``forget`` of the chat as its first send goes out: after the sender read the
    view, before the outcome is appended."""

    def __init__(self, where: Where, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self._where = where
        self.forgot = ""

    async def send(self, message: Outgoing) -> SendReceipt:
        if not self.forgot:
            self.forgot = forget(self._where, ALICE)
        return await super().send(message)


def _planned(reply_id: str) -> ReplyPlanned:
    return ReplyPlanned(chat=ALICE, reply_id=reply_id, purpose="reply", text=WORD, wa_id=reply_id)


@pytest.mark.anyio
async def test_a_reply_sent_as_its_chat_is_forgotten_leaves_no_outcome(where: Where) -> None:
    clock = FakeClock(NOW)
    raw = open_log(where.store, url=where.url, name=where.number, clock=clock)
    folded = FoldedLog(raw)
    transport = ForgetWhileSending(where, clock)
    message = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text=WORD, sent_at=NOW)
    await folded.append(Keyed(message, f"{ALICE}/M1"), _planned("R1"), _planned("R2"))

    await Sender(folded, transport, settings(), clock=clock).send_due()

    assert transport.forgot.startswith(f"forgot {ALICE}: ")
    assert [s.wa_id for s in transport.sent] == ["R1"]  # handed over as the forget ran
    assert [type(r.event).__name__ for r in raw.read(chats=[ALICE])] == []
    folded.close()


@pytest.mark.anyio
async def test_a_reply_that_waited_is_not_sent_once_its_chat_was_forgotten(where: Where) -> None:
    """The forget by another process is in the log, not yet in the sender's view (no poll
    since): a reply that waited (here a failed try) reads the log again before it goes."""
    clock = FakeClock(NOW)
    raw = open_log(where.store, url=where.url, name=where.number, clock=clock)
    folded = FoldedLog(raw)
    transport = MemoryTransport(clock=clock)
    sender = Sender(folded, transport, settings(), clock=clock)
    message = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text=WORD, sent_at=NOW)
    await folded.append(Keyed(message, f"{ALICE}/M1"), _planned("R1"))
    transport.fail_next(TransportError("timed out", retryable=True))
    await sender.send_due()
    assert forget(where, ALICE).startswith(f"forgot {ALICE}: ")
    clock.advance(60)

    await sender.send_due()

    assert transport.sent == []
    assert [type(r.event).__name__ for r in raw.read(chats=[ALICE])] == []
    folded.close()


class ForgetThenRestricted(ForgetWhileSending):
    """Runs ``forget`` of the chat as its send goes out, and WhatsApp answers 463."""

    async def send(self, message: Outgoing) -> SendReceipt:
        if not self.forgot:
            self.forgot = forget(self._where, ALICE)
        raise TransportError("reach-out timelock", retryable=False, code=463)


@pytest.mark.anyio
async def test_a_restriction_met_as_its_chat_is_forgotten_still_holds_the_sends(
    where: Where,
) -> None:
    """The chat's failure goes with the forget; the account's restriction does not, or
    the next send, to anyone, would meet 463 again."""
    clock = FakeClock(NOW)
    raw = open_log(where.store, url=where.url, name=where.number, clock=clock)
    folded = FoldedLog(raw)
    transport = ForgetThenRestricted(where, clock)
    message = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text=WORD, sent_at=NOW)
    await folded.append(Keyed(message, f"{ALICE}/M1"), _planned("R1"))

    await Sender(folded, transport, settings(), clock=clock).send_due()

    assert transport.forgot.startswith(f"forgot {ALICE}: ")
    assert [type(r.event).__name__ for r in raw.read(chats=[ALICE])] == []
    held = [r.event for r in raw.read() if isinstance(r.event, AccountRestricted)]
    assert [(e.active, e.code, e.reply_id) for e in held] == [(True, 463, None)]
    folded.close()
