"""A reply is due at its debounce deadline, whatever the poll interval (issue 9, item 1).

The suites' other daemons poll every 0.2 s, which hid a reply that waited for
the poll: these run the shipped ``polling`` defaults, a 5 s interval.
"""

from __future__ import annotations

import pytest

from events.model import LlmRequested, MessageReceived, ReplySent
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import ALICE

INTERVAL = 5.0  # the shipped polling.interval_seconds
# What the daemon may add to the debounce (a commit, a wake-up, a fold) on a
# loaded machine: a reply that waited for the poll comes a whole interval late.
SLACK = 1.5


@pytest.mark.parametrize("debounce", [2.0, 0.5])
def test_a_reply_is_asked_for_at_its_debounce_deadline_not_at_the_poll(
    make_daemon: MakeDaemon, debounce: float
) -> None:
    d = make_daemon({"polling": {"interval_seconds": INTERVAL, "debounce_seconds": debounce}})
    msg_id = d.message("Which train to Munich?")

    received = d.wait_record(MessageReceived, msg_id=msg_id)
    requested = d.wait_record(LlmRequested, trigger_ids=[msg_id])
    reply = d.next_sent()
    d.wait_event(ReplySent, wa_id=reply["id"])

    waited = requested.ts - received.ts
    assert debounce <= waited < debounce + SLACK < INTERVAL, waited
    assert reply["reply_to"] == msg_id
    assert reply["chat"] == ALICE


def test_a_burst_is_asked_for_a_debounce_after_its_last_message(make_daemon: MakeDaemon) -> None:
    debounce = 2.0
    d = make_daemon({"polling": {"interval_seconds": INTERVAL, "debounce_seconds": debounce}})
    first = d.message("Trip to Spain")
    d.wait_event(MessageReceived, msg_id=first)
    last = d.message("in May")

    last_received = d.wait_record(MessageReceived, msg_id=last)
    requested = d.wait_record(LlmRequested, trigger_ids=[first, last])

    waited = requested.ts - last_received.ts
    assert debounce <= waited < debounce + SLACK, waited
