"""What installing wabot gives: a ``wabot`` command in its venv, and no build litter in git."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What ``pip wheel .`` and ``python -m build`` leave in the checkout.
BUILD_OUTPUT = (
    "build/lib/pipeline/cli.py",
    "dist/wabot-0.1.0.tar.gz",
    "wabot-0.1.0-py3-none-any.whl",
)


def test_the_wabot_command_is_installed_beside_python_and_runs():
    wabot = Path(sys.executable).parent / "wabot"
    assert wabot.is_file()

    done = subprocess.run(
        [str(wabot), "--help"], capture_output=True, text=True, timeout=60, check=False
    )

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: wabot ")  # named as called, not python -m pipeline
    assert "wabot: a WhatsApp assistant" in done.stdout
    assert "stats" in done.stdout


def test_the_wabot_command_exits_as_python_m_pipeline_does():
    wabot = Path(sys.executable).parent / "wabot"
    argv = ["stats", "--store", "/nonexistent/wabot-store"]
    by_script = subprocess.run(
        [str(wabot), *argv], capture_output=True, text=True, timeout=60, check=False
    )
    by_module = subprocess.run(
        [sys.executable, "-m", "pipeline", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert by_script.returncode == by_module.returncode == 2
    assert by_script.stderr == by_module.stderr != ""


def test_build_output_is_ignored_by_git():
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", *BUILD_OUTPUT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.stdout.split() == list(BUILD_OUTPUT)
