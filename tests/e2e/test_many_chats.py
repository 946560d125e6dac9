"""Many chats at once through the real daemon: each message is asked and answered once.

Concurrent chats append concurrently; their commits can come back to the
daemon in another order than they were made. A chat must still see its own
records at once (else it takes its answered message for one asked before a
restart and asks again), which the bench's throughput run once showed.
"""

from __future__ import annotations

from collections import Counter

from events.model import LlmRequested, ReplySent
from tests.e2e.conftest import MakeDaemon
from tests.e2e.pg import user_jid, users

CHATS = 60
ROUNDS = 3


def test_every_message_of_many_chats_at_once_is_asked_and_answered_once(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon(
        {
            **users(CHATS),
            "polling": {"debounce_seconds": 0, "max_concurrent_chats": 8},
            "whatsapp": {"max_sends_per_minute": 1_000_000},
            "limits": {"replies_per_chat_per_hour": 3600},
        }
    )
    ids: list[str] = []
    for r in range(ROUNDS):
        wave = [f"W{r}-{n}" for n in range(CHATS)]
        daemon.send_raw(
            "\n".join(
                f'{{"chat": "{user_jid(n)}", "id": "{msg_id}", "text": "question {msg_id}"}}'
                for n, msg_id in enumerate(wave)
            )
        )
        sent = [daemon.next_sent(timeout=30) for _ in wave]
        assert {line["reply_to"] for line in sent} == set(wave)
        ids += wave
    for line in sent:  # a sent line is printed before its send is recorded
        daemon.wait_event(ReplySent, wa_id=line["id"])

    asked = Counter(t for r in daemon.find(LlmRequested) for t in r.trigger_ids)
    assert asked == Counter(dict.fromkeys(ids, 1))
    assert len(daemon.find(ReplySent)) == len(ids) + 1  # and the startup message
