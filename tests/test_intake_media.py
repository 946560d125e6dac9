"""Attachments at intake (issue 22.2): a message is recorded before its bytes are
fetched, a fetch that hangs holds up neither that chat's later messages nor any
other chat, and its failure is recorded when the time limit passes."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from events.memory import MemoryLog
from events.model import Media, MediaFetched, MessageReceived
from events.testing import FakeClock
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.daemon import FoldedLog, Intake, Settings
from pipeline.media import MediaSink, MediaStore
from pipeline.transport import Inbound, received_message
from projections import queue

pytestmark = pytest.mark.anyio
ALICE = "491701111111@s.whatsapp.net"
BOB = "491702222222@s.whatsapp.net"
WAIT = 10.0  # a bound on waiting for evidence, never a sleep


class Hanging:
    """A download that never ends, as a WhatsApp download stuck on a dead connection."""

    size = 2048
    in_hand = False

    def __init__(self) -> None:
        self.started = anyio.Event()

    async def download(self, sink: MediaSink) -> None:
        self.started.set()
        await anyio.sleep_forever()


class Ready:
    """Bytes that come at once."""

    size = 4
    in_hand = False

    async def download(self, sink: MediaSink) -> None:
        sink.write(b"OggS")


def loaded() -> LoadedConfig:
    config = config_from_dict(
        {
            "whatsapp": {"phone_number": "491700000000"},
            "monitored_entities": [
                {"type": "user", "phone": "491701111111", "name": "Alice"},
                {"type": "user", "phone": "491702222222", "name": "Bob"},
            ],
        }
    )
    return LoadedConfig(config=config, hash="h", path="app.json", secrets=Secrets())


def voice(msg_id: str, chat: str = ALICE) -> MessageReceived:
    return received_message(
        chat=chat, msg_id=msg_id, text="", sent_at=1.0, kind="audio", media=Media(kind="voice")
    )


def text(msg_id: str, chat: str) -> MessageReceived:
    return received_message(chat=chat, msg_id=msg_id, text="hi", sent_at=1.0)


async def fetched_of(folded: FoldedLog, msg_id: str) -> MediaFetched:
    """The ``MediaFetched`` of ``msg_id`` once it is in the log; projections caught up."""
    with anyio.fail_after(WAIT):
        while True:
            found = [
                r.event
                for r in folded.log.read()
                if isinstance(r.event, MediaFetched) and r.event.msg_id == msg_id
            ]
            if found:
                folded.catch_up()
                return found[0]
            await anyio.to_thread.run_sync(folded.log.wait, folded.log.last_seq(), WAIT)


async def test_a_hanging_download_holds_back_no_message_and_fails_at_its_time_limit(
    tmp_path: Path,
) -> None:
    folded = FoldedLog(MemoryLog(clock=FakeClock()))
    intake = Intake(folded, Settings(loaded()), MediaStore.of(tmp_path), fetch_timeout=0.2)
    stuck = Hanging()
    async with anyio.create_task_group() as tg:
        tg.start_soon(intake.run)
        with anyio.fail_after(WAIT):  # deliver never waits for the bytes
            assert await intake.deliver(Inbound(voice("A1"), 1.0, stuck))
            await stuck.started.wait()
            assert await intake.deliver(Inbound(text("B1", BOB), 1.0))
            assert await intake.deliver(Inbound(text("A2", ALICE), 1.0))
        failed = await fetched_of(folded, "A1")
        tg.cancel_scope.cancel()

    recorded = [r.event for r in folded.log.read()]
    assert [(type(e).__name__, getattr(e, "msg_id", "")) for e in recorded] == [
        ("MessageReceived", "A1"),
        ("MessageReceived", "B1"),
        ("MessageReceived", "A2"),
        ("MediaFetched", "A1"),
    ]
    first = recorded[0]
    assert isinstance(first, MessageReceived)
    assert first.media == Media(kind="voice", fetching=True)
    assert failed.media == Media(
        kind="voice", size=2048, problem="download_failed", detail="not fetched within 0.2 s"
    )
    [item, *_] = queue.pending(folded.view.queue, ALICE)
    assert item.media == failed.media  # the agent sees the failure, and tells Alice


async def test_one_chats_stuck_fetches_leave_another_chats_fetch_alone(tmp_path: Path) -> None:
    folded = FoldedLog(MemoryLog(clock=FakeClock()))
    intake = Intake(folded, Settings(loaded()), MediaStore.of(tmp_path), fetch_timeout=WAIT * 3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(intake.run)
        for n in range(5):  # more than one chat may fetch at once
            await intake.deliver(Inbound(voice(f"A{n}"), 1.0, Hanging()))
        await intake.deliver(Inbound(voice("B1", BOB), 1.0, Ready()))
        done = await fetched_of(folded, "B1")
        tg.cancel_scope.cancel()

    assert done.media.sha256
    assert done.media.problem is None


async def test_a_fetch_the_last_run_left_unfinished_is_recorded_as_failed(
    tmp_path: Path,
) -> None:
    """The source went with the process (kill -9 mid-download): the next start says so."""
    log = MemoryLog(clock=FakeClock())
    log.append(
        MessageReceived(
            chat=ALICE,
            msg_id="A1",
            sender=ALICE,
            kind="audio",
            media=Media(kind="voice", fetching=True),
        ),
        MessageReceived(
            chat=BOB,
            msg_id="B1",
            sender=BOB,
            kind="audio",
            media=Media(kind="voice", fetching=True),
        ),
        MediaFetched(chat=BOB, msg_id="B1", media=Media(kind="voice", sha256="b" * 64)),
    )
    intake = Intake(FoldedLog(log), Settings(loaded()), MediaStore.of(tmp_path))

    [settled] = intake.interrupted()
    assert settled.key == f"{ALICE}/A1/media"
    assert settled.event == MediaFetched(
        chat=ALICE,
        msg_id="A1",
        media=Media(
            kind="voice",
            problem="download_failed",
            detail="the bot stopped before the download finished",
        ),
    )


class Gated:
    """Bytes that come when the test says so."""

    size = 4
    in_hand = False

    def __init__(self) -> None:
        self.go = anyio.Event()

    async def download(self, sink: MediaSink) -> None:
        await self.go.wait()
        sink.write(b"OggS")


async def test_a_stop_waits_for_the_attachments_on_their_way(tmp_path: Path) -> None:
    """The daemon's grace period lets a fetch finish, so a restart asks nobody to resend."""
    folded = FoldedLog(MemoryLog(clock=FakeClock()))
    intake = Intake(folded, Settings(loaded()), MediaStore.of(tmp_path))
    source = Gated()
    done = anyio.Event()

    async def stopping() -> None:
        await intake.fetched()
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(intake.run)
        await intake.deliver(Inbound(voice("A1"), 1.0, source))
        tg.start_soon(stopping)
        await anyio.wait_all_tasks_blocked()
        assert not done.is_set()
        source.go.set()
        with anyio.fail_after(WAIT):
            await done.wait()
        tg.cancel_scope.cancel()

    fetched = [r.event for r in folded.log.read() if isinstance(r.event, MediaFetched)]
    assert [f.media.sha256 != "" for f in fetched] == [True]


async def test_a_chat_with_no_fetch_under_way_holds_no_lane(tmp_path: Path) -> None:
    """Each chat's fetches queue in a lane of their own; a lane goes with the chat's
    last fetch, or months of chats that once sent an attachment would each keep one."""
    folded = FoldedLog(MemoryLog(clock=FakeClock()))
    intake = Intake(folded, Settings(loaded()), MediaStore.of(tmp_path))
    async with anyio.create_task_group() as tg:
        tg.start_soon(intake.run)
        await intake.deliver(Inbound(voice("A1", ALICE), 1.0, Ready()))
        await intake.deliver(Inbound(voice("B1", BOB), 1.0, Ready()))
        with anyio.fail_after(WAIT):
            await intake.fetched()
        tg.cancel_scope.cancel()

    fetches = {r.event.msg_id for r in folded.log.read() if isinstance(r.event, MediaFetched)}
    assert fetches == {"A1", "B1"}
    assert intake._lanes == {}
