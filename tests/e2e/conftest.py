"""Fixtures of the end-to-end suite: a fake LLM server and daemons wired to it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.e2e.harness import Daemon, daemon_env, write_config
from tests.e2e.pg import pg_url  # noqa: F401  (a fixture of the PostgreSQL tests)
from tests.llm_server import TEST_KEY, FakeLlmServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.slow)


class MakeDaemon(Protocol):
    def __call__(
        self,
        overrides: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str | None] | None = None,
        server: FakeLlmServer | None = None,
        start: bool = True,
        umask: int = -1,
    ) -> Daemon: ...


@pytest.fixture
def llm_server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as server:
        yield server


@pytest.fixture
def make_daemon(tmp_path: Path, llm_server: FakeLlmServer) -> Iterator[MakeDaemon]:
    """A factory of daemons on fresh stores; every one is killed at teardown.

    ``overrides`` merge into the base app.json; ``env`` entries replace the
    default environment (``PERPLEXITY_API_KEY=test-key``, ``LLM_BASE_URL`` of
    the server), a None value removes one; ``umask`` is the daemon's (default: ours).
    """
    made: list[Daemon] = []

    def make(
        overrides: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str | None] | None = None,
        server: FakeLlmServer | None = None,
        start: bool = True,
        umask: int = -1,
    ) -> Daemon:
        workdir = tmp_path / f"daemon{len(made)}"
        workdir.mkdir()
        config = write_config(workdir / "app.json", overrides)
        base: dict[str, str | None] = {
            "PERPLEXITY_API_KEY": TEST_KEY,
            "LLM_BASE_URL": (server or llm_server).base_url,
        }
        daemon = Daemon(workdir, config, daemon_env(**{**base, **(env or {})}), umask=umask)
        made.append(daemon)
        return daemon.start() if start else daemon

    yield make
    for daemon in made:
        daemon.close()


@pytest.fixture
def daemon(make_daemon: MakeDaemon) -> Daemon:
    """A running daemon on the base config, its startup message consumed."""
    return make_daemon()
