"""``python -m pipeline audit`` on a conversation the real daemon recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from events.backends import open_log, open_reader
from events.model import (
    Compacted,
    ConfigLoaded,
    LlmRequested,
    MessageReceived,
    MessageSkipped,
    Recorded,
    TransportStatus,
)
from events.protocol import Selection
from pipeline.tools.audit import audit_text
from projections.timeline import Audit, Turn, audit
from tests.conversation import NEW_PROMPT, QUESTIONS, Recording, record
from tests.e2e.harness import ALICE, ALICE_PERSONA, ALICE_PROMPT, GROUP, daemon_env, run_cli
from tests.llm_server import FakeLlmServer

pytestmark = pytest.mark.slow


class _Inbound(msgspec.Struct, forbid_unknown_fields=True):
    seq: int
    ts: float
    msg_id: str
    sender: str
    push_name: str | None
    text: str
    kind: str
    from_me: bool
    edits: list[str | None]
    revoked: bool
    media: dict[str, Any] | None  # kind, mime, size, sha256, seconds, file_name, problem
    attached: list[dict[str, Any]]  # transcripts, failed attempts, a document's text


class _Config(msgspec.Struct, forbid_unknown_fields=True):
    hash: str
    changed: list[str] | None


class _Turn(msgspec.Struct, forbid_unknown_fields=True):
    n: int
    kind: str
    seq: int
    ts: float
    messages: list[_Inbound]
    reason: str | None
    detail: str
    session_id: str | None
    session_started: str | None
    config: _Config | None
    request: dict[str, Any] | None
    failures: list[dict[str, Any]]
    response: dict[str, Any] | None
    replies: list[dict[str, Any]]
    rounds: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    calls: list[str]
    effects: list[dict[str, Any]]


class _Event(msgspec.Struct):
    type: str
    seq: int
    ts: float
    chat: str


class _Doc(msgspec.Struct, forbid_unknown_fields=True):
    chat: str
    turns: list[_Turn]
    events: list[_Event]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    with FakeLlmServer() as server:
        yield record(tmp_path_factory.mktemp("audit") / "recorded", server)


def _audit(recording: Recording, *args: str) -> Any:
    return run_cli(
        ["audit", "--store", str(recording.store), *args], cwd=recording.workdir, env=daemon_env()
    )


def _requests(recording: Recording) -> list[LlmRequested]:
    with open_reader(recording.store) as log:
        return [r.event for r in log.read() if isinstance(r.event, LlmRequested)]


def test_the_timeline_shows_each_exact_request_and_every_skip_reason(recording: Recording):
    done = _audit(recording, "--chat", "Alice")

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"Audit of Alice ({ALICE}): 6 turns")
    for request in _requests(recording):
        assert f"(call {request.call_id[:8]})" in out
        block = out[out.index(f"(call {request.call_id[:8]})") :]
        for turn in request.messages:
            assert f"[{turn.role}] {turn.content.splitlines()[0]}" in block
    assert f"[system] {ALICE_PERSONA}" in out
    assert f"      {ALICE_PROMPT}" in out
    assert f"      {NEW_PROMPT}" in out
    assert f"skipped: empty  (seq {_seq_of(recording, recording.skipped_ids[0])})" in out
    assert "reset: new session, no LLM call" in out
    assert f"monitored_entities[0].prompt: {ALICE_PROMPT!r} -> {NEW_PROMPT!r}" in out
    assert out.count(" sent 20") == 5  # four answers and the reset notice


def test_a_group_skip_names_its_reason(recording: Recording):
    done = _audit(recording, "--chat", GROUP)

    assert done.returncode == 0, done.stderr
    assert "skipped: not_triggered" in done.stdout
    assert "Bob: dinner at eight?" in done.stdout


def test_json_has_turns_and_every_event_of_the_chat(recording: Recording):
    done = _audit(recording, "--chat", "491701111111", "--json")

    doc = msgspec.json.decode(done.stdout, type=_Doc)
    assert doc.chat == ALICE
    assert [t.kind for t in doc.turns] == [
        "answered",
        "answered",
        "skipped",
        "answered",
        "reset",
        "answered",
    ]
    answered = [t for t in doc.turns if t.kind == "answered"]
    assert [t.messages[0].text for t in answered] == list(QUESTIONS)
    assert [t.request["messages"] for t in answered if t.request] == [
        msgspec.to_builtins(r.messages) for r in _requests(recording)
    ]
    assert all(t.response and t.response["usage"]["cost_usd"] == 0.0061 for t in answered)
    assert [t.config.changed is not None for t in answered if t.config] == [False] * 2 + [True] * 2
    assert doc.turns[4].session_started == "reset"
    skipped = doc.turns[2]
    assert (skipped.reason, skipped.messages[0].msg_id) == ("empty", recording.skipped_ids[0])
    with open_reader(recording.store) as log:
        expected = [
            (type(r.event).__name__, r.seq)
            for r in log.read()
            if r.event.chat == ALICE or isinstance(r.event, ConfigLoaded)
        ]
    assert [(e.type, e.seq) for e in doc.events] == expected


def test_since_drops_earlier_turns(recording: Recording):
    doc = msgspec.json.decode(_audit(recording, "--chat", "Alice", "--json").stdout, type=_Doc)
    reset = doc.turns[4]

    later = _audit(recording, "--chat", "Alice", "--json", "--since", str(reset.ts))

    assert [t.n for t in msgspec.json.decode(later.stdout, type=_Doc).turns] == [5, 6]


def test_config_file_resolves_the_name(recording: Recording):
    done = _audit(recording, "--chat", "family", "--config", str(recording.config))

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Audit of Family ({GROUP})")


@pytest.mark.parametrize(
    "args",
    [
        ["--chat", "Nobody"],
        ["--chat", "Alice", "--since", "yesterday"],
        [
            "--chat",
            "Alice",
            "--since",
            "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",
        ],
        ["--chat", "Alice", "--since", "2026-11-\u0660\u0661"],
        ["--chat", "Alice", "--since", "nan"],
        ["--chat", "Alice", "--since", "inf"],
    ],
    ids=["unknown-chat", "bad-time", "arabic-indic-seconds", "arabic-indic-date", "nan", "inf"],
)
def test_user_mistakes_exit_2_with_one_line(recording: Recording, args: list[str]):
    done = _audit(recording, *args)

    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_persons_lid_names_their_chat_as_for_forget(tmp_path: Path):
    """The log learned Alice's LID from her messages (``chat_alt``): ``forget`` by it
    finds her, and so must ``audit`` and ``replay.py``, not call it unknown."""
    lid = "123456789012345@lid"
    config = {
        "whatsapp": {"phone_number": "491700000000"},
        "monitored_entities": [{"type": "user", "phone": "491701111111", "name": "Alice"}],
    }
    with open_log(tmp_path / "store") as log:
        log.append(ConfigLoaded(hash="c", config=config, path="app.json"))
        log.append(
            MessageReceived(
                chat=ALICE, msg_id="M1", sender=ALICE, text="zebra-quartz", chat_alt=lid
            )
        )
    done = run_cli(
        ["audit", "--store", str(tmp_path / "store"), "--chat", lid],
        cwd=tmp_path,
        env=daemon_env(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Audit of Alice ({ALICE})")
    assert "zebra-quartz" in done.stdout


def test_a_message_whose_decision_a_compaction_removed_is_not_pending(
    recording: Recording, tmp_path: Path
):
    """A rotation removes Alice's first two turns but keeps her first message (the one
    tying her ids together, as the aliases projection asks): its decision went, so it is
    shown as removed by the compaction, in its place by time, never as "not decided yet"."""
    copied = recording.copy(tmp_path / "copy")
    with open_log(copied.store) as log:
        records = list(log.read())
        received = [
            r for r in records if isinstance(r.event, MessageReceived) and r.event.chat == ALICE
        ]
        first, third = received[0], received[2]
        assert log.compact("rotation", Selection(older_than=third.ts, keep=frozenset({first.seq})))
    done = run_cli(
        ["audit", "--store", str(copied.store), "--chat", "Alice", "--json"],
        cwd=copied.workdir,
        env=daemon_env(),
    )
    doc = msgspec.json.decode(done.stdout, type=_Doc)
    assert "pending" not in [t.kind for t in doc.turns]
    assert [t.ts for t in doc.turns] == sorted(t.ts for t in doc.turns)
    assert [t.n for t in doc.turns] == list(range(1, len(doc.turns) + 1))
    kept = doc.turns[0]
    assert kept.kind == "compacted"
    assert kept.reason == "rotation"
    assert [m.text for m in kept.messages] == [QUESTIONS[0]]

    text = _audit(copied, "--chat", "Alice").stdout
    assert "not decided yet" not in text
    assert "decision removed by a compaction (rotation" in text
    assert text.index(QUESTIONS[0]) < text.index(QUESTIONS[2])


def _seq_of(recording: Recording, msg_id: str) -> int:
    with open_reader(recording.store) as log:
        return next(
            r.seq
            for r in log.read()
            if isinstance(r.event, MessageSkipped) and r.event.msg_id == msg_id
        )


@pytest.mark.parametrize(
    ("turns", "records", "head"),
    [(0, 0, "0 turns, 0 events"), (1, 1, "1 turn, 1 event"), (2, 3, "2 turns, 3 events")],
)
def test_the_headline_counts_in_words(turns: int, records: int, head: str):
    turn = Turn(n=1, kind="skipped", seq=1, ts=0.0, reason="empty")
    record = Recorded(seq=1, ts=0.0, event=TransportStatus(state="connected"))
    audit = Audit(chat=ALICE, turns=[turn] * turns, records=[record] * records)

    assert audit_text(audit, "Alice").splitlines()[0] == f"Audit of Alice: {head}"


def test_a_message_still_waiting_after_a_compaction_stays_pending():
    """Only a message the log says was decided (a later one was, or a rotation's cut-off
    is past it) counts as removed: one still waiting, from before a compaction of other
    chats' events or after it, is ``pending``, the last turn."""

    def received(seq: int, msg_id: str) -> Recorded:
        return Recorded(
            seq=seq, ts=float(seq), event=MessageReceived(chat=ALICE, msg_id=msg_id, sender=ALICE)
        )

    expiry = Compacted.of("expiry", {"LlmRequested": 1}, 3, seqs=[3], by_chat={ALICE: 1})
    records = [received(1, "M1"), received(4, "M4"), Recorded(seq=5, ts=5.0, event=expiry)]
    records.append(received(6, "M6"))
    result = audit(records, ALICE)
    [turn] = result.turns
    assert turn.kind == "pending"
    assert [m.msg_id for m in turn.messages] == ["M1", "M4", "M6"]
