"""replay.py on a conversation the real daemon recorded (issue 4)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from events.backends import open_reader
from events.model import ChatTurn, LlmRequested
from pipeline.config import config_from_dict
from pipeline.tools.replay._variant import Variant, formatting_for, prompt_for
from projections.calls import calls
from tests.conversation import QUESTIONS, Recording, log_position, record, run_replay
from tests.e2e.harness import ALICE, ALICE_PERSONA
from tests.llm_server import FakeLlmServer, Reply, agent_answer, untimed

pytestmark = pytest.mark.slow
BRIEF = "Be brief."


class _Tool(msgspec.Struct, forbid_unknown_fields=True):
    round: int
    name: str
    arguments: str
    output: str | None
    error: bool
    source: str


class _Old(msgspec.Struct, forbid_unknown_fields=True):
    reply: str | None
    tokens: int | None
    cost_usd: float | None
    latency_ms: float | None
    error: str | None
    silent: str | None
    tools: list[_Tool]


class _New(_Old, forbid_unknown_fields=True):
    cached: bool
    request: dict[str, object] | None


class _Head(msgspec.Struct, forbid_unknown_fields=True):
    turn: int
    seq: int
    at: str
    call_id: str
    session_id: str
    user: str | None


class _Checked(_Head, forbid_unknown_fields=True):
    status: str
    differences: list[str]
    old: _Old


class _CheckDoc(msgspec.Struct, forbid_unknown_fields=True):
    chat: str
    mode: str
    ok: bool
    turns: list[_Checked]


class _Replayed(_Head, forbid_unknown_fields=True):
    old: _Old
    new: _New


class _Summary(msgspec.Struct, forbid_unknown_fields=True):
    turns: int
    cached: int
    failed: int
    old_cost_usd: float
    new_cost_usd: float


class _ReplayDoc(msgspec.Struct, forbid_unknown_fields=True):
    chat: str
    settings: dict[str, object]
    turns: list[_Replayed]
    summary: _Summary


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as s:
        yield s


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, server: FakeLlmServer) -> Recording:
    return record(tmp_path_factory.mktemp("replay") / "recorded", server)


@pytest.fixture
def copy(recording: Recording, tmp_path: Path) -> Recording:
    return recording.copy(tmp_path / "copy")


def _requested_seqs(store: Path) -> list[int]:
    with open_reader(store) as log:
        return [r.seq for r in log.read() if isinstance(r.event, LlmRequested)]


def test_recorded_conversation_rebuilds_exactly(recording: Recording, server: FakeLlmServer):
    before = len(server.requests)
    done = run_replay(["--chat", "Alice", "--recorded"], recording, server)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [ln.split()[-1] for ln in lines[:-1]] == ["OK"] * 4
    assert lines[-1] == "4 turns checked: 4 OK, 0 DIFF"
    doc = msgspec.json.decode(
        run_replay(["--chat", "491701111111", "--recorded", "--json"], recording, server).stdout,
        type=_CheckDoc,
    )
    assert doc.ok
    assert doc.chat == ALICE
    assert [t.user for t in doc.turns] == list(QUESTIONS)
    assert all(t.old.reply and t.old.reply.startswith("Echo: ") for t in doc.turns)
    assert len(server.requests) == before


def test_a_changed_stored_request_is_a_diff(copy: Recording, server: FakeLlmServer):
    second = _requested_seqs(copy.store)[1]
    with contextlib.closing(sqlite3.connect(copy.store / "events.db")) as conn, conn:
        conn.execute(
            "UPDATE events SET body=json_set(body, '$.messages[0].content', 'x') WHERE seq=?",
            (second,),
        )

    done = run_replay(["--chat", "Alice", "--recorded"], copy, server)

    assert done.returncode == 1
    turn_lines = [ln for ln in done.stdout.splitlines() if ln.startswith("turn ")]
    assert [ln.split()[-1] for ln in turn_lines] == ["OK", "DIFF", "OK", "OK"]
    assert f"seq {second} " in turn_lines[1]
    assert "messages[0].content (from char 0): recorded 'x' != rebuilt" in done.stdout


def test_a_new_prompt_reaches_every_turn_once_then_comes_from_the_cache(
    copy: Recording, server: FakeLlmServer
):
    position = log_position(copy.store)
    before = len(server.requests)

    first = run_replay(["--chat", "Alice", "--prompt", BRIEF, "--json"], copy, server)

    assert first.returncode == 0, first.stderr
    sent = server.requests[before:]
    assert len(sent) == 4
    assert all(untimed(r.json["instructions"]) == f"{ALICE_PERSONA}\n\n{BRIEF}" for r in sent)
    assert sorted(r.json["input"][-1]["content"] for r in sent) == sorted(QUESTIONS)
    doc = msgspec.json.decode(first.stdout, type=_ReplayDoc)
    assert [t.new.cached for t in doc.turns] == [False] * 4
    assert doc.summary.new_cost_usd == pytest.approx(4 * 0.0061)
    saved = sorted((copy.store / "replays").glob("*.json"))
    assert len(saved) == 1
    assert msgspec.json.decode(saved[0].read_bytes(), type=_ReplayDoc) == doc

    again = run_replay(["--chat", "Alice", "--prompt", BRIEF], copy, server, columns=150)

    assert again.returncode == 0, again.stderr
    assert len(server.requests) == before + 4
    assert "4 turns replayed (4 cached, 0 failed)" in again.stdout
    assert " │ new ($0.0061" in again.stdout  # side by side on a wide terminal
    assert len(list((copy.store / "replays").glob("*.json"))) == 2
    assert log_position(copy.store) == position


def test_a_narrow_terminal_compares_line_by_line(copy: Recording, server: FakeLlmServer):
    other = agent_answer({"model": "sonar-pro", "input": [{"role": "user", "content": "Ciao"}]})
    server.script(Reply(body=other))

    done = run_replay(["--chat", "Alice", "--model", "sonar-pro", "--limit", "1"], copy, server)

    assert done.returncode == 0, done.stderr
    assert server.requests[-1].json["model"] == "sonar-pro"
    assert "\n--- old ($0.0061" in done.stdout
    assert "\n-Echo: Hotels in Rome?\n" in done.stdout
    assert "\n+Echo: Ciao\n" in done.stdout
    assert "1 turns replayed (0 cached, 0 failed)" in done.stdout


def test_a_failed_call_is_reported_and_exits_1(copy: Recording, server: FakeLlmServer):
    server.script(Reply(status=400))

    done = run_replay(["--chat", "Alice", "--persona", "Terse.", "--limit", "1"], copy, server)

    assert done.returncode == 1
    assert "(failed: " in done.stdout
    assert "1 turns replayed (0 cached, 1 failed)" in done.stdout


def test_since_and_limit_choose_turns(recording: Recording, server: FakeLlmServer):
    doc = msgspec.json.decode(
        run_replay(["--chat", "Alice", "--recorded", "--json"], recording, server).stdout,
        type=_CheckDoc,
    )
    third = doc.turns[2]
    with open_reader(recording.store) as log:
        ts = next(r.ts for r in log.read() if r.seq == third.seq)

    since = run_replay(
        ["--chat", "Alice", "--recorded", "--json", "--since", str(ts)], recording, server
    )
    limited = run_replay(
        ["--chat", "Alice", "--recorded", "--json", "--limit", "2"], recording, server
    )

    assert [t.seq for t in msgspec.json.decode(since.stdout, type=_CheckDoc).turns] == [
        t.seq for t in doc.turns[2:]
    ]
    assert [t.turn for t in msgspec.json.decode(limited.stdout, type=_CheckDoc).turns] == [1, 2]


def test_replayed_context_carries_the_new_answers(recording: Recording):
    with open_reader(recording.store) as log:
        found = calls(list(log.read()), ALICE)
    second = found[1]
    assert second.inputs is not None
    answers = {found[0].call_id: "A new answer"}

    chained = prompt_for(second, Variant(context="replayed"), answers)
    kept = prompt_for(second, Variant(context="recorded"), answers)

    assert chained.messages[1:] == [
        ChatTurn("user", QUESTIONS[0]),
        ChatTurn("assistant", "A new answer"),
        ChatTurn("user", QUESTIONS[1]),
    ]
    assert kept.messages[2].content.startswith(f"Echo: {QUESTIONS[0]}")
    assert kept.messages[1:] != chained.messages[1:]


def test_a_variant_formats_its_replies_as_its_config_says(recording: Recording):
    with open_reader(recording.store) as log:
        call = calls(list(log.read()), ALICE)[0]
    assert call.inputs is not None
    recorded = config_from_dict(call.inputs.config, source="recorded")
    plain = msgspec.structs.replace(
        recorded, whatsapp=msgspec.structs.replace(recorded.whatsapp, formatting="plain")
    )
    as_plain = msgspec.structs.replace(
        call,
        inputs=msgspec.structs.replace(
            call.inputs, config={**call.inputs.config, "whatsapp": {"formatting": "plain"}}
        ),
    )

    assert formatting_for(call, Variant()) == "whatsapp"  # the config in force then
    assert formatting_for(as_plain, Variant()) == "plain"
    assert formatting_for(call, Variant(config=plain)) == "plain"  # the variant's config wins


@pytest.mark.parametrize(
    "args",
    [
        ["--chat", "Nobody", "--recorded"],
        ["--chat", "491709999999", "--recorded"],
        ["--chat", "Alice", "--recorded", "--prompt", "x"],
    ],
    ids=["unknown-name", "unmonitored-number", "recorded-with-prompt"],
)
def test_user_mistakes_exit_2_with_one_line(
    recording: Recording, server: FakeLlmServer, args: list[str]
):
    done = run_replay(args, recording, server)

    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("replay.py: ")
