"""``stats --all`` and ``--number`` on a store's SQLite log: one number, the store's owner."""

from __future__ import annotations

import json

import pytest

from tests.conversation import Recording
from tests.e2e.harness import OWNER, daemon_env, run_cli

pytestmark = pytest.mark.slow


def test_a_store_is_one_number_in_stats_all(history: Recording) -> None:
    env = daemon_env()
    single = run_cli(
        ["stats", "--json", "--store", str(history.store)], cwd=history.workdir, env=env
    )
    every = run_cli(
        ["stats", "--all", "--json", "--store", str(history.store)], cwd=history.workdir, env=env
    )
    text = run_cli(["stats", "--all", "--store", str(history.store)], cwd=history.workdir, env=env)
    assert single.returncode == every.returncode == text.returncode == 0, every.stderr
    report = json.loads(single.stdout)
    summary = json.loads(every.stdout)
    assert summary["numbers"] == {OWNER: report}
    assert summary["totals"]["numbers"] == 1
    assert summary["totals"]["events"] == sum(report["events"].values())
    assert summary["totals"]["replies_sent"] == report["replies_sent"]
    lines = text.stdout.splitlines()
    assert lines[0].split()[:3] == ["number", "chats", "events"]
    assert lines[1].split()[:3] == [
        OWNER,
        str(len(report["chats"])),
        str(summary["totals"]["events"]),
    ]
    assert lines[2].startswith("Total: 1 number, ")


def test_a_number_that_is_not_the_stores_is_one_line(history: Recording) -> None:
    other = run_cli(
        ["audit", "--chat", "Alice", "--number", "491700000099", "--store", str(history.store)],
        cwd=history.workdir,
        env=daemon_env(),
    )
    assert other.returncode == 2
    assert other.stderr == (
        f"wabot: {history.store / 'events.db'} is the log of {OWNER}, not 491700000099"
        " (a store holds one number; several need PostgreSQL)\n"
    )
    same = run_cli(
        ["audit", "--chat", "Alice", "--number", OWNER, "--store", str(history.store)],
        cwd=history.workdir,
        env=daemon_env(),
    )
    assert same.returncode == 0, same.stderr
