"""Attachments on stdio message lines (docs/stdio.md): described at once, their
bytes fetched only when the daemon asks the source the line came with."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import msgspec
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from events.model import Media, MessageReceived
from pipeline.media import MediaError, MediaStore
from pipeline.transport._stdio import _SKIM, MAX_LINE_BYTES
from pipeline.transport._stdio_media import elided, skim
from tests import test_stdio_transport as stdio
from tests.media_files import b64, pdf, voice_note, write
from tests.test_stdio_transport import ALICE, MakeTransport, StdinPipe, running, warnings_in

pytestmark = pytest.mark.anyio
# The stdio tests' fixtures: a real pipe for stdin, transports that read it.
stdin = stdio.stdin
make_transport = stdio.make_transport


async def test_a_voice_note_by_path_is_described_and_fetched_on_demand(
    stdin: StdinPipe, make_transport: MakeTransport, tmp_path: Path
) -> None:
    data = voice_note(5000)
    path = write(tmp_path, "note.ogg", data)
    line = {"id": "V1", "chat": ALICE, "media": {"kind": "voice", "path": str(path), "seconds": 7}}
    async with running(make_transport()) as harness:
        stdin.write(line)
        inbound = await harness.next_fact()

    event = inbound.event
    assert isinstance(event, MessageReceived)
    assert (event.text, event.kind) == ("", "audio")  # a voice note is audio with PTT
    assert event.media == Media(kind="voice", mime="audio/ogg", seconds=7.0)
    assert inbound.media is not None
    assert inbound.media.size == 5000
    stored = await MediaStore.of(tmp_path / "store").save(inbound.media, 10_000)
    assert MediaStore.of(tmp_path / "store").read(stored.sha256) == data


async def test_a_document_inline_with_a_caption(
    stdin: StdinPipe, make_transport: MakeTransport, tmp_path: Path
) -> None:
    data = pdf("Hello")
    media = {"kind": "document", "mime": "application/pdf", "data": b64(data), "file_name": "a.pdf"}
    async with running(make_transport()) as harness:
        stdin.write({"chat": ALICE, "text": "Read this", "media": media})
        inbound = await harness.next_fact()

    event = inbound.event
    assert isinstance(event, MessageReceived)
    assert (event.text, event.kind) == ("Read this", "document")
    assert event.media == Media(kind="document", mime="application/pdf", file_name="a.pdf")
    assert inbound.media is not None
    stored = await MediaStore.of(tmp_path).save(inbound.media, 10_000)
    assert stored.size == len(data)


async def test_types_are_guessed_from_names_when_not_given(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    async with running(make_transport()) as harness:
        stdin.write(
            {"chat": ALICE, "media": {"kind": "document", "path": "/srv/in/Report.pdf"}},
            {"chat": ALICE, "media": {"kind": "image", "data": "iVBORw0KGgo="}},
            {"chat": ALICE, "media": {"kind": "sticker"}},
        )
        report, image, sticker = [(await harness.next_fact()) for _ in range(3)]

    assert isinstance(report.event, MessageReceived)
    assert report.event.media == Media(
        kind="document", mime="application/pdf", file_name="Report.pdf"
    )
    assert isinstance(image.event, MessageReceived)
    assert image.event.media is not None
    assert image.event.media.mime == "image/jpeg"  # WhatsApp's images are JPEGs
    assert sticker.media is None  # stickers are ignored: nothing to fetch


async def test_bad_media_lines_are_reported_and_skipped(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with running(make_transport()) as harness:
            stdin.write(
                {"chat": ALICE},
                {"chat": ALICE, "media": {"kind": "image"}},
                {"chat": ALICE, "media": {"kind": "voice", "path": "note.ogg"}},
                {"chat": ALICE, "media": {"kind": "image", "path": "/a.jpg", "data": "AA=="}},
                {"chat": ALICE, "media": {"kind": "gif", "path": "/a.gif"}},
                {"chat": ALICE, "media": {"kind": "image", "data": 12345}},
                {"chat": ALICE, "text": "still here"},
            )
            last = await harness.next_fact()
    assert isinstance(last.event, MessageReceived)
    assert last.event.text == "still here"
    warnings = warnings_in(logs)
    assert len(warnings) == 6
    assert "missing required field `text`" in warnings[0]
    assert "media needs `path` (a file) or `data` (base64)" in warnings[1]
    assert "media.path must be an absolute path" in warnings[2]
    assert "takes `path` or `data`, not both" in warnings[3]
    assert "invalid value - at `$.media.kind`" in warnings[4]  # the value is not quoted
    assert "media.data must be a base64 string" in warnings[5]
    assert not any("note.ogg" in w or "gif" in w for w in warnings)  # no content of a line


async def test_a_line_carrying_a_large_file_is_read_whole_and_the_next_lines_follow(
    stdin: StdinPipe, make_transport: MakeTransport, tmp_path: Path
) -> None:
    data = voice_note(6 * 1024 * 1024)  # its line is larger than what is read ahead
    big = {"id": "BIG", "chat": ALICE, "media": {"kind": "voice", "data": b64(data)}}
    async with running(make_transport()) as harness:
        # From a thread: the pipe holds 64 KB, and the reader needs the event loop.
        await anyio.to_thread.run_sync(stdin.write, big, {"id": "T1", "chat": ALICE, "text": "x"})
        first = await harness.next_fact()
        assert first.media is not None
        stored = await MediaStore.of(tmp_path).save(first.media, 10 * 1024 * 1024)
        del first
        second = await harness.next_fact()
    assert MediaStore.of(tmp_path).read(stored.sha256) == data
    assert isinstance(second.event, MessageReceived)
    assert (second.event.msg_id, second.event.text) == ("T1", "x")


async def test_an_attachment_too_long_for_a_line_leaves_the_message_and_its_caption(
    stdin: StdinPipe, make_transport: MakeTransport, tmp_path: Path
) -> None:
    """Its base64 past the line limit: the line is read past, keeping its ends, and the
    message is recorded with an attachment that says it could not be read."""
    limit = MAX_LINE_BYTES
    data = "QUJD" * (limit // 4 + 2**18)  # 1 MiB of base64 over the limit
    video = {"kind": "video", "data": data}
    first = {"id": "L1", "chat": ALICE, "text": 'see "this"\\', "media": video}
    last = {"media": {"data": data, "kind": "image", "file_name": "a.jpg"}, "id": "L2"}
    last |= {"chat": ALICE, "text": "and that"}  # the string first and last in its object
    text_too_long = {"id": "L3", "chat": ALICE, "text": data}
    with structlog.testing.capture_logs() as logs:
        async with running(make_transport()) as harness:
            for line in (first, last, text_too_long):
                await stdin.write_large(json.dumps(line).encode() + b"\n")
            stdin.write({"id": "L4", "chat": ALICE, "text": "after"})
            facts = [await harness.next_fact() for _ in range(3)]

    events = [f.event for f in facts]
    assert all(isinstance(e, MessageReceived) for e in events)
    said = [(e.msg_id, e.text, e.media.kind if e.media else None) for e in events]  # type: ignore[union-attr]
    assert said == [
        ("L1", 'see "this"\\', "video"),
        ("L2", "and that", "image"),
        ("L4", "after", None),
    ]
    for fact in facts[:2]:
        assert fact.media is not None
        assert fact.media.size == len(data) * 3 // 4  # over any media.max_mb
        with pytest.raises(MediaError, match=r"give the file as media\.path"):
            await MediaStore.of(tmp_path).save(fact.media, 2**30)
    mib = limit // 2**20
    assert warnings_in(logs) == [
        f"stdin line 1: longer than {mib} MiB, read without its media.data"
        " (give such a file as media.path)",
        f"stdin line 2: longer than {mib} MiB, read without its media.data"
        " (give such a file as media.path)",
        f"stdin line 3: longer than {mib} MiB, skipped",
    ]


@given(
    before=st.dictionaries(st.text(max_size=8), st.text(max_size=30), max_size=4),
    after=st.dictionaries(st.text(max_size=8), st.text(max_size=30), max_size=4),
    characters=st.integers(min_value=200, max_value=2000),
)
@settings(max_examples=300, deadline=None)
def test_skim_leaves_out_exactly_the_string_between_the_kept_ends(
    before: dict[str, str], after: dict[str, str], characters: int
) -> None:
    """Whatever surrounds it (escapes, quotes, keys in any order), the string that runs
    from the kept head into the kept tail is the one left out, and nothing else."""
    after = {k: v for k, v in after.items() if k not in before and k != "data"}
    media = {**{k: v for k, v in before.items() if k != "data"}, "data": "QUJD" * characters}
    line = json.dumps({**media, **after}, ensure_ascii=False).encode()
    start = line.index(b'"QUJD')
    end = start + 1 + 4 * characters  # its closing quote
    head, tail = line[: start + 100], line[end - 100 :]
    skimmed = skim(head, tail, len(line))
    assert skimmed is not None
    decoded = json.loads(skimmed)
    assert elided(msgspec.Raw(json.dumps(decoded["data"]).encode())) == 4 * characters
    assert {k: v for k, v in decoded.items() if k != "data"} == {
        k: v for k, v in {**media, **after}.items() if k != "data"
    }


def test_skim_leaves_a_line_whose_other_long_string_outlasts_a_kept_end() -> None:
    """A caption or quote longer than a kept end, after the base64 or before it: the
    string the head leaves open and the one the tail closes are not the same, so the
    line cannot be rebuilt; it is skipped, never recorded without the words between."""
    data = "QUJD" * 100_000
    media = {"kind": "image", "data": data}
    quote = {"id": "Q1", "text": "a long message, quoted " * 5000}
    named = {"kind": "image", "file_name": "the beach.jpg " * 6000, **media}
    for line in (
        {"id": "L1", "chat": ALICE, "media": media, "text": "what is this?", "quoted": quote},
        {"id": "L2", "chat": ALICE, "quoted": quote, "media": media, "text": "and this?"},
        {"id": "L3", "chat": ALICE, "media": named},
    ):
        raw = json.dumps(line).encode()
        assert skim(raw[:_SKIM], raw[-_SKIM:], len(raw)) is None, line["id"]
    # Its base64 escaped as some writers do ("\/", "\n") is still the one string.
    escaped = json.dumps({"id": "L4", "chat": ALICE, "media": media, "text": "ok"})
    raw = escaped.replace("QUJD", "Q\\/J\\nD").encode()
    skimmed = skim(raw[:_SKIM], raw[-_SKIM + 1 :], len(raw))
    assert skimmed is not None
    assert json.loads(skimmed)["text"] == "ok"
