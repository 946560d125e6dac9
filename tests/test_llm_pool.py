"""LlmPool: a client a config reload replaced closes once no call uses it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from events.model import ChatTurn
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.llm import LlmClient, LlmPool
from tests.llm_server import TEST_KEY, FakeLlmServer

pytestmark = pytest.mark.anyio

ASK = [ChatTurn("user", "What is new?")]


@pytest.fixture
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as made:
        yield made


def loaded(server: FakeLlmServer, timeout: float) -> LoadedConfig:
    """A config whose LLM and speech clients differ from another ``timeout``'s."""
    endpoint = {"base_url": f"{server.base_url}/v1", "timeout_seconds": timeout}
    config = config_from_dict(
        {
            "whatsapp": {"phone_number": "491700000000"},
            "llm": {"provider": "openai", "model": "m", "web_search": False, **endpoint},
            "voice_replies": endpoint,
        }
    )
    secrets = Secrets(api_key=TEST_KEY, speech_key=TEST_KEY)
    return LoadedConfig(config=config, hash=str(timeout), path="app.json", secrets=secrets)


def http_of(client: object) -> httpx.AsyncClient:
    http: Any = client._http  # type: ignore[attr-defined]
    assert isinstance(http, httpx.AsyncClient)
    return http


@asynccontextmanager
async def running(pool: LlmPool) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(pool.run)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()
    await pool.aclose()


async def test_clients_reloads_replaced_are_closed_with_their_connections(
    server: FakeLlmServer,
) -> None:
    pool = LlmPool()
    async with running(pool):
        clients: list[LlmClient] = []
        speakers = []
        for n in range(1, 6):  # each reload changes the timeout: new clients
            clients.append(pool.client(loaded(server, n)))
            await clients[-1].complete("m", ASK, {})  # a pooled connection stays open
            speakers.append(pool.synthesizer(loaded(server, n)))
            await speakers[-1].speak("hi", voice="alloy")
        await anyio.wait_all_tasks_blocked()
        assert [http_of(c).is_closed for c in clients] == [True] * 4 + [False]
        assert [http_of(s).is_closed for s in speakers] == [True] * 4 + [False]


async def test_a_call_in_flight_across_a_reload_completes_then_its_client_closes(
    server: FakeLlmServer,
) -> None:
    pool = LlmPool()
    async with running(pool), anyio.create_task_group() as tg:
        old = pool.client(loaded(server, 1))
        gate = server.hold()
        answers: list[str] = []
        answered = anyio.Event()

        async def call() -> None:
            answers.append((await old.complete("m", ASK, {})).content)
            answered.set()

        tg.start_soon(call)
        assert await anyio.to_thread.run_sync(server.wait_for_requests, 1)
        new = pool.client(loaded(server, 2))  # the reload, while the call waits for its answer
        await anyio.wait_all_tasks_blocked()
        assert not http_of(old).is_closed
        gate.set()
        with anyio.fail_after(5):
            await answered.wait()
        assert answers == ["Echo: What is new?"]
        await anyio.wait_all_tasks_blocked()
        assert http_of(old).is_closed
        assert not http_of(new).is_closed
