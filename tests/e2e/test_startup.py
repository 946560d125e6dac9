"""What a start tells the owner: one startup message, however often the bot restarts.

A crash loop (systemd restarting a bot that dies at once) used to message the
owner at every start (issue 9, item 11).
"""

from __future__ import annotations

import json

from events.model import ReplyPlanned, ReplySent
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import run_cli


def test_a_crash_loop_messages_the_owner_once(make_daemon: MakeDaemon) -> None:
    d = make_daemon()
    assert d.startup is not None
    for _ in range(3):
        d.kill9()
        d.restart()
        assert d.startup is None
    d.stop()
    d.restart()  # a clean restart within the quiet time: nothing either
    assert d.startup is None

    msg_id = d.message("Still there?")
    reply = d.next_sent()
    d.wait_event(ReplySent, wa_id=reply["id"])
    d.stop()

    assert reply["reply_to"] == msg_id
    assert len(d.find(ReplyPlanned, purpose="startup")) == 1
    assert [s["purpose"] for s in d.all_sent] == ["startup", "reply"]


def test_the_daemon_runs_on_uvloop_unless_told_asyncio(make_daemon: MakeDaemon) -> None:
    """uvloop is a dependency and the default; ``WABOT_EVENT_LOOP=asyncio`` is the way back,
    and either way the bot answers and the "started" line says which loop runs."""
    for asked, runs in ((None, "uvloop"), ("asyncio", "asyncio")):
        d = make_daemon(env={"WABOT_EVENT_LOOP": asked})
        started = json.loads(d.wait_stderr('"event": "started"'))
        assert started["event_loop"] == runs
        d.message("Still there?")
        assert d.next_sent()["purpose"] == "reply"
        assert d.stop()[0] == 0


def test_an_unknown_event_loop_is_a_one_line_usage_error(make_daemon: MakeDaemon) -> None:
    d = make_daemon(env={"WABOT_EVENT_LOOP": "trio"}, start=False)
    args = ["run", "--transport", "stdio", "--config", str(d.config), "--store", str(d.store)]
    done = run_cli(args, cwd=d.workdir, env=d.env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "wabot: WABOT_EVENT_LOOP='trio': expected one of uvloop, asyncio"
    ]
