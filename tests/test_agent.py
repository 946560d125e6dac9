"""The agent in-process, on a real log: what no end-to-end run can provoke."""

from pathlib import Path
from typing import Any, cast

import anyio
import pytest

from events.backends import open_log
from events.model import (
    ChatPaused,
    ChatTurn,
    LlmFailed,
    LlmRequested,
    MessageReceived,
    MessageSkipped,
    TransportStatus,
    Usage,
)
from events.protocol import Keyed
from events.testing import FakeClock
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.daemon import Agent, FoldedLog, Settings
from pipeline.llm import LlmClient, RunFailed
from pipeline.transport import MemoryTransport
from projections import budget, queue
from projections.fold import SNAPSHOT_VERSION
from projections.runner import SNAPSHOT_NAME

NOW = 1_764_070_000.0
ALICE = "491701111111@s.whatsapp.net"


class CrashingLlm:
    """Fails the way a bug would: not with an LlmError."""

    def __init__(self) -> None:
        self.calls = 0

    def learned(self, model: str, params: dict[str, Any]) -> dict[str, Any]:
        return params  # nothing refused

    async def complete(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise RuntimeError("boom")


class BilledButUnusableLlm:
    """Answers with nothing the bot can use, and says what the answer cost."""

    def learned(self, model: str, params: dict[str, Any]) -> dict[str, Any]:
        return params

    async def complete(self, *args: Any, on_failure: Any, **kwargs: Any) -> Any:
        error = RunFailed("no text", usage=Usage(output_tokens=1024, cost_usd=0.02))
        await on_failure(error, 1, True)
        raise error


def settings() -> Settings:
    loaded = LoadedConfig(
        config=config_from_dict(
            {
                "whatsapp": {"phone_number": "491700000000"},
                "monitored_entities": [{"type": "user", "phone": "491701111111"}],
                "polling": {"debounce_seconds": 0},
            }
        ),
        hash="h",
        path="app.json",
        secrets=Secrets(api_key=None),
    )
    return Settings(loaded)


def agent_for(folded: FoldedLog, llm: Any, clock: FakeClock) -> Agent:
    transport = MemoryTransport(clock=clock)
    return Agent(folded, settings(), lambda _loaded: cast(LlmClient, llm), transport, clock=clock)


@pytest.mark.anyio
async def test_a_crashing_call_is_recorded_as_final_and_not_asked_again(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    log = open_log(tmp_path, clock=clock)
    folded = FoldedLog(log)
    folded.watch()
    changed = folded.waker()
    llm = CrashingLlm()
    agent = agent_for(folded, llm, clock)
    message = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="hi", sent_at=NOW)
    await folded.append(Keyed(message, f"{ALICE}/M1"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(agent.run)
        with anyio.fail_after(10):
            while not any(isinstance(r.event, LlmFailed) for r in log.read()):
                await changed.wait(1.0)
        agent.stopping = True
        tg.cancel_scope.cancel()

    failed = [r.event for r in log.read() if isinstance(r.event, LlmFailed)]
    assert len(failed) == 1
    assert failed[0].final
    assert failed[0].error == "internal error: RuntimeError: boom"
    assert len([r for r in log.read() if isinstance(r.event, LlmRequested)]) == 1
    assert llm.calls == 1
    assert queue.chats_with_work(folded.view.queue) == []
    log.close()


@pytest.mark.anyio
async def test_a_billed_failure_records_its_cost_and_counts_as_spend(tmp_path: Path) -> None:
    """A reasoning model that spent its limit thinking is billed: without its cost in
    the log the daily budget would never stop such calls."""
    clock = FakeClock(NOW)
    log = open_log(tmp_path, clock=clock)
    folded = FoldedLog(log)
    folded.watch()
    changed = folded.waker()
    agent = agent_for(folded, BilledButUnusableLlm(), clock)
    message = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="hi", sent_at=NOW)
    await folded.append(Keyed(message, f"{ALICE}/M1"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(agent.run)
        with anyio.fail_after(10):
            while not any(isinstance(r.event, LlmFailed) for r in log.read()):
                await changed.wait(1.0)
        agent.stopping = True
        tg.cancel_scope.cancel()

    failed = [r.event for r in log.read() if isinstance(r.event, LlmFailed)]
    assert [(f.final, f.usage) for f in failed] == [
        (True, Usage(output_tokens=1024, cost_usd=0.02))
    ]
    folded.refresh()
    assert budget.spent_since(folded.view.budget, NOW - 60) == 0.02
    log.close()


@pytest.mark.anyio
async def test_projections_are_snapshotted_as_the_log_grows(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    folded = FoldedLog(log, snapshot_every=5)
    await folded.append(
        *(MessageReceived(chat=ALICE, msg_id=f"M{i}", sender=ALICE) for i in range(4))
    )
    assert log.load_snapshot(SNAPSHOT_NAME, SNAPSHOT_VERSION) is None
    await folded.append(MessageReceived(chat=ALICE, msg_id="M4", sender=ALICE))
    saved = log.load_snapshot(SNAPSHOT_NAME, SNAPSHOT_VERSION)
    assert saved is not None
    assert saved[0] == 5
    log.close()


@pytest.mark.anyio
async def test_a_call_orphaned_by_a_long_outage_is_not_asked_again(tmp_path: Path) -> None:
    clock = FakeClock(NOW - 3 * 3600)
    log = open_log(tmp_path, clock=clock)
    message = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="hi", sent_at=clock.now)
    orphan = LlmRequested(
        chat=ALICE,
        call_id="C1",
        session_id="S1",
        trigger_ids=["M1"],
        model="m",
        params={},
        messages=[ChatTurn("user", "hi")],
        config_hash="h",
    )
    log.append(Keyed(message, f"{ALICE}/M1"), orphan)  # then the process died
    clock.now = NOW  # back three hours later
    folded = FoldedLog(log)
    folded.watch()
    changed = folded.waker()
    llm = CrashingLlm()
    agent = agent_for(folded, llm, clock)

    async with anyio.create_task_group() as tg:
        tg.start_soon(agent.run)
        with anyio.fail_after(10):
            while not any(isinstance(r.event, MessageSkipped) for r in log.read()):
                await changed.wait(1.0)
        agent.stopping = True
        tg.cancel_scope.cancel()

    skipped = [r.event for r in log.read() if isinstance(r.event, MessageSkipped)]
    assert [(s.msg_id, s.reason) for s in skipped] == [("M1", "stale")]
    assert llm.calls == 0
    log.close()


@pytest.mark.anyio
async def test_a_pause_that_ends_by_itself_lets_its_chat_be_answered(tmp_path: Path) -> None:
    """No /resume: the chat is looked at again when the pause's time is up."""
    clock = FakeClock(NOW)
    log = open_log(tmp_path, clock=clock)
    folded = FoldedLog(log)
    folded.watch()
    changed = folded.waker()
    llm = CrashingLlm()  # a call is what shows the turn went on
    agent = agent_for(folded, llm, clock)
    message = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="hi", sent_at=NOW)
    await folded.append(ChatPaused(chat=ALICE, until=NOW + 60), Keyed(message, f"{ALICE}/M1"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(agent.run)
        with anyio.fail_after(10):
            while ALICE not in agent._paused:  # the agent decided: it waits for the pause
                await anyio.sleep(0.01)
        assert llm.calls == 0
        clock.advance(60)
        await folded.append(TransportStatus(state="connected"))  # any commit wakes it
        with anyio.fail_after(10):
            while not any(isinstance(r.event, LlmFailed) for r in log.read()):
                await changed.wait(1.0)
        agent.stopping = True
        tg.cancel_scope.cancel()

    assert llm.calls == 1
    log.close()
