"""The daily budget holds with many chats answered at once (issue 9, item 10).

Every chat's turn checked today's spend before any of the calls in flight had
reported its cost, so eight concurrent chats spent eight calls past the limit.
"""

from __future__ import annotations

from events.model import LlmCompleted, MessageSkipped, OwnerAlerted, Recorded, ReplyPlanned
from tests.e2e.conftest import MakeDaemon
from tests.llm_server import FakeLlmServer, Reply

CALL_COST = 0.0061  # the fake server's cost of a call with web search
BUDGET = 0.03
USERS = [f"4917030000{n:02d}@s.whatsapp.net" for n in range(10)]


def test_concurrent_chats_spend_at_most_one_call_past_the_daily_budget(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    # Answers take a while, so calls overlap as they do against a real provider.
    llm_server.script(*[Reply(delay=0.3)] * len(USERS))
    users = [{"type": "user", "jid": jid, "name": f"User {n}"} for n, jid in enumerate(USERS)]
    d = make_daemon(
        {
            "monitored_entities": [*users, {"type": "self", "name": "Me"}],
            "limits": {"daily_budget_usd": BUDGET},
            "polling": {"max_concurrent_chats": 8},
        }
    )
    ids = {d.message("Plan my week in Rome", chat=jid) for jid in USERS}

    decided: set[str] = set()

    def all_decided(rec: Recorded) -> bool:
        ev = rec.event
        if isinstance(ev, MessageSkipped):
            decided.add(ev.msg_id)
        elif isinstance(ev, ReplyPlanned) and ev.purpose == "reply":
            decided.update(ev.trigger_ids)
        return decided >= ids

    d.wait_for(all_decided, timeout=30)

    spent = sum(c.usage.cost_usd or 0.0 for c in d.find(LlmCompleted))
    assert spent <= BUDGET + CALL_COST
    # Not starved either: the calls in flight were reserved at what calls cost.
    assert spent > BUDGET
    answered = len(d.find(LlmCompleted))
    skipped = d.find(MessageSkipped, reason="budget")
    assert answered + len(skipped) == len(USERS)
    d.wait_event(OwnerAlerted, kind="budget")
    d.stop()
