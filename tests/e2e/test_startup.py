"""What a start tells the owner: one startup message, however often the bot restarts.

A crash loop (systemd restarting a bot that dies at once) used to message the
owner at every start (issue 9, item 11).
"""

from __future__ import annotations

from events.model import ReplyPlanned, ReplySent
from tests.e2e.conftest import MakeDaemon


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
