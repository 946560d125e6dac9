"""replay.py on turns with tool calls: it never runs a tool, never appends, never sends
(issue 20, item 6). A conversation with a silent group turn and a two-round turn is
recorded once by the real daemon; replays then reuse or simulate the tools' results."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events.model import ReplySent, ReplyWithheld
from tests.conversation import Recording, log_position, run_replay
from tests.e2e.harness import BOB, GROUP, Daemon, daemon_env, write_config
from tests.llm_server import TEST_KEY, FakeLlmServer, Reply, agent_calls, verdict

pytestmark = pytest.mark.slow
BANTER = {"reason": "just banter"}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as s:
        yield s


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, server: FakeLlmServer) -> Recording:
    workdir = tmp_path_factory.mktemp("tools") / "recorded"
    workdir.mkdir()
    config = write_config(workdir / "app.json", {"tools": {"silence": "always"}})
    env = daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL=server.base_url)
    daemon = Daemon(workdir, config, env).start()
    try:
        server.script(Reply(body=agent_calls(("stay_silent", BANTER), ids="g")))
        daemon.message("bot, lol", chat=GROUP, sender=BOB, push_name="Bob")
        daemon.wait_event(ReplyWithheld, chat=GROUP)
        server.script(Reply(body=agent_calls(("nope", {"a": 1}), ids="a")))
        daemon.message("What is new?")
        daemon.wait_event(ReplySent, wa_id=daemon.next_sent()["id"])
        assert daemon.stop()[0] == 0
    finally:
        daemon.close()
    return Recording(workdir, len(server.requests), ())


def _files(store: Path) -> dict[str, str]:
    """Every file of the store but replay's own folder, by its content's hash."""
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file() and "replays" not in p.relative_to(store).parts
    }


def _replay(args: list[str], rec: Recording, server: FakeLlmServer) -> dict[str, Any]:
    """Run replay.py and prove it acted on nothing: the log and the store are as they
    were, and the only requests it made were LLM calls."""
    before, files, asked = log_position(rec.store), _files(rec.store), len(server.requests)
    done = run_replay([*args, "--json"], rec, server)
    assert done.returncode in (0, 1), done.stderr
    assert log_position(rec.store) == before
    assert _files(rec.store) == files
    assert {r.path for r in server.requests[asked:]} <= {"/v1/responses"}
    assert '"type": "sent"' not in done.stdout
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_recorded_turns_with_tools_rebuild_exactly(
    recording: Recording, server: FakeLlmServer
) -> None:
    family = _replay(["--chat", "Family", "--recorded"], recording, server)
    alice = _replay(["--chat", "Alice", "--recorded"], recording, server)
    assert (family["ok"], alice["ok"]) == (True, True), (family, alice)
    [silent] = family["turns"]
    assert silent["old"]["silent"] == "just banter"
    assert silent["old"]["tools"][0]["name"] == "stay_silent"
    [looped] = alice["turns"]  # one turn: its second round is no turn of its own
    assert [(t["round"], t["name"], t["error"]) for t in looped["old"]["tools"]] == [
        (1, "nope", True)
    ]
    assert looped["old"]["reply"].startswith("Echo: What is new?")
    assert looped["old"]["cost_usd"] == 0.0021 + 0.0061  # both rounds


def test_a_variants_same_call_gets_the_recorded_result(
    recording: Recording, server: FakeLlmServer
) -> None:
    server.script(Reply(body=agent_calls(("stay_silent", BANTER), ids="v")))
    [turn] = _replay(["--chat", "Family", "--prompt", "Be quiet."], recording, server)["turns"]
    assert turn["new"]["silent"] == "just banter"
    assert (
        turn["new"]["reply"]
        == turn["old"]["reply"]
        == "(no reply: the assistant chose to stay silent)"
    )
    [tool] = turn["new"]["tools"]
    assert (tool["name"], tool["source"]) == ("stay_silent", "recorded")


def test_a_variants_new_call_gets_a_simulated_result_and_the_loop_goes_on(
    recording: Recording, server: FakeLlmServer
) -> None:
    server.script(
        Reply(body=agent_calls(("nope", {"a": 1}), ("nope", {"a": 2}), ids="w")),
    )
    [turn] = _replay(["--chat", "Alice", "--prompt", "Say more."], recording, server)["turns"]
    sources = [(t["arguments"], t["source"]) for t in turn["new"]["tools"]]
    assert sources == [('{"a": 1}', "recorded"), ('{"a": 2}', "simulated")]
    assert "unknown tool 'nope'" in json.loads(turn["new"]["tools"][1]["output"])["error"]
    assert turn["new"]["reply"].startswith("Echo: What is new?")  # the second round answered
    second = server.requests[-1].json
    outputs = [i for i in second["input"] if i.get("type") == "function_call_output"]
    assert [o["call_id"] for o in outputs] == ["w_1", "w_2"]


def test_judged_replay_counts_staying_silent_as_an_outcome(
    recording: Recording, server: FakeLlmServer
) -> None:
    server.script(Reply(body=agent_calls(("stay_silent", {"reason": "other"}), ids="j")))
    asked = len(server.requests)
    doc = _replay(["--chat", "Family", "--prompt", "Hush.", "--judge"], recording, server)
    [turn] = doc["turns"]
    assert turn["new"]["tools"][0]["source"] == "simulated"  # other arguments than recorded
    assert turn["judge"]["verdict"] == "tie"  # silent both times: the same outcome
    assert turn["judge"]["reason"] == "identical replies (no judge call)"
    assert len(server.requests) == asked + 1
    # Silent against a reply is judged like any two replies.
    server.respond(lambda body: verdict("A") if "Reply A" in json.dumps(body) else None)
    doc = _replay(["--chat", "Family", "--prompt", "Talk.", "--judge"], recording, server)
    server.respond(None)
    [turn] = doc["turns"]
    assert turn["new"]["reply"].startswith("Echo: ")
    judge_asked = [r.json for r in server.requests if "Reply A" in json.dumps(r.json)]
    assert any("stay silent" in json.dumps(body) for body in judge_asked)
    assert turn["judge"]["verdict"] in ("win", "loss", "tie")
