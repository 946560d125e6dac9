"""The owner's account over stdio (issue 18, items 8, 9 and 11): a restriction holds
what is owed to others, the pace holds a burst, a connection that stays down alerts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from events.model import (
    AccountRestricted,
    OwnerAlerted,
    ReplyFailed,
    ReplyPlanned,
    ReplySent,
    TransportStatus,
)
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import ALICE, OWNER_JID
from tests.e2e.test_alerts import Hook

# Three seconds: a held reply goes stale while the test waits for that, and no other.
CATCH_UP_MINUTES = 0.05


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def test_a_restriction_holds_replies_to_others_and_tells_the_owner(
    make_daemon: MakeDaemon, hook: Hook
) -> None:
    daemon = make_daemon(
        {"alerts": {"webhook": hook.url}, "polling": {"catch_up_minutes": CATCH_UP_MINUTES}}
    )
    daemon.send(
        type="status", state="restricted", until=None, code=463, detail="reach-out timelock"
    )
    daemon.wait_event(AccountRestricted, code=463)
    alert = daemon.next_sent()  # the owner's own chat still gets messages
    assert (alert["chat"], alert["purpose"]) == (OWNER_JID, "alert")
    assert "restricted the account" in alert["text"]

    first = daemon.message("Are you there?")
    held = daemon.wait_event(ReplyPlanned, in_reply_to=first)
    failed = daemon.wait_event(ReplyFailed, reply_id=held.reply_id)  # gone stale while held
    assert failed.final
    assert failed.error.startswith("stale:")
    daemon.send(type="status", state="restricted", code=463)  # the same episode goes on
    daemon.wait_event(AccountRestricted, detail="")
    second = daemon.message("Hello?")
    fresh = daemon.wait_event(ReplyPlanned, in_reply_to=second)
    daemon.expect_no_sent(within=0.5)

    daemon.send(type="status", state="connected")  # the restriction is over
    reply = daemon.next_sent()
    daemon.wait_event(ReplySent, reply_id=fresh.reply_id)
    daemon.wait_event(AccountRestricted, active=False)
    daemon.stop()

    assert (reply["chat"], reply["reply_to"]) == (ALICE, second)
    assert not [s for s in daemon.all_sent if s["reply_to"] == first]
    # "typing…" is sent to the chat too: not while the account was restricted.
    assert [p for p in daemon.shown if p["chat"] == ALICE] == []
    assert [a.kind for a in daemon.find(OwnerAlerted)] == ["restricted"]
    assert [(b["kind"], b["detail"]) for b in hook.bodies] == [("restricted", "reach-out timelock")]


def test_a_burst_waits_for_the_pace_even_across_a_restart(make_daemon: MakeDaemon) -> None:
    """Two sends a minute: the startup message and one reply; the next waits, and a
    restart (which counts the sends the log recorded) does not let it out."""
    daemon = make_daemon({"whatsapp": {"max_sends_per_minute": 2}})
    first = daemon.message("One?")
    assert daemon.next_sent()["reply_to"] == first
    second = daemon.message("Two?")
    owed = daemon.wait_event(ReplyPlanned, in_reply_to=second)
    daemon.expect_no_sent(within=1.0)
    daemon.stop()

    before = daemon.log.last_seq()
    daemon.restart()  # within the minute: no startup message either
    daemon.wait_for(
        lambda r: r.seq > before and isinstance(r.event, TransportStatus)
        and r.event.state == "connected"
    )  # fmt: skip
    daemon.expect_no_sent(within=1.0)
    daemon.stop()

    assert daemon.find(ReplySent, reply_id=owed.reply_id) == []
    assert [f for f in daemon.find(ReplyFailed) if f.reply_id == owed.reply_id] == []


def test_a_connection_down_too_long_alerts_on_the_webhook_once(
    make_daemon: MakeDaemon, hook: Hook
) -> None:
    daemon = make_daemon(
        {"alerts": {"webhook": hook.url, "connection_down_minutes": 0.02}}  # 1.2 s
    )
    daemon.send(type="status", state="disconnected", detail="network down")
    daemon.wait_event(OwnerAlerted, kind="connection_down")  # by the clock: no event came
    daemon.send(type="status", state="connecting")  # the same outage
    daemon.send(type="status", state="connected")
    daemon.wait_event(TransportStatus, state="connected", detail="")
    daemon.stop()

    assert [b["kind"] for b in hook.bodies] == ["connection_down"]
    assert "no connection to WhatsApp for" in hook.bodies[0]["detail"]
    assert "network down" in hook.bodies[0]["detail"]
    # WhatsApp is what failed: the owner's chat gets nothing.
    assert [s for s in daemon.all_sent if s["purpose"] == "alert"] == []
