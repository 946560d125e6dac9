import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conversation import Recording
from tests.history import record_history
from tests.llm_server import FakeLlmServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def history_server() -> Iterator[FakeLlmServer]:
    """The fake LLM server the recorded history (and the replays of it) talk to."""
    with FakeLlmServer() as server:
        yield server


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory, history_server: FakeLlmServer) -> Recording:
    """Four chats recorded once by the real daemon, with takeovers (tests/history.py)."""
    return record_history(tmp_path_factory.mktemp("history") / "recorded", history_server)


@pytest.fixture
def history_copy(history: Recording, tmp_path: Path) -> Recording:
    """A copy of the history a test may change."""
    return history.copy(tmp_path / "history")


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def loose_umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """A umask that would leave new files readable by others (the usual 022, and none)."""
    old = os.umask(request.param)
    try:
        yield int(request.param)
    finally:
        os.umask(old)
