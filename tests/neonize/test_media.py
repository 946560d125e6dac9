"""WhatsApp attachments through the neonize transport: real protos through neonize's
dispatch, described on arrival, downloaded (through the Go side's DownloadAny) only
when the daemon asks, never before the size check, never for a chat it does not watch."""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from neonize._binder import gocode
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    AudioMessage,
    DocumentMessage,
    FutureProofMessage,
    ImageMessage,
    Message,
    StickerMessage,
    VideoMessage,
)

from events.memory import MemoryLog
from events.model import Media, MediaFetched, MessageReceived
from events.testing import FakeClock
from pipeline.config import LoadedConfig, MediaConfig, Secrets, config_from_dict
from pipeline.daemon import FoldedLog, Intake, Settings
from pipeline.daemon._fetch import fetch_media
from pipeline.media import MediaStore
from pipeline.transport import Inbound
from pipeline.transport.neonize import _gocalls as gocalls
from projections import queue
from tests.media_files import jpeg
from tests.neonize_fakes import ALICE, WAIT, dispatch, message_ev, running
from tests.neonize_fakes import MEDIA_KEYS as KEYS

pytestmark = pytest.mark.anyio


async def arrivals(make_transport: Any, *messages: Any) -> tuple[list[Inbound], Any]:
    """What the transport hands over for ``messages`` (as MessageEvs), and the Go fake."""
    transport, go = make_transport()
    handed: list[Inbound] = []
    async with running(transport, go) as session:
        await session.connected()
        for n, message in enumerate(messages):
            await dispatch(session.client, message_ev(message, msg_id=f"3EB0{n}"))
        for _ in messages:
            handed.append(await session._inbound.receive())
    return handed, go


def voice_note(length: int = 2048) -> Any:
    part = AudioMessage(
        mimetype="audio/ogg; codecs=opus", fileLength=length, seconds=7, PTT=True, **KEYS
    )
    return Message(audioMessage=part)


async def test_a_voice_note_is_described_on_arrival_and_not_downloaded(make_transport: Any) -> None:
    [inbound], go = await arrivals(make_transport, voice_note())

    event = inbound.event
    assert isinstance(event, MessageReceived)
    assert (event.kind, event.text) == ("audio", "")
    assert event.media == Media(kind="voice", mime="audio/ogg; codecs=opus", size=2048, seconds=7.0)
    assert inbound.media is not None
    assert inbound.media.size == 2048
    assert go.downloads == []  # nothing fetched until the daemon asks


async def test_the_daemon_fetches_the_whole_message_through_download_any(
    make_transport: Any, tmp_path: Path
) -> None:
    [inbound], go = await arrivals(make_transport, voice_note(len(b"OggS") + 2048))
    assert isinstance(inbound.event, MessageReceived)
    store = MediaStore.of(tmp_path / "store")

    fetched = await fetch_media(inbound.event, inbound.media, MediaConfig(), store)

    assert fetched.media is not None
    assert fetched.media.problem is None
    assert store.read(fetched.media.sha256) == go.download_data
    assert fetched.media.size == len(go.download_data)
    [asked] = go.downloads
    assert asked == voice_note(len(b"OggS") + 2048)  # ev.Message itself, not its audio part


async def test_an_album_photo_is_fetched_as_the_photo_whatsmeow_left_wrapped(
    make_transport: Any, tmp_path: Path
) -> None:
    photo = Message(imageMessage=ImageMessage(mimetype="image/jpeg", fileLength=2052, **KEYS))
    child = Message(associatedChildMessage=FutureProofMessage(message=photo))
    [inbound], go = await arrivals(make_transport, child)
    go.download_data = jpeg()
    assert isinstance(inbound.event, MessageReceived)
    assert inbound.event.media == Media(kind="image", mime="image/jpeg", size=2052)

    fetched = await fetch_media(
        inbound.event, inbound.media, MediaConfig(), MediaStore.of(tmp_path)
    )

    assert fetched.media is not None
    assert fetched.media.problem is None
    # DownloadAny looks for the attachment at the top of the message it is given.
    assert go.downloads == [photo]


async def test_an_image_with_a_caption(make_transport: Any) -> None:
    image = ImageMessage(mimetype="image/jpeg", caption="Look!", fileLength=90_000, **KEYS)
    [inbound], _ = await arrivals(make_transport, Message(imageMessage=image))
    event = inbound.event
    assert isinstance(event, MessageReceived)
    assert (event.kind, event.text) == ("image", "Look!")
    assert event.media == Media(kind="image", mime="image/jpeg", size=90_000)


async def test_a_document_with_a_caption_keeps_its_file_name(make_transport: Any) -> None:
    doc = DocumentMessage(
        mimetype="application/pdf",
        fileName="Rechnung.pdf",
        title="Rechnung",
        caption="Bitte prüfen",
        fileLength=123_456,
        pageCount=2,
        **KEYS,
    )
    [inbound], _ = await arrivals(make_transport, Message(documentMessage=doc))
    event = inbound.event
    assert isinstance(event, MessageReceived)
    assert (event.kind, event.text) == ("document", "Bitte prüfen")
    assert event.media == Media(
        kind="document", mime="application/pdf", size=123_456, file_name="Rechnung.pdf"
    )


async def test_stickers_and_video_notes_are_never_downloaded(make_transport: Any) -> None:
    sticker = Message(stickerMessage=StickerMessage(mimetype="image/webp", fileLength=900, **KEYS))
    ptv = Message(ptvMessage=VideoMessage(mimetype="video/mp4", seconds=12, fileLength=9, **KEYS))
    [st, video], _ = await arrivals(make_transport, sticker, ptv)
    assert st.media is None
    assert video.media is None
    assert isinstance(video.event, MessageReceived)
    assert video.event.media is not None
    assert (video.event.media.kind, video.event.media.problem) == ("video", "unsupported")


async def test_an_oversized_file_is_refused_by_its_declared_size_before_downloading(
    make_transport: Any, tmp_path: Path
) -> None:
    big = DocumentMessage(mimetype="video/x-matroska", fileName="film.mkv", fileLength=40 << 20)
    [inbound], go = await arrivals(make_transport, Message(documentMessage=big))
    assert isinstance(inbound.event, MessageReceived)

    fetched = await fetch_media(
        inbound.event, inbound.media, MediaConfig(), MediaStore.of(tmp_path)
    )

    assert fetched.media is not None
    assert (fetched.media.problem, fetched.media.size) == ("too_large", 40 << 20)
    assert fetched.media.detail == "40.0 MB, over the 16 MB limit"
    assert fetched.media.sha256 == ""
    assert go.downloads == []


async def test_a_failed_download_is_recorded_with_whatsapps_reason(
    make_transport: Any, tmp_path: Path
) -> None:
    [inbound], go = await arrivals(make_transport, voice_note())
    go.download_error = "failed to download file: download failed with status code 404"
    assert isinstance(inbound.event, MessageReceived)

    fetched = await fetch_media(
        inbound.event, inbound.media, MediaConfig(), MediaStore.of(tmp_path)
    )

    assert fetched.media is not None
    assert fetched.media.problem == "download_failed"
    assert "status code 404" in fetched.media.detail
    assert len(go.downloads) == 1


async def test_a_download_larger_than_declared_stops_at_the_limit(
    make_transport: Any, tmp_path: Path
) -> None:
    [inbound], go = await arrivals(make_transport, voice_note(1000))  # says 1000 bytes
    go.download_data = b"OggS" + b"\0" * (2 << 20)  # sends 2 MB
    assert isinstance(inbound.event, MessageReceived)

    fetched = await fetch_media(
        inbound.event, inbound.media, MediaConfig(max_mb=1), MediaStore.of(tmp_path)
    )
    assert fetched.media is not None
    assert (fetched.media.problem, fetched.media.detail) == ("too_large", "over the 1 MB limit")
    assert list((tmp_path / "media").iterdir()) == []


async def test_intake_never_downloads_for_a_chat_it_does_not_watch(
    make_transport: Any, tmp_path: Path
) -> None:
    stranger = message_ev(voice_note(), chat="491709999999@s.whatsapp.net", msg_id="S1")
    alice = message_ev(voice_note(), chat=f"{ALICE}@s.whatsapp.net", msg_id="A1")
    transport, go = make_transport()
    async with running(transport, go) as session:
        await session.connected()
        await dispatch(session.client, stranger)
        await dispatch(session.client, alice)
        handed = [await session._inbound.receive() for _ in range(2)]

    folded = FoldedLog(MemoryLog(clock=FakeClock(1_764_070_000.0)))
    intake = Intake(folded, Settings(_loaded()), MediaStore.of(tmp_path))
    async with anyio.create_task_group() as tg:
        tg.start_soon(intake.run)
        assert [await intake.deliver(inbound) for inbound in handed] == [False, True]
        fetched = await until_fetched(folded)
        tg.cancel_scope.cancel()

    assert intake.dropped == 1
    assert len(go.downloads) == 1  # Alice's only
    [recorded] = [r.event for r in folded.log.read() if isinstance(r.event, MessageReceived)]
    assert recorded.msg_id == fetched.msg_id == "A1"
    assert recorded.media is not None
    assert recorded.media.fetching  # recorded before its download
    [item] = queue.pending(folded.view.queue, recorded.chat)
    assert item.media == fetched.media
    assert item.media.sha256
    assert not item.media.fetching


async def until_fetched(folded: FoldedLog) -> MediaFetched:
    """The first ``MediaFetched`` in the log, once there; the projections caught up."""
    with anyio.fail_after(WAIT):
        while True:
            found = [r.event for r in folded.log.read() if isinstance(r.event, MediaFetched)]
            if found:
                folded.catch_up()
                return found[0]
            await anyio.to_thread.run_sync(folded.log.wait, folded.log.last_seq(), WAIT)


def _loaded() -> LoadedConfig:
    config = config_from_dict(
        {
            "whatsapp": {"phone_number": "491700000000"},
            "monitored_entities": [{"type": "user", "phone": ALICE}],
        }
    )
    return LoadedConfig(config=config, hash="h", path="app.json", secrets=Secrets())


@pytest.mark.parametrize(
    ("call", "thread_name"), [("DownloadAny", "neonize-download"), ("Upload", "neonize-upload")]
)
async def test_a_media_call_that_never_returns_holds_up_neither_the_wait_nor_the_exit(
    monkeypatch: pytest.MonkeyPatch, call: str, thread_name: str
) -> None:
    """The real Go call runs on a daemon thread: the daemon stops waiting at its own time
    limit, and process exit does not join that thread (neonize's executor would)."""
    release = threading.Event()
    monkeypatch.setattr(gocode, call, lambda *_: release.wait(WAIT) and b"")
    try:
        with anyio.move_on_after(0.05) as waited:
            await getattr(gocalls.DaemonThreadGo(), call)(b"uuid", b"", 0)
        assert waited.cancelled_caught
        [thread] = [t for t in threading.enumerate() if t.name == thread_name]
        assert thread.daemon
    finally:
        release.set()
