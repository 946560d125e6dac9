"""A history across four chats, recorded once by the real daemon, with the owner's own replies.

Alice asks twice and the owner answers her second question by hand (a
takeover); Bob asks twice; in the Family group Bob asks the bot and the owner
answers by hand; the owner asks the bot in their own chat. So six LLM turns,
two of them followed by a reference answer from the owner.
"""

from __future__ import annotations

from pathlib import Path

from events.model import LlmRequested, MessageSkipped
from tests.conversation import Recording
from tests.e2e.harness import (
    ALICE,
    BOB,
    GROUP,
    OWNER_JID,
    Daemon,
    base_config,
    daemon_env,
    write_config,
)
from tests.llm_server import TEST_KEY, FakeLlmServer

BOB_ENTITY = {"type": "user", "phone": "491702222222", "name": "Bob"}
ALICE_OWNER_REPLY = "Try the Lungarno, 180 EUR a night, I stayed there in May."
FAMILY_OWNER_REPLY = "Pasta tonight, I am buying the <tomatoes> & basil."
# (chat, sender, text): the six turns, in the order they are asked.
ASKED = (
    (ALICE, ALICE, "Hotels in Rome?"),
    (ALICE, ALICE, "And in Florence?"),
    (BOB, BOB, "Is the museum open on Monday?"),
    (BOB, BOB, "What about Sunday?"),
    (GROUP, BOB, "bot, what should we cook?"),
    (OWNER_JID, OWNER_JID, "Which RAM fits my laptop?"),
)


def record_history(workdir: Path, server: FakeLlmServer) -> Recording:
    """Record the history into ``workdir`` (app.json and store/) and stop the daemon."""
    workdir.mkdir(parents=True)
    config = write_config(workdir / "app.json", _overrides())
    env = daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL=server.base_url)
    daemon = Daemon(workdir, config, env).start()
    try:
        for n, (chat, sender, text) in enumerate(ASKED):
            ask(daemon, chat, sender, text)
            if n == 1:
                by_hand(daemon, ALICE, ALICE_OWNER_REPLY)
            if chat == GROUP:
                by_hand(daemon, GROUP, FAMILY_OWNER_REPLY)
        code, _ = daemon.stop()
        assert code == 0
    finally:
        daemon.close()
    return Recording(workdir, len(server.requests), ())


def _overrides() -> dict[str, object]:
    entities = base_config()["monitored_entities"]
    return {"monitored_entities": [entities[0], BOB_ENTITY, *entities[1:]]}


def ask(daemon: Daemon, chat: str, sender: str, text: str) -> str:
    msg_id = daemon.message(
        text, chat=chat, sender=sender, push_name="Bob" if sender == BOB else None
    )
    assert daemon.next_sent()["reply_to"] == msg_id
    daemon.wait_event(LlmRequested, trigger_ids=[msg_id])
    return msg_id


def by_hand(daemon: Daemon, chat: str, text: str) -> None:
    """The owner writes in ``chat`` from the phone: recorded, and the bot stays silent."""
    msg_id = daemon.message(text, chat=chat, from_me=True)
    daemon.wait_event(MessageSkipped, msg_id=msg_id, reason="takeover")
