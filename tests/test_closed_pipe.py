"""Every command piped into a reader that went away ends as ``cat`` does: quietly, of SIGPIPE.

The reader is a real pipe whose read end is closed before the command starts
(what ``… | true`` or ``… | head -1`` leave once they exit), so the first
write fails, however little the command prints.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.conversation import ROOT, Recording
from tests.e2e.harness import daemon_env
from tests.llm_server import TEST_KEY, FakeLlmServer

pytestmark = pytest.mark.slow

PIPELINE = [sys.executable, "-m", "pipeline"]
REPLAY = [sys.executable, str(ROOT / "replay.py")]
COMMANDS = {
    "audit": [*PIPELINE, "audit", "--chat", "Alice"],
    "audit --json": [*PIPELINE, "audit", "--chat", "Alice", "--json"],
    "stats": [*PIPELINE, "stats"],
    "stats --json": [*PIPELINE, "stats", "--json"],
    "stats --all": [*PIPELINE, "stats", "--all"],
    "compact": [*PIPELINE, "compact"],
    "replay --recorded": [*REPLAY, "--chat", "Alice", "--recorded"],
    "replay --all --recorded --json": [*REPLAY, "--all", "--recorded", "--json"],
    "replay --prompt": [*REPLAY, "--chat", "Alice", "--prompt", "Be brief."],
    "replay --all --judge": [*REPLAY, "--all", "--prompt", "Be brief.", "--judge"],
}


def _into_a_closed_pipe(
    argv: list[str], copy: Recording, server: FakeLlmServer
) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    env = daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL=server.base_url)
    try:
        return subprocess.run(
            [*argv, "--store", str(copy.store)],
            cwd=copy.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_reader_that_went_away_ends_the_command_quietly(
    command: str, history_copy: Recording, history_server: FakeLlmServer
):
    done = _into_a_closed_pipe(COMMANDS[command], history_copy, history_server)

    assert done.stderr == ""
    assert done.returncode == -signal.SIGPIPE


def test_a_reader_that_stays_sees_the_whole_output(
    history_copy: Recording, history_server: FakeLlmServer
):
    """The same commands into a pipe that is read: nothing changes for them."""
    env = daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL=history_server.base_url)
    done = subprocess.run(
        [*COMMANDS["audit"], "--store", str(history_copy.store)],
        cwd=history_copy.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert "Hotels in Rome?" in done.stdout
