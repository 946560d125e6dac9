"""A burst's document step: whatever goes wrong reading the file, the outcome is recorded
(the message leaves the queue) and the sender is told; the chat's turn never fails for it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from events.memory import MemoryLog
from events.model import DocumentRead, Media, MessageReceived, ReplyPlanned
from pipeline.config import config_from_dict
from pipeline.daemon import _media
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._media import MediaStep
from pipeline.daemon._replies import Ids
from pipeline.media import MediaStore
from projections.queue import Item
from tests.media_files import CERTIFICATE, pdf

ALICE = "491701111111@s.whatsapp.net"


def step(tmp_path: Path) -> MediaStep:
    ids = Ids(lambda: "r1", lambda: None)
    return MediaStep(FoldedLog(MemoryLog()), lambda loaded: None, MediaStore(tmp_path), ids)  # type: ignore[arg-type,return-value]


def item(sha256: str) -> tuple[Item, Media]:
    media = Media(kind="document", mime="application/pdf", sha256=sha256, file_name="scan.pdf")
    message = MessageReceived(chat=ALICE, msg_id="D1", sender=ALICE, kind="document", media=media)
    return Item(seq=1, ts=0.0, message=message), media


async def read(tmp_path: Path, data: bytes) -> list[object]:
    sha256 = hashlib.sha256(data).hexdigest()
    (tmp_path / sha256).write_bytes(data)
    config = config_from_dict({"whatsapp": {"phone_number": "491700000000"}})
    found, media = item(sha256)
    return list(await step(tmp_path)._read(config, ALICE, found, media))


def told(events: list[object]) -> tuple[str, str]:
    read, reply = events
    assert isinstance(read, DocumentRead)
    assert isinstance(reply, ReplyPlanned)
    assert read.error
    return read.error, reply.text


@pytest.mark.anyio
async def test_a_pdf_encrypted_for_a_certificate_is_told_not_a_failed_turn(
    tmp_path: Path,
) -> None:
    error, text = told(await read(tmp_path, pdf("Hello", encrypt=CERTIFICATE)))
    assert text == "I couldn't read that document: it uses a PDF feature I can't read."
    assert "NotImplementedError" in error


@pytest.mark.anyio
async def test_any_error_of_the_reader_is_recorded_as_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a reader's bug")

    monkeypatch.setattr(_media, "read_apart", broken)
    error, text = told(await read(tmp_path, pdf("Hello")))
    assert text == "I couldn't read that document: something went wrong reading it."
    assert error == "internal error: RuntimeError: a reader's bug"
