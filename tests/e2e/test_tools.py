"""Function calling over stdio: the test LLM server scripts the model's calls in
both wire shapes (docs/llm.md, "Tools"), the daemon runs the loop."""

from __future__ import annotations

import json
from typing import Any

from events.model import (
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    ReplyPlanned,
    ReplySent,
    ReplyWithheld,
    ToolCalled,
    ToolFinished,
)
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import ALICE, BOB, GROUP, Daemon, run_cli
from tests.llm_server import FakeLlmServer, Reply, agent_calls, chat_calls

OPENAI = {"llm": {"provider": "openai", "model": "gpt-5-mini", "web_search": False}}
ALWAYS = {"tools": {"silence": "always"}}


def _openai(make_daemon: MakeDaemon, llm_server: FakeLlmServer, **more: Any) -> Daemon:
    env = {"LLM_BASE_URL": f"{llm_server.base_url}/v1", "LLM_API_KEY": "test-key"}
    return make_daemon({**OPENAI, **ALWAYS, **more}, env=env)


def _audit(daemon: Daemon, chat: str) -> str:
    args = ["audit", "--chat", chat, "--store", str(daemon.store)]
    done = run_cli(args, cwd=daemon.workdir, env=daemon.env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_stay_silent_in_a_group_sends_nothing_and_is_audited(
    daemon: Daemon, llm_server: FakeLlmServer
) -> None:
    llm_server.script(Reply(body=agent_calls(("stay_silent", {"reason": "just banter"}))))
    msg_id = daemon.message("bot, lol", chat=GROUP, sender=BOB, push_name="Bob")

    withheld = daemon.wait_event(ReplyWithheld, chat=GROUP)
    daemon.expect_no_sent(within=0.5)

    assert (withheld.reason, withheld.trigger_ids) == ("just banter", [msg_id])
    (request,) = llm_server.requests
    [tool] = [t for t in request.json["tools"] if t.get("name") == "stay_silent"]
    assert tool["name"] == "stay_silent"
    assert tool["parameters"]["required"] == ["reason"]
    (called,) = daemon.find(ToolCalled, chat=GROUP)
    assert (called.name, json.loads(called.arguments)) == ("stay_silent", {"reason": "just banter"})
    assert daemon.find(ReplyPlanned, chat=GROUP) == []
    # A message later in the group is a new turn: the silent one left the queue.
    llm_server.script(Reply(body=agent_calls(("stay_silent", {"reason": "again"}), ids="c2")))
    daemon.message("bot, lol again", chat=GROUP, sender=BOB, push_name="Bob")
    daemon.wait_event(ReplyWithheld, chat=GROUP, reason="again")
    assert len(llm_server.requests) == 2
    audit = _audit(daemon, "Family")
    assert 'tool stay_silent {"reason": "just banter"}' in audit
    assert "stayed silent: just banter" in audit
    # A direct chat is not offered silence by default: it is answered.
    daemon.message("hello")
    daemon.wait_event(ReplySent, chat=ALICE)
    offered = [t.get("name") for t in llm_server.requests[-1].json.get("tools", [])]
    assert "stay_silent" not in offered
    assert "stay_silent" not in daemon.find(LlmRequested, chat=ALICE)[0].tools


def test_an_unknown_tool_gets_an_error_result_then_the_answer_openai(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    daemon = _openai(make_daemon, llm_server)
    llm_server.script(Reply(body=chat_calls(("launch_rockets", {"count": 3}), ids="t1")))
    msg_id = daemon.message("What is new?")

    reply = daemon.next_sent()

    assert (reply["reply_to"], reply["text"]) == (msg_id, "Echo: What is new?")
    first, second = (r.json for r in llm_server.requests)
    assert first["tools"][0] == {
        "type": "function",
        "function": {
            "name": "stay_silent",
            "description": first["tools"][0]["function"]["description"],
            "parameters": first["tools"][0]["function"]["parameters"],
        },
    }
    assistant, tool = second["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == "t1_1"
    assert assistant["tool_calls"][0]["function"]["name"] == "launch_rockets"
    assert (tool["role"], tool["tool_call_id"]) == ("tool", "t1_1")
    assert "unknown tool 'launch_rockets'" in json.loads(tool["content"])["error"]
    (finished,) = daemon.find(ToolFinished, chat=ALICE)
    assert (finished.error, finished.output) == (True, tool["content"])
    called = json.loads(daemon.wait_stderr('"tool_called"'))
    assert (called["tool"], called["result"]) == ("launch_rockets", "error")
    # Both rounds' costs are recorded, each against its own call.
    costs = [c.usage.cost_usd for c in daemon.find(LlmCompleted, chat=ALICE)]
    assert costs == [0.0021, None]  # the fake's plain answer reports no cost
    audit = _audit(daemon, "Alice")
    assert 'tool launch_rockets {"count": 3}' in audit
    assert "unknown tool" in audit


def test_bad_arguments_are_an_error_result_agent_api(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    daemon = make_daemon(ALWAYS)
    llm_server.script(
        Reply(body=agent_calls(("stay_silent", "{not json"), ("stay_silent", {"reason": 5})))
    )
    daemon.message("What is new?")

    reply = daemon.next_sent()

    assert reply["text"].startswith("Echo: What is new?")
    second = llm_server.requests[1].json
    calls = [i for i in second["input"] if i.get("type") == "function_call"]
    outputs = [i for i in second["input"] if i.get("type") == "function_call_output"]
    assert [c["call_id"] for c in calls] == [o["call_id"] for o in outputs] == ["call_1", "call_2"]
    errors = [json.loads(o["output"])["error"] for o in outputs]
    assert errors[0].startswith("stay_silent: the arguments are not JSON")
    assert errors[1] == "stay_silent: argument 'reason' must be a string"
    assert daemon.find(ReplyWithheld) == []


def test_the_loop_stops_at_max_rounds_and_asks_once_more_without_tools(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    daemon = make_daemon({"tools": {"silence": "always", "max_rounds": 2}})
    llm_server.script(
        Reply(body=agent_calls(("nope", {}), ids="r1")),
        Reply(body=agent_calls(("nope", {}), ids="r2")),
        Reply(body=agent_calls(("nope", {}), ids="r3")),  # offered none, called anyway
    )
    daemon.message("What is new?")

    failed = daemon.wait_event(LlmFailed, chat=ALICE, final=True)
    daemon.expect_no_sent(within=0.3)

    bodies = [r.json for r in llm_server.requests]
    assert [any(t["type"] == "function" for t in b.get("tools", [])) for b in bodies] == [
        True,
        True,
        False,
    ]
    assert [len(r.rounds) for r in daemon.find(LlmRequested, chat=ALICE)] == [0, 1, 2]
    assert len(daemon.find(ToolCalled, chat=ALICE)) == 2  # the third round's call never ran
    assert "tools.max_rounds" in failed.error


def test_a_restart_between_rounds_runs_no_tool_twice_and_answers_once(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    daemon = make_daemon(ALWAYS)
    llm_server.script(Reply(body=agent_calls(("nope", {"x": 1}), ids="k1")))
    gate = llm_server.hold()  # the second round's answer waits: the daemon dies first
    msg_id = daemon.message("What is new?")
    daemon.wait_for(
        lambda rec: isinstance(rec.event, LlmRequested) and bool(rec.event.rounds), timeout=10
    )
    assert llm_server.wait_for_requests(2)
    daemon.kill9()
    gate.set()

    daemon.start(expect_startup=False)
    reply = daemon.next_sent()
    daemon.wait_event(ReplySent, wa_id=reply["id"])

    assert reply["reply_to"] == msg_id
    assert len(daemon.find(ToolCalled, tool_call_id="k1_1")) == 1
    assert len(daemon.find(ToolFinished, tool_call_id="k1_1")) == 1
    requests = daemon.find(LlmRequested, chat=ALICE)
    assert [len(r.rounds) for r in requests] == [0, 1, 1]  # round 2 asked again as recorded
    assert requests[1].rounds == requests[2].rounds
    third = llm_server.requests[2].json
    assert [i["type"] for i in third["input"][-2:]] == ["function_call", "function_call_output"]
    assert len(daemon.find(ReplyPlanned, chat=ALICE, purpose="reply")) == 1
