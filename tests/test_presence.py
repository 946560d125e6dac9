""" "typing…" around an LLM call: best effort, never in the way of the reply.

The transport is modelled as WhatsApp can be: a presence call that never
returns, or one that fails.
"""

from __future__ import annotations

import anyio
import pytest
import structlog

from pipeline.daemon import _presence
from pipeline.daemon._presence import typing

CHAT = "491701111111@s.whatsapp.net"


class Hanging:
    """A transport whose presence calls never return (a stalled connection)."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.called = anyio.Event()

    async def typing(self, chat: str, on: bool) -> None:
        self.calls.append(on)
        self.called.set()
        await anyio.sleep_forever()


class Failing:
    def __init__(self) -> None:
        self.calls: list[bool] = []

    async def typing(self, chat: str, on: bool) -> None:
        self.calls.append(on)
        raise ConnectionError("websocket closed")


@pytest.fixture(autouse=True)
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_presence, "_CALL_DEADLINE", 0.05)


@pytest.mark.anyio
async def test_a_presence_call_that_never_returns_holds_nothing_up() -> None:
    transport = Hanging()
    with structlog.testing.capture_logs() as logs, anyio.fail_after(5):
        async with typing(transport, CHAT, enabled=True):
            # "composing" hangs. Awaited, not slept for: a body outlasting the deadline
            # (a loaded machine) would see "composing" time out too, not cancelled.
            await transport.called.wait()
            ran = True
    assert ran
    assert transport.calls == [True, False]  # "paused" was still tried, and given up on
    assert [e["event"] for e in logs].count("typing_timed_out") == 1


@pytest.mark.anyio
async def test_a_failing_presence_call_is_logged_and_the_body_s_own_error_comes_through() -> None:
    transport = Failing()

    async def call() -> None:
        async with typing(transport, CHAT, enabled=True):
            await anyio.sleep(0.01)
            raise KeyError("answer")

    with structlog.testing.capture_logs() as logs, pytest.raises(KeyError, match="answer"):
        await call()  # as is, not wrapped in an exception group
    assert transport.calls == [True, False]
    assert [e["event"] for e in logs] == ["typing_failed", "typing_failed"]


@pytest.mark.anyio
async def test_turned_off_it_calls_nothing() -> None:
    transport = Failing()
    async with typing(transport, CHAT, enabled=False):
        pass
    assert transport.calls == []
