"""LLM failures: retried, or recorded as final without a reply (sections 5 and 9)."""

from __future__ import annotations

from pathlib import Path

from events.model import LlmCompleted, LlmFailed, LlmRequested, ReplyPlanned, ReplySent
from tests.e2e.harness import ALICE, OWNER_JID, Daemon
from tests.llm_server import TEST_KEY, FakeLlmServer, Reply, failed_answer

NOW = {"retry-after": "0"}  # keeps retries instant
ROOT = Path(__file__).resolve().parents[2]


def _call_of(daemon: Daemon, msg_id: str) -> str:
    return daemon.wait_event(LlmRequested, trigger_ids=[msg_id]).call_id


def _final_failure(daemon: Daemon, msg_id: str) -> LlmFailed:
    """Wait for the final failure of ``msg_id``'s call; nothing was planned for it."""
    call_id = _call_of(daemon, msg_id)
    failure = daemon.wait_event(LlmFailed, call_id=call_id, final=True)
    assert daemon.find(LlmCompleted, call_id=call_id) == []
    assert daemon.find(ReplyPlanned, call_id=call_id) == []
    return failure


def test_429_is_retried_then_answered_once(daemon: Daemon, llm_server: FakeLlmServer):
    llm_server.script(Reply(status=429, headers=NOW))
    msg_id = daemon.message("Best beaches?")

    reply = daemon.next_sent()
    daemon.wait_event(ReplySent, wa_id=reply["id"])

    assert reply["reply_to"] == msg_id
    call_id = _call_of(daemon, msg_id)
    (failed,) = daemon.find(LlmFailed, call_id=call_id)
    assert (failed.status, failed.attempt, failed.final) == (429, 1, False)
    assert len(daemon.find(LlmCompleted, call_id=call_id)) == 1
    assert len(daemon.find(LlmRequested, chat=ALICE)) == 1
    daemon.expect_no_sent(within=0.3)


def test_persistent_500_is_final_and_the_daemon_carries_on(daemon: Daemon, llm_server):
    llm_server.script(*[Reply(status=500, headers=NOW)] * 3)
    failing_id = daemon.message("Best beaches?")
    _final_failure(daemon, failing_id)

    next_id = daemon.message("Best mountains?")
    reply = daemon.next_sent()

    failures = daemon.find(LlmFailed, call_id=_call_of(daemon, failing_id))
    assert [(f.status, f.attempt, f.final) for f in failures] == [
        (500, 1, False),
        (500, 2, False),
        (500, 3, True),
    ]
    assert reply["reply_to"] == next_id
    assert len(llm_server.requests) == 4


def test_rejected_key_is_final_and_says_so(make_daemon):
    d = make_daemon(env={"PERPLEXITY_API_KEY": "wrong"})
    msg_id = d.message("Best beaches?")

    failure = _final_failure(d, msg_id)

    assert (failure.status, failure.attempt) == (401, 1)
    assert "key" in failure.error.lower()
    assert "rejected" in failure.error.lower()
    # Not silent: the owner is told, once, in their own chat; the sender gets nothing.
    alert = d.next_sent()
    assert (alert["chat"], alert["purpose"]) == (OWNER_JID, "alert")
    assert "API key rejected" in alert["text"]
    d.expect_no_sent(within=0.3)


def test_http_200_with_status_failed_is_a_final_failure(daemon: Daemon, llm_server):
    llm_server.script(*[Reply(body=failed_answer("model overloaded"))] * 3)
    msg_id = daemon.message("Best beaches?")

    failure = _final_failure(daemon, msg_id)

    assert failure.status == 200
    assert "model overloaded" in failure.error
    daemon.expect_no_sent(within=0.3)


def test_openai_provider_uses_v1_chat_completions(make_daemon, llm_server: FakeLlmServer):
    d = make_daemon(
        {"llm": {"provider": "openai", "model": "llama3"}},
        env={"LLM_BASE_URL": f"{llm_server.base_url}/v1", "LLM_API_KEY": TEST_KEY},
    )
    msg_id = d.message("Best beaches?")

    reply = d.next_sent()

    assert reply["reply_to"] == msg_id
    assert reply["text"] == "Echo: Best beaches?"
    assert [r.path for r in llm_server.requests] == ["/v1/chat/completions"]
    assert llm_server.requests[0].json["model"] == "llama3"


def test_openai_provider_on_perplexity_retired_path_explains_retirement(
    make_daemon, llm_server: FakeLlmServer
):
    d = make_daemon(
        {"llm": {"provider": "openai"}},
        env={"LLM_BASE_URL": llm_server.base_url, "LLM_API_KEY": TEST_KEY},
    )
    msg_id = d.message("Best beaches?")

    failure = _final_failure(d, msg_id)

    assert [r.path for r in llm_server.requests] == ["/chat/completions"]
    assert (failure.status, failure.attempt) == (403, 1)
    assert "retired" in failure.error.lower()
    assert "key" not in failure.error.lower()
    alert = d.next_sent()
    assert (alert["chat"], alert["purpose"]) == (OWNER_JID, "alert")
    assert "retired" in alert["text"]
    d.expect_no_sent(within=0.3)


def test_a_gpt5_behind_a_proxy_is_asked_again_in_the_shape_it_takes(make_daemon):
    """Behind any URL but api.openai.com the output cap goes out as max_tokens, which GPT-5
    refuses: the call goes again at once as max_completion_tokens, the refusal recorded,
    and later calls are recorded in the shape that works; replay sends that shape too."""
    with FakeLlmServer(openai_reasoning=True) as gpt5:
        llm = {"provider": "openai", "model": "gpt-5", "max_retries": 0}
        env = {"LLM_API_KEY": TEST_KEY, "LLM_BASE_URL": f"{gpt5.base_url}/v1"}
        d = make_daemon({"llm": llm}, env=env, server=gpt5)
        first = d.message("Best beaches?")
        assert d.next_sent()["reply_to"] == first
        call = _call_of(d, first)
        [refused] = d.find(LlmFailed, call_id=call)
        assert (refused.status, refused.attempt, refused.final) == (400, 1, False)
        assert refused.error == (
            "the model does not accept the parameter max_tokens (HTTP 400): "
            "sent again with max_completion_tokens instead of max_tokens"
        )
        assert "refused" not in d.wait_event(LlmRequested, call_id=call).params

        second = d.message("And mountains?")
        assert d.next_sent()["reply_to"] == second
        later = d.wait_event(LlmRequested, trigger_ids=[second])
        assert later.params["refused"] == ["max_tokens"]
        assert d.find(LlmFailed, call_id=later.call_id) == []
        d.stop()
        asked = [r.json for r in gpt5.requests]
        assert [("max_tokens" in b, "max_completion_tokens" in b) for b in asked] == [
            (True, False),
            (False, True),
            (False, True),
        ]

        checked = d.replay("--chat", "Alice", "--recorded")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.splitlines()[-1] == "2 turns checked: 2 OK, 0 DIFF"
        before = len(gpt5.requests)
        rerun = d.replay("--chat", "Alice", "--prompt", "Be short.", "--json")
        assert rerun.returncode == 0, rerun.stderr
    # The second call goes out in its recorded shape at once; the first, recorded before the
    # refusal, meets it again and is asked again as the daemon did.
    shapes = sorted(
        ("max_tokens" in r.json, "max_completion_tokens" in r.json) for r in gpt5.requests[before:]
    )
    assert shapes == [(False, True), (False, True), (True, False)]
