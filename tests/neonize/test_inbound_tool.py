"""``python -m pipeline inbound``: one conversion for the tool, the transport and stdio.

The command runs as a real subprocess for what a user sees (lines, stderr,
exit status). Every shape of the README's table then goes three ways, and
must come out as the same fact: through neonize's real dispatch into the
WhatsApp transport, through the conversion the tool prints, and through the
stdio transport fed the printed line.
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa

from events.model import Media, MessageReceived
from pipeline.tools._inbound import MAX_FILE_BYTES
from pipeline.transport import Fact, StdioTransport
from pipeline.transport._stdio_lines import inbound_line
from pipeline.transport.neonize import _convert as convert
from pipeline.transport.neonize._secret import Secrets
from tests.inbound_shapes import OWNER_JID, SHAPES, ev, nested_event, text, undecryptable
from tests.neonize_fakes import OWNER, OWNER_LID, dispatch, message_ev, running
from tests.test_inbound_table import run_inbound
from tests.test_stdio_transport import StdinPipe
from tests.test_stdio_transport import running as stdio_running

CASES = [case for cases in SHAPES.values() for case in cases]


def capture(tmp_path: Path, name: str, event: Any) -> Path:
    path = tmp_path / name
    path.write_bytes(event.SerializeToString())
    return path


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


# -- the command ---------------------------------------------------------------


def test_each_file_gives_one_line_in_order(tmp_path: Path) -> None:
    files = [
        capture(tmp_path, "a.pb", ev(wa.Message(conversation="first"), msg_id="A")),
        capture(tmp_path, "b.pb", ev(wa.Message(reactionMessage=wa.ReactionMessage(text="x")))),
        capture(tmp_path, "c.pb", ev(text("third"), msg_id="C")),
    ]
    done = run_inbound(*files)

    assert (done.returncode, done.stderr) == (0, "")
    first, dropped, third = lines(done.stdout)
    assert (first["type"], first["id"], first["text"]) == ("message", "A", "first")
    assert dropped == {"type": "dropped", "reason": "reaction"}
    assert (third["id"], third["text"], third["expiration"]) == ("C", "third", 604_800)


def test_files_that_are_no_captured_event_get_one_line_each_and_exit_2(tmp_path: Path) -> None:
    good = capture(tmp_path, "good.pb", ev(wa.Message(conversation="kept")))
    empty = tmp_path / "empty.pb"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\xff\xfe not a protobuf")
    huge = tmp_path / "huge.pb"
    with huge.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)
    other_kind = capture(tmp_path, "u.pb", undecryptable(unavailable=True))
    deep = tmp_path / "deep.pb"
    deep.write_bytes(nested_event(10_000))
    missing = tmp_path / "missing.pb"

    done = run_inbound(good, empty, junk, tmp_path, huge, other_kind, deep, missing)

    assert done.returncode == 2
    assert [line["text"] for line in lines(done.stdout)] == ["kept"]
    errors = done.stderr.splitlines()
    assert len(errors) == 7, errors
    assert errors[0] == f"wabot: {empty}: empty"
    assert errors[1].startswith(f"wabot: {junk}: not a neonize message event (")
    assert errors[2] == f"wabot: {tmp_path}: not a file"
    assert errors[3] == f"wabot: {huge}: larger than 16 MiB: not a captured event"
    assert errors[4].startswith(f"wabot: {other_kind}: not a neonize message event (missing ")
    assert errors[4].endswith("an undecryptable-message event needs --undecryptable)")
    assert errors[5].startswith(f"wabot: {deep}: not a neonize message event (")
    assert errors[6] == f"wabot: {missing}: No such file or directory"
    assert "Traceback" not in done.stderr


def test_an_undecryptable_event_needs_the_flag_and_a_message_event_must_not_have_it(
    tmp_path: Path,
) -> None:
    withheld = capture(tmp_path, "u.pb", undecryptable(unavailable=True))
    message = capture(tmp_path, "m.pb", ev(wa.Message(conversation="hi")))

    done = run_inbound("--undecryptable", withheld, message)

    assert done.returncode == 2
    [line] = lines(done.stdout)
    assert (line["type"], line["reason"]) == ("undecryptable", "unavailable")
    assert done.stderr.strip().endswith("a message event is read without --undecryptable)")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--me-pn", "owner"], "wabot: --me-pn: 'owner' is not a phone number"),
        (["--me-lid", "491700000000@s.whatsapp.net"], "wabot: --me-lid: '491700000000@s"),
    ],
)
def test_a_bad_owner_id_is_one_line_and_exit_2(tmp_path: Path, args: list[str], error: str) -> None:
    done = run_inbound(*args, capture(tmp_path, "m.pb", ev(wa.Message(conversation="hi"))))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(error)
    assert len(done.stderr.splitlines()) == 1


def test_the_owners_ids_name_the_note_to_self_chat(tmp_path: Path) -> None:
    # WhatsApp left RecipientAlt out: the note to self is named by the owner's LID only.
    note = ev(
        text("milk"),
        chat=f"{OWNER_LID}@lid",
        sender=f"{OWNER_LID}:2@lid",
        from_me=True,
        msg_id="N",
    )
    files = [capture(tmp_path, "note.pb", note)]
    bare = run_inbound(*files)
    known = run_inbound("--me-pn", f"+{OWNER}", "--me-lid", OWNER_LID, *files)

    assert lines(bare.stdout)[0]["chat_alt"] is None
    assert lines(known.stdout)[0]["chat_alt"] == OWNER_JID


# -- one conversion, three ways --------------------------------------------------


def converted(case_events: Any, secrets: Secrets, undecryptable_case: bool) -> list[Fact]:
    """What the conversion makes of a case's events (dropped ones left out)."""
    facts: list[Fact] = []
    for event in case_events:
        fact = convert.undecryptable(event) if undecryptable_case else convert.inbound(event)
        if not isinstance(fact, convert.Dropped):
            facts.append(convert.with_secrets(fact, event, secrets))
            if isinstance(facts[-1], MessageReceived):  # kept: the session takes every fact
                convert.remember_secret(secrets, event, facts[-1])
    return facts


@pytest.mark.anyio
async def test_the_whatsapp_transport_delivers_exactly_what_the_tool_converts(
    make_transport: Any,
) -> None:
    secrets = Secrets()
    expected: list[Fact] = []
    async with running(*make_transport()) as session:
        await session.connected()
        for case in CASES:
            expected += converted(case.events, secrets, case.undecryptable)
            for event in case.events:
                await dispatch(session.client, event)
        await dispatch(session.client, message_ev(wa.Message(conversation="end"), msg_id="END"))
        delivered = []
        while getattr(fact := await session.next_fact(), "msg_id", None) != "END":
            delivered.append(fact)

    assert delivered == expected
    kinds = {type(f).__name__ for f in expected}
    assert kinds == {
        "MessageReceived",
        "MessageEdited",
        "MessageRevoked",
        "TimerChanged",
        "MessageUndecryptable",
    }


@pytest.fixture
def stdin() -> Iterator[StdinPipe]:
    """Closed after the test's event loop, as the stdio transport's own tests do."""
    pipe = StdinPipe()
    yield pipe
    pipe.close()
    pipe.reader.close()


@pytest.mark.anyio
async def test_the_line_fed_to_the_stdio_transport_is_the_same_fact(
    tmp_path: Path, stdin: StdinPipe
) -> None:
    attachment = tmp_path / "bytes.bin"
    attachment.write_bytes(b"the attachment's bytes are not in the event")
    secrets = Secrets()
    facts = [f for case in CASES for f in converted(case.events, secrets, case.undecryptable)]
    transport = StdioTransport(OWNER, stdin=stdin.reader, stdout=io.BytesIO())
    try:
        async with stdio_running(transport) as harness:
            for fact in facts:
                line = json.loads(inbound_line(fact))
                if line.get("media") and line["media"]["kind"] != "sticker":
                    line["media"]["path"] = str(attachment)  # to replay, the bytes are added
                stdin.write(line)
            read = [(await harness.next_fact()).event for _ in facts]
    finally:
        await transport.aclose()

    assert [_declared(f) for f in read] == [_declared(f) for f in facts]


def _declared(fact: Fact) -> Fact:
    """The fact with its attachment as the line declares it: kind, type, length, name
    (the byte count is measured when stored; a round video note's problem is the transport's)."""
    if not isinstance(fact, MessageReceived) or fact.media is None:
        return fact
    media = fact.media
    kept = Media(kind=media.kind, mime=media.mime, seconds=media.seconds, file_name=media.file_name)
    return msgspec.structs.replace(fact, media=kept)
