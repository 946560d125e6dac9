"""A WhatsApp outage, played on stdin: replies owed meanwhile go out when it is back."""

from __future__ import annotations

from events.model import ReplyFailed, ReplyPlanned, ReplySent, TransportStatus
from tests.e2e.harness import Daemon


def test_a_reply_owed_during_an_outage_is_sent_when_the_connection_returns(
    daemon: Daemon,
) -> None:
    daemon.send(type="status", state="disconnected", detail="network down")
    daemon.wait_event(TransportStatus, state="disconnected")
    msg_id = daemon.message("Are you there?")
    planned = daemon.wait_event(ReplyPlanned, in_reply_to=msg_id)
    daemon.expect_no_sent(within=0.5)  # the log shows it owed; nothing goes out while down

    daemon.send(type="status", state="connected")
    reply = daemon.next_sent()
    daemon.wait_event(ReplySent, reply_id=planned.reply_id)
    daemon.stop()

    assert (reply["id"], reply["reply_to"]) == (planned.wa_id, msg_id)
    assert daemon.find(ReplyFailed) == []
