"""Judged replay across chats, on a history the real daemon recorded (issue 13)."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conversation import ROOT, Recording, run_replay
from tests.e2e.harness import daemon_env
from tests.history import ALICE_OWNER_REPLY, ASKED, FAMILY_OWNER_REPLY
from tests.llm_server import TEST_KEY, FakeLlmServer, Reply, judge_question, untimed, verdict

pytestmark = pytest.mark.slow
BRIEF = "Be brief."
TURNS = len(ASKED)


@pytest.fixture
def server(history_server: FakeLlmServer) -> FakeLlmServer:
    return history_server


@pytest.fixture
def copy(history_copy: Recording, server: FakeLlmServer) -> Iterator[Recording]:
    server.respond(_brief_and_judged)
    yield history_copy
    server.respond(None)


def _new_reply(body: dict[str, Any]) -> str | None:
    """Under the new prompt the fake model answers "Short: …" instead of "Echo: …"."""
    if untimed(str(body.get("instructions", ""))).endswith(BRIEF):
        return f"Short: {body['input'][-1]['content']}"
    return None


def _brief_and_judged(body: dict[str, Any]) -> str | None:
    """One judge behaviour per turn, picked by the user's message."""
    q = judge_question(body)
    if q is None:
        return _new_reply(body)
    new_is_a = q.a.startswith("Short")
    if "Florence" in q.latest:  # consistent, prefers the recorded reply
        return verdict("B" if new_is_a else "A", "the old one names hotels")
    if "Monday" in q.latest:  # position-biased: always the first reply
        return verdict("A", "the first is better")
    if "Sunday" in q.latest:  # never readable
        return "I think the first one."
    if "cook" in q.latest:
        return verdict("tie", "both fine")
    if "RAM" in q.latest and not q.repair:  # readable only when asked again
        return '```json\n{"verdict": A}'
    return verdict("A" if new_is_a else "B", "shorter")


def _judge_requests(server: FakeLlmServer, since: int) -> list[Any]:
    return [q for r in server.requests[since:] if (q := judge_question(r.json)) is not None]


def test_judged_replay_across_chats_counts_verdicts_and_reports(
    copy: Recording, server: FakeLlmServer
):
    before = len(server.requests)

    done = run_replay(["--all", "--prompt", BRIEF, "--judge", "--json"], copy, server)

    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    judged = {t["user"].split(": ")[-1]: t["judge"] for t in doc["turns"]}
    assert {q: j["verdict"] for q, j in judged.items()} == {
        "Hotels in Rome?": "win",
        "And in Florence?": "loss",
        "Is the museum open on Monday?": "tie",
        "What about Sunday?": "unjudged",
        "bot, what should we cook?": "tie",
        "Which RAM fits my laptop?": "win",
    }
    assert judged["Is the museum open on Monday?"]["reason"].startswith("the two orders disagree")
    sunday = judged["What about Sunday?"]
    assert [o["raw"] for o in sunday["orders"]] == [["I think the first one."] * 2] * 2
    assert [o["calls"] for o in judged["Which RAM fits my laptop?"]["orders"]] == [2, 2]
    assert doc["turns"][0]["user"] == "And in Florence?"  # worse first
    report = doc["report"]
    assert report["judge"]["verdicts"] == {"win": 2, "tie": 2, "loss": 1, "unjudged": 1}
    rate = report["judge"]["win_rate"]
    assert (rate["wins"], rate["decided"]) == (2, 3)
    assert rate["ci95"] == pytest.approx([0.2077, 0.9385], abs=5e-5)
    # Every turn is judged in both orders; Sunday and the RAM question twice each.
    judge_calls = 2 * TURNS + 2 + 2
    assert report["judge"]["calls"] == judge_calls
    assert report["judge"]["cost_usd"] == pytest.approx(judge_calls * 0.0011)
    assert report["per_turn"]["cost_usd"]["old"] == pytest.approx(0.0061)
    assert report["per_turn"]["reply_chars"]["new"] > report["per_turn"]["reply_chars"]["old"]
    assert report["spent_now_usd"] == pytest.approx(TURNS * 0.0061 + judge_calls * 0.0011)
    assert len(server.requests) - before == TURNS + judge_calls

    questions = _judge_requests(server, before)
    assert all(
        not r.json.get("tools") and r.json["temperature"] == 0
        for r in server.requests[before:]
        if judge_question(r.json)
    )
    references = {q.latest.split(": ")[-1]: q.reference for q in questions}
    assert references["And in Florence?"] == ALICE_OWNER_REPLY
    assert references["bot, what should we cook?"] == FAMILY_OWNER_REPLY
    assert references["Hotels in Rome?"] is None
    shown_first = {(q.latest, q.a.split(":")[0]) for q in questions if not q.repair}
    assert len(shown_first) == 2 * TURNS  # each turn once with each reply as A

    replays = copy.store / "replays"
    page = Path(doc["files"]["html"])
    assert Path(doc["files"]["json"]) == replays / f"{doc['experiment']}.json"
    assert stat.S_IMODE(replays.stat().st_mode) == 0o700
    for path in (page, Path(doc["files"]["json"])):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    html = page.read_text()
    assert html.index("And in Florence?") < html.index("Hotels in Rome?")
    assert "Wilson" in html
    assert "I think the first one." in html
    assert "buying the &lt;tomatoes&gt; &amp; basil" in html  # the owner's words, escaped
    assert "<tomatoes>" not in html


def test_a_second_run_is_served_by_the_cache(copy: Recording, server: FakeLlmServer):
    args = ["--chat", "Alice", "--chat", "Bob", "--prompt", BRIEF, "--judge"]
    first = run_replay(args, copy, server, columns=150)
    before = len(server.requests)

    again = run_replay(args, copy, server, columns=150)

    assert first.returncode == again.returncode == 0, again.stderr
    # Only the judge's unreadable answers (Sunday, both orders, twice each) are asked again.
    asked = _judge_requests(server, before)
    assert len(server.requests) - before == len(asked) == 4
    assert {q.latest for q in asked} == {"What about Sunday?"}
    assert "4 turns replayed (4 cached, 0 failed)" in again.stdout
    assert "spent by this run $0.0044" in again.stdout
    head = again.stdout.split("\n\n")[0]
    assert "new better 1, tie 1, new worse 1, unjudged 1" in head
    assert "95 % CI" in head
    worse = again.stdout.split("Worse with the new settings (1):")[1]
    assert "── Alice · turn 2" in worse.splitlines()[2]
    assert f"owner wrote: {ALICE_OWNER_REPLY}" in worse
    assert "Echo: And in Florence?" in worse
    assert "│ Short: And in Florence?" in worse
    assert "judge (worse): the old one names hotels" in worse
    assert again.stdout.rstrip().endswith(
        f"python replay.py apply {again.stdout.split('experiment ')[-1].split()[0]}"
    )


def test_sample_and_limit_choose_turns_reproducibly(copy: Recording, server: FakeLlmServer):
    def chosen(*extra: str) -> list[int]:
        done = run_replay(["--all", "--prompt", BRIEF, "--json", *extra], copy, server)
        assert done.returncode == 0, done.stderr
        return [t["seq"] for t in json.loads(done.stdout)["turns"]]

    everything = chosen()
    sampled = chosen("--sample", "3", "--seed", "5")

    assert len(everything) == TURNS
    assert chosen("--sample", "3", "--seed", "5") == sampled
    assert len(sampled) == 3
    assert set(sampled) <= set(everything)
    assert chosen("--limit", "2") == sorted(everything)[:2]


def test_a_killed_run_resumes_from_the_cache(copy: Recording, server: FakeLlmServer):
    args = ["--all", "--prompt", BRIEF, "--judge", "--concurrency", "1", "--json"]
    before = len(server.requests)
    answered = TURNS + 2  # every replay and the first judge question, then the run hangs
    gate = threading.Event()
    server.script(*[Reply()] * answered, Reply(release=gate))
    env = daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL=server.base_url)
    killed = subprocess.Popen(
        [sys.executable, str(ROOT / "replay.py"), *args, "--store", str(copy.store)],
        cwd=copy.workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert server.wait_for_requests(before + answered + 1, timeout=20)
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=10) == -signal.SIGKILL
    finally:
        gate.set()
        if killed.poll() is None:
            killed.kill()
    first_run = server.requests[before:]

    done = run_replay(args, copy, server)

    assert done.returncode == 0, done.stderr
    second_run = server.requests[before + len(first_run) :]
    asked_again = {r.raw for r in second_run} & {r.raw for r in first_run[:answered]}
    assert asked_again == set()
    assert first_run[answered].raw in {r.raw for r in second_run}  # unanswered: asked again
    doc = json.loads(done.stdout)
    assert doc["summary"]["cached"] == TURNS
    assert doc["report"]["judge"]["cached"] == 2
    assert len(first_run[:answered]) + len(second_run) == TURNS + doc["report"]["judge"]["calls"]


def test_an_unreadable_judge_answer_is_asked_again_and_no_verdict_is_a_failure(
    copy: Recording, server: FakeLlmServer
):
    args = ["--chat", "Alice", "--prompt", BRIEF, "--judge"]
    server.respond(lambda body: "I cannot say." if judge_question(body) else _new_reply(body))

    first = run_replay(args, copy, server)

    assert first.returncode == 1, first.stderr
    assert "new better 0, tie 0, new worse 0, unjudged 2" in first.stdout
    closing = first.stdout.rstrip().splitlines()[-1]
    assert closing.startswith("the judge decided no turn (2 unjudged): nothing to apply")
    assert "replay.py apply" not in first.stdout

    server.respond(_brief_and_judged)  # the judge answers readably now
    before = len(server.requests)
    again = run_replay(args, copy, server)

    assert again.returncode == 0, again.stderr
    asked = _judge_requests(server, before)
    assert len(server.requests) - before == len(asked) == 4  # replies cached, verdicts not
    assert "new better 1, tie 0, new worse 1, unjudged 0" in again.stdout
    assert "to use these settings: python replay.py apply" in again.stdout


def test_a_run_the_judge_decided_nothing_of_fails_in_json_too(
    copy: Recording, server: FakeLlmServer
):
    server.respond(lambda body: "no idea" if judge_question(body) else _new_reply(body))

    done = run_replay(["--all", "--prompt", BRIEF, "--judge", "--json"], copy, server)

    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["report"]["judge"]["verdicts"]["unjudged"] == TURNS
