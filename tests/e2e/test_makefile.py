"""``make run ARGS="--transport stdio"`` in a pipe: stdout carries the JSON lines and nothing else.

Make echoes each recipe line on stdout unless told not to, and the venv's
install step runs before ``run`` whenever pyproject.toml changed: neither may
put a line into the stream another program parses. The venv is the one the
tests run in; ``STAMP`` points make at a stamp of the test's own, fresh (the
install is done) or missing (the install step runs, with a ``python`` that
prints on stdout when asked to install, as pip may).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import pytest

from tests.e2e.harness import ALICE, LINE_KEYS, daemon_env, write_config
from tests.llm_server import TEST_KEY, FakeLlmServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
NOISY_PIP = """#!/bin/sh
if [ "$1 $2" = "-m pip" ]; then echo "Successfully installed wabot-0.1.0"; exit 0; fi
exec {python} "$@"
"""


def _lines(stream: IO[str], into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _run_make(
    tmp_path: Path, server: FakeLlmServer, *variables: str, make_level: str | None = None
) -> list[str]:
    """``make run`` over stdio with one message in; every stdout line until it stopped.

    ``make_level`` is what a make above exports (CI runs the tests under ``make
    test``); GNU make before 4.4 then prints "Entering directory" on stdout, and
    only ``--no-print-directory`` on the command line stops it (README says so).
    """
    config = write_config(tmp_path / "app.json")
    args = f"--transport stdio --config {config} --store {tmp_path / 'store'}"
    env = daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL=server.base_url)
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(name, None)  # the test says which make is above, not the one running pytest
    command = ["make", "run", f"ARGS={args}", *variables]
    if make_level is not None:
        env["MAKELEVEL"] = make_level
        command.insert(1, "--no-print-directory")
    make = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # a process group: SIGTERM reaches make and the daemon
    )
    assert make.stdin is not None
    assert make.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(make.stdout, lines), daemon=True)
    reader.start()
    out: list[str] = []
    try:
        make.stdin.write(json.dumps({"chat": ALICE, "id": "M1", "text": "Hello?"}) + "\n")
        make.stdin.flush()
        while (line := lines.get(timeout=60)) is not None:
            out.append(line)
            if json.loads(line).get("reply_to") == "M1":
                break
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(30)
        reader.join(10)
        # Both pipes are closed whatever failed above: a leaked one would be finalised
        # in whichever later test the garbage collector runs in, and fail that test.
        with contextlib.suppress(BrokenPipeError):  # the line make exited without reading
            make.stdin.close()
        make.stdout.close()
    while not lines.empty() and (line := lines.get_nowait()) is not None:
        out.append(line)
    return out


@pytest.mark.parametrize("make_level", [None, "1"], ids=["alone", "under-another-make"])
def test_make_run_prints_only_the_transport_s_json_lines(
    tmp_path: Path, llm_server: FakeLlmServer, make_level: str | None
):
    stamp = tmp_path / "installed"
    stamp.touch()  # newer than pyproject.toml: nothing to install

    out = _run_make(tmp_path, llm_server, f"STAMP={stamp}", make_level=make_level)

    assert {json.loads(line)["type"] for line in out} <= set(LINE_KEYS)
    assert json.loads(out[-1])["reply_to"] == "M1"


def test_the_install_step_before_run_prints_nothing_on_stdout(
    tmp_path: Path, llm_server: FakeLlmServer
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text(NOISY_PIP.format(python=sys.executable))
    python.chmod(0o700)
    stamp = tmp_path / "installed"  # missing: make runs the install step first

    out = _run_make(tmp_path, llm_server, f"STAMP={stamp}", f"BIN={bin_dir}", make_level="1")

    assert stamp.is_file()
    assert {json.loads(line)["type"] for line in out} <= set(LINE_KEYS)
    assert json.loads(out[-1])["reply_to"] == "M1"
