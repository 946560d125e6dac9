"""The one per-chat dispatcher the daemon's loops run on: one worker per chat, the limit,
due times, the failure guard and waiting for idle."""

from __future__ import annotations

import functools
from collections.abc import Callable

import anyio
import pytest
import structlog

from events.memory import MemoryLog
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.daemon._dispatch import CHAT_RETRY, Dispatcher, Pass, backoff
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._settings import Settings
from pipeline.logs import get_logger

NOW = 1_764_070_000.0


def dispatcher(limit: int | None = None) -> Dispatcher:
    polling = {"interval_seconds": 3600}  # never: every pass here is woken
    if limit is not None:
        polling["max_concurrent_chats"] = limit
    config = config_from_dict({"whatsapp": {"phone_number": "491700000000"}, "polling": polling})
    settings = Settings(
        LoadedConfig(config=config, hash="h", path="app.json", secrets=Secrets(api_key=None))
    )
    return Dispatcher(
        FoldedLog(MemoryLog()),
        settings,
        get_logger("wabot.test"),
        "test_pass_failed",
        clock=lambda: NOW,
        limited=limit is not None,
    )


@pytest.mark.anyio
async def test_chats_are_worked_on_concurrently_up_to_the_limit() -> None:
    chats = dispatcher(limit=2)
    release = anyio.Event()
    running: set[str] = set()
    finished: set[str] = set()
    most = 0
    started = 0

    async def work(chat: str) -> None:
        nonlocal most, started
        started += 1
        running.add(chat)
        most = max(most, len(running))
        await release.wait()
        running.discard(chat)
        finished.add(chat)

    def look(now: float) -> Pass:
        due = [c for c in ("a", "b", "c", "d") if chats.ready(c, now) and c not in finished]
        return Pass([(c, functools.partial(work, c)) for c in due])

    async with anyio.create_task_group() as tg:
        tg.start_soon(chats.run, look)
        with anyio.fail_after(10):
            while len(running) < 2:
                await anyio.lowlevel.checkpoint()
        assert chats.busy == {"a", "b", "c", "d"}  # waiting for a place, not started again
        chats.wake()
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        assert started == 2
        release.set()
        with anyio.fail_after(10):
            while len(finished) < 4 or chats.busy:
                await anyio.lowlevel.checkpoint()
        chats.stopping = True
        chats.wake()
    assert (most, started) == (2, 4)  # each chat once, two at a time


@pytest.mark.anyio
async def test_a_failing_look_is_logged_once_and_the_loop_goes_on() -> None:
    chats = dispatcher()
    looks = 0
    done = anyio.Event()

    async def work() -> None:
        done.set()

    def look(now: float) -> Pass:
        nonlocal looks
        looks += 1
        if looks <= 2:
            raise RuntimeError("a bug")
        return Pass([("a", work)] if not done.is_set() else [])

    with structlog.testing.capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(chats.run, look)
            with anyio.fail_after(10):
                while not done.is_set():
                    chats.wake()
                    await anyio.lowlevel.checkpoint()
            chats.stopping = True
            chats.wake()
    failed = [e for e in logs if e["event"] == "test_pass_failed"]
    assert len(failed) == 1  # the same error again is not logged again
    assert any(e["event"] == "test_pass_recovered" for e in logs)


@pytest.mark.anyio
async def test_a_failing_chat_is_logged_and_frees_its_place() -> None:
    chats = dispatcher(limit=1)

    async def broken() -> None:
        raise RuntimeError("a bug")

    with structlog.testing.capture_logs() as logs:
        await chats.once(lambda now: Pass([("a", broken)]))
    assert chats.busy == set()
    assert [(e["event"], e["chat"]) for e in logs] == [("chat_work_failed", "a")]


@pytest.mark.anyio
async def test_a_cancelled_run_cancels_its_workers_and_waits_for_them() -> None:
    """Workers are the dispatcher's own tasks: cancelling ``run`` ends them before it returns,
    as a task group would, and a worker's clean-up still runs."""
    chats = dispatcher()
    started, cleaned = anyio.Event(), anyio.Event()

    async def work() -> None:
        try:
            started.set()
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.lowlevel.checkpoint()  # a clean-up that itself awaits
            cleaned.set()

    looks = iter([Pass([("a", work)])])
    async with anyio.create_task_group() as tg:
        tg.start_soon(chats.run, lambda now: next(looks, Pass([])))
        with anyio.fail_after(10):
            await started.wait()
        tg.cancel_scope.cancel()
    assert cleaned.is_set()  # before run returned, not at some later loop turn
    assert chats.busy == set()


def test_a_deferred_chat_is_not_ready_before_its_due_time() -> None:
    chats = dispatcher()
    chats.defer("a", NOW + 2)
    assert not chats.ready("a", NOW)
    assert chats.ready("a", NOW + 2)
    assert chats.ready("b", NOW)
    chats.undefer("a")
    assert chats.ready("a", NOW)


def test_backoff_repeats_its_last_delay() -> None:
    delays = (1.0, 2.0, 5.0)
    assert [backoff(delays, attempt) for attempt in range(1, 6)] == [1.0, 2.0, 5.0, 5.0, 5.0]


@pytest.mark.anyio
async def test_a_chat_whose_work_keeps_failing_rests_longer_each_time() -> None:
    """A failed worker's end wakes the loop, and ``look`` finds the same work: without a
    rest the step ran again at once, forever (a core busy, the chat never answered)."""
    now = [NOW]
    chats = dispatcher()
    chats.clock = lambda: now[0]
    calls: list[float] = []
    others = 0

    async def broken() -> None:
        calls.append(now[0] - NOW)
        raise RuntimeError("a bug")

    async def fine() -> None:
        nonlocal others
        others += 1

    def look(at: float) -> Pass:
        jobs = [(c, broken) for c in ("a",) if chats.ready(c, at)]
        return Pass([*jobs, ("b", fine)] if chats.ready("b", at) else jobs)

    with structlog.testing.capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(chats.run, look)
            for _ in range(2000):  # loop turns: a tight loop would call ``broken`` each time
                await anyio.lowlevel.checkpoint()
            assert calls == [0.0]
            assert others > 10  # the other chat goes on meanwhile
            assert not chats.ready("a", NOW + 0.9)
            for step in (1.0, 2.0, 4.0, 8.0, 16.0):
                now[0] += step
                chats.wake()
                for _ in range(200):
                    await anyio.lowlevel.checkpoint()
            chats.stopping = True
            chats.wake()
    assert calls == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0]  # 1 s, doubling
    assert [e["event"] for e in logs].count("chat_work_failed") == 1
    assert CHAT_RETRY[-1] == 300.0  # never more than five minutes between tries


@pytest.mark.anyio
async def test_a_rest_that_ran_out_with_no_work_left_does_not_spin_the_loop() -> None:
    """A chat whose worker failed, then had nothing more to do: its rest's end, passed,
    must not keep the loop looking again at once."""
    now = [NOW]
    chats = dispatcher()
    chats.clock = lambda: now[0]
    looks = 0
    failed = False

    async def broken() -> None:
        nonlocal failed
        failed = True
        raise RuntimeError("a bug")

    def look(at: float) -> Pass:
        nonlocal looks
        looks += 1
        return Pass([] if failed else [("a", broken)])

    async with anyio.create_task_group() as tg:
        tg.start_soon(chats.run, look)
        for _ in range(200):
            await anyio.lowlevel.checkpoint()
        now[0] += 10.0  # the rest is over; the chat has no work left
        spun = await _passes_then_stop(chats, lambda: looks)
    assert failed
    assert spun < 10


@pytest.mark.anyio
async def test_a_due_time_passed_with_no_work_left_does_not_spin_the_loop() -> None:
    """A chat deferred (a debounce) whose messages went before then (a ``forget``):
    nothing drains it, so its passed due time must neither keep the loop looking
    again at once nor stay behind, one entry for every such chat."""
    now = [NOW]
    chats = dispatcher()
    chats.clock = lambda: now[0]
    looks = 0

    def look(at: float) -> Pass:
        nonlocal looks
        looks += 1
        return Pass([])  # the chat's work went

    async with anyio.create_task_group() as tg:
        tg.start_soon(chats.run, look)
        chats.defer("a", NOW + 2)
        now[0] += 10.0
        spun = await _passes_then_stop(chats, lambda: looks)
    assert spun < 10
    assert chats.ready("a", now[0])
    assert chats._due == {}


@pytest.mark.anyio
async def test_a_due_time_that_passes_while_the_pass_looks_still_wakes_the_loop() -> None:
    """The pass looks before a chat's debounce is over and the time passes while it
    looks (a long fold, a busy loop): the chat is looked at again at once, not left
    to wait for the poll (here an hour)."""
    now = [NOW]
    chats = dispatcher()
    chats.clock = lambda: now[0]
    started = anyio.Event()

    async def work() -> None:
        started.set()

    def look(at: float) -> Pass:
        if chats.ready("a", at):
            return Pass([("a", work)])
        now[0] = NOW + 2  # the pass took until past the due time
        return Pass([])

    chats.defer("a", NOW + 1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(chats.run, look)
        for _ in range(2000):
            if started.is_set():
                break
            await anyio.lowlevel.checkpoint()
        chats.stopping = True
        chats.wake()
    assert started.is_set()


@pytest.mark.anyio
async def test_a_chat_that_recovers_rests_no_more() -> None:
    now = [NOW]
    chats = dispatcher()
    chats.clock = lambda: now[0]
    outcomes = iter([RuntimeError("once"), None])

    async def work() -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    with structlog.testing.capture_logs() as logs:
        await chats.once(lambda at: Pass([("a", work)]))
        assert not chats.ready("a", now[0])
        assert chats.held(now[0]) == {"a"}
        now[0] += 1.0
        await chats.once(lambda at: Pass([("a", work)]))
    assert chats.ready("a", now[0])
    assert chats.held(now[0]) == frozenset()
    assert [e["event"] for e in logs] == ["chat_work_failed", "chat_work_recovered"]


@pytest.mark.anyio
async def test_the_chats_that_failed_are_forgotten_once_their_rests_are_long_over() -> None:
    """One entry per chat that ever failed, kept forever, grew without bound on a bot
    whose chats come and go; kept while the chat may still fail again, it counts on."""
    now = [NOW]
    chats = dispatcher()
    chats.clock = lambda: now[0]
    many = [f"chat{n}" for n in range(50)]

    async def broken() -> None:
        raise RuntimeError("a bug")

    with structlog.testing.capture_logs() as logs:
        await chats.once(lambda at: Pass([(c, broken) for c in many]))
        async with anyio.create_task_group() as tg:
            tg.start_soon(chats.run, lambda at: Pass([]))
            now[0] += CHAT_RETRY[0] + CHAT_RETRY[-1]  # as long past the rests as the longest
            await _passes(chats)
            assert len(chats._resting) == len(chats._chat_failures._failing) == 50
            now[0] += 1.0
            await _passes(chats)
            assert chats._resting == {}
            assert chats._chat_failures._failing == {}
            chats.stopping = True
            chats.wake()
        await chats.once(lambda at: Pass([("chat0", broken)]))
    assert chats._resting == {"chat0": (1, now[0] + CHAT_RETRY[0])}  # counts from 1 again
    assert [e["event"] for e in logs].count("chat_work_failed") == 51  # and is logged again


@pytest.mark.anyio
async def test_a_chat_whose_worker_is_under_way_keeps_its_failures_in_a_row() -> None:
    """Its worker, started when the rest was over, may take longer than the longest rest
    (an LLM's retries) and fail again: it rests longer, not 1 s as after a first failure."""
    now = [NOW]
    chats = dispatcher()
    chats.clock = lambda: now[0]
    release = anyio.Event()

    async def broken() -> None:
        raise RuntimeError("a bug")

    async def slow_then_broken() -> None:
        await release.wait()
        raise RuntimeError("a bug")

    await chats.once(lambda at: Pass([("a", broken)]))
    now[0] += CHAT_RETRY[0]
    async with anyio.create_task_group() as tg:
        tg.start_soon(chats.once, lambda at: Pass([("a", slow_then_broken)]))
        tg.start_soon(chats.run, lambda at: Pass([]))
        now[0] += CHAT_RETRY[-1] + 1.0
        await _passes(chats)
        release.set()
        await chats.idle()
        chats.stopping = True
        chats.wake()
    assert chats._resting["a"][0] == 2


async def _passes(chats: Dispatcher) -> None:
    chats.wake()
    for _ in range(50):
        await anyio.lowlevel.checkpoint()


async def _passes_then_stop(chats: Dispatcher, looks: Callable[[], int]) -> int:
    """The passes the woken loop makes over 2,000 turns of the event loop (a loop with
    nothing to do makes one or two; a spinning one, one a turn); then it stops."""
    chats.wake()
    before = looks()
    for _ in range(2000):
        await anyio.lowlevel.checkpoint()
    spun = looks() - before
    chats.stopping = True
    chats.wake()
    return spun
