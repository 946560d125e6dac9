"""The console's replay pages on every kind of experiment ``replay.py`` writes.

One chat re-run, a re-run across all chats, and a judged one, each written by
the real ``replay.py`` on a history the real daemon recorded; the console
lists and opens each of them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pipeline.tools.web import Console, create_app
from tests.conversation import Recording, run_replay
from tests.history import ALICE_OWNER_REPLY
from tests.llm_server import FakeLlmServer, judge_question, untimed, verdict
from tests.web.conftest import text_of
from tests.web.test_pages import asgi_client, page

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
BRIEF = "Be brief."


def _brief_and_judged(body: dict[str, Any]) -> str | None:
    """ "Short: …" under the new prompt; the judge prefers it, but for Florence."""
    q = judge_question(body)
    if q is None:
        instructions = untimed(str(body.get("instructions", "")))
        return f"Short: {body['input'][-1]['content']}" if instructions.endswith(BRIEF) else None
    new_is_a = q.a.startswith("Short")
    if "Florence" in q.latest:
        return verdict("B" if new_is_a else "A", "the old one names hotels")
    return verdict("A" if new_is_a else "B", "shorter")


@pytest.fixture
def experiments(
    history_copy: Recording, history_server: FakeLlmServer
) -> dict[str, tuple[Recording, str]]:
    """The experiment file of each kind of run, by kind."""
    history_server.respond(_brief_and_judged)
    runs = {
        "chat": ["--chat", "Alice", "--prompt", BRIEF],
        "all": ["--all", "--prompt", BRIEF],
        "judged": ["--all", "--prompt", BRIEF, "--judge", "--persona", "Terse."],
    }
    found: dict[str, tuple[Recording, str]] = {}
    try:
        for kind, args in runs.items():
            done = run_replay(args, history_copy, history_server, columns=150)
            assert done.returncode == 0, done.stderr
            names = {p.name for p in (history_copy.store / "replays").glob("*.json")}
            (new,) = names - {name for _, name in found.values()}
            found[kind] = (history_copy, new)
    finally:
        history_server.respond(None)
    return found


@pytest.fixture
async def client(history_copy: Recording) -> AsyncIterator[httpx.AsyncClient]:
    console = Console(history_copy.store)
    async with asgi_client(create_app(console, token=None)) as c:
        yield c
    console.close()


def _listed(listing: str, name: str) -> str:
    row = re.search(rf'<tr>\s*<td><a href="/replays/{re.escape(name)}">.*?</tr>', listing, re.S)
    assert row is not None, name
    return text_of(row.group(0))


async def test_every_kind_of_experiment_is_listed_with_its_chats_and_settings(
    experiments: dict[str, tuple[Recording, str]], client: httpx.AsyncClient
):
    listing = await page(client, "/replays")

    rows = {kind: _listed(listing, name) for kind, (_, name) in experiments.items()}
    assert "not a replay experiment" not in text_of(listing)
    assert "None" not in text_of(listing)
    assert rows["chat"].split()[1] == "Alice"
    assert "Alice, Bob, Family, Me" in rows["all"]
    assert "prompt=Be brief." in rows["all"]
    assert "persona=Terse." in rows["judged"]
    assert "judged: new better 5, tie 0, new worse 1, unjudged 0" in rows["judged"]
    assert " 2 " in rows["chat"]
    assert " 6 " in rows["all"]


async def test_a_judged_experiment_across_chats_opens_turn_by_turn(
    experiments: dict[str, tuple[Recording, str]], client: httpx.AsyncClient
):
    _, name = experiments["judged"]

    text = text_of(await page(client, f"/replays/{name}"))

    assert "not a replay experiment" not in text
    assert "Chats Alice, Bob, Family, Me · 6 turns" in text
    assert "None" not in text
    assert "new better 5, tie 0, new worse 1, unjudged 0" in text
    # Worse first, as replay.py saved them, each with its chat and the judge's word.
    florence = text.index("Alice · turn 2")
    assert florence < text.index("Alice · turn 1")
    assert "worse: the old one names hotels" in text[florence:]
    assert f"owner wrote: {ALICE_OWNER_REPLY}" in text[florence:]
    assert "Short: And in Florence?" in text
    assert "better: shorter" in text


async def test_an_experiment_across_chats_without_a_judge_opens(
    experiments: dict[str, tuple[Recording, str]], client: httpx.AsyncClient
):
    _, name = experiments["all"]

    text = text_of(await page(client, f"/replays/{name}"))

    assert "Chats Alice, Bob, Family, Me · 6 turns" in text
    assert "Bob · turn 1" in text
    assert "Short: Is the museum open on Monday?" in text
    assert "judge" not in text.casefold()
