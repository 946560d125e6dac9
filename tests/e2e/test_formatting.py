"""Replies read as WhatsApp formats them (docs/config.md, ``whatsapp.formatting``).

The model answers in Markdown; over the wire it becomes WhatsApp's own marks, a
long answer is split between spans, and ``plain`` sends the answer as written.
The log keeps what the model said (``LlmCompleted``), so replay and audit see both.
"""

from __future__ import annotations

import re

from events.model import LlmCompleted, ReplyPlanned
from tests.e2e.conftest import MakeDaemon
from tests.llm_server import FakeLlmServer

ANSWER = "## Rome in May\n**Book early** and *walk*: see [the guide](https://guide.example/r_o__m)."


def test_the_model_s_markdown_is_sent_as_whatsapp_formatting(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    llm_server.respond(lambda body: ANSWER)
    d = make_daemon()

    d.message("Plan Rome")
    sent = d.next_sent()

    assert sent["text"].startswith(
        "*Rome in May*\n*Book early* and _walk_: see the guide (https://guide.example/r_o__m).\n\n"
        "Sources:\n[1] "
    )
    assert d.wait_event(LlmCompleted).content == ANSWER  # the log keeps the model's words
    d.stop()


def test_plain_sends_the_answer_as_written(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    llm_server.respond(lambda body: ANSWER)
    d = make_daemon({"whatsapp": {"formatting": "plain"}})

    d.message("Plan Rome")

    assert d.next_sent()["text"].startswith(ANSWER + "\n\nSources:")
    d.stop()


def test_a_long_answer_is_split_between_spans(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    # Sentence ends and commas inside the bold spans are the best breaks a plain split would take.
    day = "**Day {n}. Colosseum, Forum.** Walk, eat. [Map](https://maps.example/day{n}) "
    llm_server.respond(lambda body: "".join(day.format(n=n) for n in range(1, 13)))
    d = make_daemon({"whatsapp": {"max_message_chars": 200}})

    msg = d.message("Plan twelve days")
    d.wait_event(ReplyPlanned, purpose="reply")  # every part is planned in one commit
    parts = [p.text for p in d.find(ReplyPlanned, purpose="reply", in_reply_to=msg)]

    assert len(parts) > 3
    bodies = [re.sub(r"^\(\d+/\d+\) ", "", p) for p in parts]
    assert all(len(p) <= 200 for p in parts)
    assert all(b.count("*") % 2 == 0 for b in bodies), bodies
    urls = [u for b in bodies for u in re.findall(r"https://\S*", b)]
    assert all(re.fullmatch(r"https://maps\.example/day\d+\)", u) for u in urls), urls
    assert len(urls) == 12
    d.stop()
