"""Two daemons of one number on PostgreSQL, one live and one standby: kill -9 loses nothing.

The stdio transport stands in for WhatsApp, and a shared input stands in for
WhatsApp's delivery: every message line goes to every daemon still running.
A standby reads nothing until it is live; then it reads every line it was
given, as WhatsApp hands a newly connected device what was not acknowledged,
and the idempotency keys make the ones already recorded no-ops.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from events.model import LlmRequested, MessageReceived, ReplySent
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import Daemon
from tests.e2e.pg import user_jid, users
from tests.llm_server import FakeLlmServer
from tests.pg_proxy import PgProxy

TAKEOVER_WITHIN = 15.0  # seconds from the kill to the standby's first send (the bound)


class SharedInput:
    """Every message line to every running daemon."""

    def __init__(self, *daemons: Daemon) -> None:
        self.daemons = daemons
        self.sent: list[str] = []

    def message(self, n: int) -> str:
        msg_id = f"F{n}"
        for daemon in self.daemons:
            if daemon.alive:
                daemon.send(id=msg_id, chat=user_jid(n), text=f"Question number {n}?")
        self.sent.append(msg_id)
        return msg_id


def _replies(*daemons: Daemon) -> Counter[str]:
    """Messages sent per message answered. A reply sent by the killed daemon just before
    it could record the send goes again from the standby with the same preset id: one
    message to WhatsApp (and to a stdio reader), so ids are counted, not lines."""
    sent = {
        (s["reply_to"], s["id"]) for d in daemons for s in d.all_sent if s.get("purpose") == "reply"
    }
    return Counter(reply_to for reply_to, _ in sent)


def _until(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_standby_takes_over_within_15_s_of_a_kill_9_with_nothing_lost_or_repeated(
    make_daemon: MakeDaemon, pg_url: str, llm_server: FakeLlmServer
) -> None:
    config = users(12)
    env = {"WABOT_LOG_URL": pg_url}
    active = make_daemon(config, env=env)
    standby = make_daemon(config, env=env, start=False)
    standby.start(expect_startup=False)
    standby.wait_stderr('"standby"', timeout=30)
    feed = SharedInput(active, standby)

    for n in range(5):
        asked = feed.message(n)
        assert active.next_sent()["reply_to"] == asked
    _until(lambda: len(active.find(ReplySent)) == 6, "the five answers to be recorded")
    assert standby.all_sent == []  # never two live: the standby has sent nothing

    gate = llm_server.hold()  # the next answer hangs: the kill lands mid-turn
    held = feed.message(5)
    active.wait_event(LlmRequested, trigger_ids=[held])
    for n in (6, 7):
        feed.message(n)
    active.kill9()
    killed = time.monotonic()
    gate.set()
    for n in (8, 9):
        feed.message(n)  # reach only the standby, queued until it is live

    first = standby.next_sent(timeout=TAKEOVER_WITHIN)  # live: answering what it was owed
    took = time.monotonic() - killed
    assert first["purpose"] in ("reply", "startup")
    assert took < TAKEOVER_WITHIN, f"took over after {took:.1f} s"
    for n in (10, 11):
        feed.message(n)
    _until(lambda: set(_replies(active, standby)) >= set(feed.sent), "every message answered")
    code, stderr = standby.stop()
    assert code == 0, stderr[-2000:]

    replies = _replies(active, standby)
    assert {m: c for m, c in replies.items() if c != 1} == {}  # nothing answered twice
    assert sorted(replies) == sorted(feed.sent)  # nothing lost
    recorded = Counter(e.msg_id for e in standby.find(MessageReceived))
    assert recorded == Counter(feed.sent)  # each recorded once, whoever recorded it
    sent_ids = [s["id"] for d in (active, standby) for s in d.all_sent]
    assert len(sent_ids) == len(set(sent_ids))


def test_a_database_outage_is_waited_out_and_what_arrived_meanwhile_is_answered_once(
    make_daemon: MakeDaemon, pg_url: str
) -> None:
    with PgProxy() as proxy:
        daemon = make_daemon(users(6), env={"WABOT_LOG_URL": proxy.url(pg_url)})
        first = _ask(daemon, 0)
        assert daemon.next_sent(timeout=10)["reply_to"] == first

        proxy.cut()
        during = [_ask(daemon, n) for n in (1, 2, 3)]
        daemon.wait_stderr("log_unavailable_holding", timeout=30)
        proxy.wait_refused(5)  # the daemon keeps trying
        proxy.restore()
        daemon.wait_stderr("held_facts_recorded", timeout=60)
        daemon.wait_stderr("lease_retaken", timeout=30)
        answered = {daemon.next_sent(timeout=30)["reply_to"] for _ in during}
        after = _ask(daemon, 4)
        assert daemon.next_sent(timeout=30)["reply_to"] == after
        code, stderr = daemon.stop()
        recorded = Counter(e.msg_id for e in daemon.find(MessageReceived))

    assert code == 0, stderr[-2000:]
    assert answered == set(during)
    replies = _replies(daemon)
    assert replies == Counter({f"O{n}": 1 for n in range(5)})
    assert recorded == Counter({f"O{n}": 1 for n in range(5)})


def _ask(daemon: Daemon, n: int) -> str:
    return daemon.message(f"Question number {n}?", chat=user_jid(n), id=f"O{n}")
