"""Attachments on disk: content-addressed private files, streamed in, swept when unreferenced."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path

import msgspec
import pytest

from events.model import Media, MessageReceived, Recorded
from pipeline.media import GRACE_SECONDS, MediaError, MediaSink, MediaStore, referenced_media
from pipeline.transport._stdio_media import FileSource, InlineSource
from tests.media_files import b64, voice_note, write

MB = 1024 * 1024


class Chunks:
    """A source that hands over its bytes in the given chunks, counting what it wrote."""

    def __init__(self, *chunks: bytes, size: int | None = None) -> None:
        self.chunks = chunks
        self.size = size
        self.in_hand = True
        self.written = 0

    async def download(self, sink: MediaSink) -> None:
        for chunk in self.chunks:
            sink.write(chunk)
            self.written += len(chunk)


def inline(text: str) -> InlineSource:
    """The source of a line's ``media.data``: the JSON string token, as the line holds it."""
    return InlineSource(msgspec.Raw(json.dumps(text).encode()))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.anyio
async def test_a_file_is_stored_under_its_sha256_privately(tmp_path: Path) -> None:
    store = MediaStore.of(tmp_path)
    data = voice_note(3 * MB)  # more than one read chunk
    source = FileSource(str(write(tmp_path, "note.ogg", data)))

    stored = await store.save(source, 16 * MB)

    digest = hashlib.sha256(data).hexdigest()
    assert (stored.sha256, stored.size, stored.head[:4]) == (digest, len(data), b"OggS")
    assert store.path(digest).read_bytes() == data
    assert mode(store.directory) == 0o700
    assert mode(store.path(digest)) == 0o600
    assert os.listdir(store.directory) == [digest]  # no temporary file left


@pytest.mark.anyio
async def test_the_same_bytes_twice_are_one_file(tmp_path: Path) -> None:
    store = MediaStore.of(tmp_path)
    data = voice_note(1000)
    first = await store.save(inline(b64(data)), MB)
    second = await store.save(FileSource(str(write(tmp_path, "again.ogg", data))), MB)
    assert first.sha256 == second.sha256
    assert os.listdir(store.directory) == [first.sha256]


@pytest.mark.anyio
async def test_a_download_past_the_limit_stops_there_and_leaves_nothing(tmp_path: Path) -> None:
    store = MediaStore.of(tmp_path)
    source = Chunks(b"a" * 600, b"b" * 600, b"c" * 600)  # declares no size

    with pytest.raises(MediaError) as caught:
        await store.save(source, 1000)

    assert caught.value.problem == "too_large"
    assert source.written == 600  # the second chunk was refused, the third never read
    assert os.listdir(store.directory) == []


@pytest.mark.anyio
async def test_unreadable_sources_say_why(tmp_path: Path) -> None:
    store = MediaStore.of(tmp_path)
    with pytest.raises(MediaError) as missing:
        await store.save(FileSource(str(tmp_path / "gone.ogg")), MB)
    assert missing.value.problem == "download_failed"
    assert "gone.ogg: No such file or directory" in missing.value.detail
    with pytest.raises(MediaError) as garbage:
        await store.save(inline("not base64!"), MB)
    assert (garbage.value.problem, garbage.value.detail) == ("corrupt", "media.data is not base64")
    assert os.listdir(store.directory) == []


@pytest.mark.anyio
async def test_base64_with_escaped_slashes_is_read_like_any_other(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4  # its base64 has "/" in it
    escaped = json.dumps(b64(data)).replace("/", "\\/")  # as PHP's json_encode writes it
    stored = await MediaStore.of(tmp_path).save(InlineSource(msgspec.Raw(escaped.encode())), MB)
    assert MediaStore.of(tmp_path).read(stored.sha256) == data


def test_a_sweep_keeps_referenced_and_young_files_and_deletes_the_rest(tmp_path: Path) -> None:
    store = MediaStore.of(tmp_path)
    store.directory.mkdir()
    names = {n: hashlib.sha256(n.encode()).hexdigest() for n in ("kept", "young", "old", "gone")}
    old = time.time() - GRACE_SECONDS - 60
    for name, digest in names.items():
        path = store.path(digest)
        path.write_bytes(name.encode())
        if name != "young":
            os.utime(path, (old, old))
    part = store.directory / ".part-crashed"
    part.write_bytes(b"half a download")
    os.utime(part, (old, old))

    removed = store.sweep({names["kept"]}, doomed=set())

    assert removed == 3  # old, gone and the crashed download's part
    assert sorted(os.listdir(store.directory)) == sorted([names["kept"], names["young"]])
    # A forgotten chat's file goes at once, young or not.
    assert store.sweep({names["kept"]}, doomed={names["young"]}) == 1
    assert os.listdir(store.directory) == [names["kept"]]


def test_a_sweep_of_a_store_without_media_does_nothing(tmp_path: Path) -> None:
    assert MediaStore.of(tmp_path).sweep(set()) == 0


def test_the_files_events_refer_to_are_the_stored_attachments() -> None:
    def received(n: int, media: Media | None) -> Recorded:
        ev = MessageReceived(chat="c", msg_id=f"M{n}", sender="s", media=media)
        return Recorded(seq=n, ts=0.0, event=ev)

    records = [
        received(1, Media(kind="voice", sha256="a" * 64)),
        received(2, None),
        received(3, Media(kind="image", size=99, problem="too_large")),  # never stored
        received(4, Media(kind="document", sha256="b" * 64)),
    ]
    assert referenced_media(records) == {"a" * 64, "b" * 64}


def test_a_path_outside_the_store_is_never_a_media_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a sha256"):
        MediaStore.of(tmp_path).path("../events.db")


@pytest.mark.anyio
async def test_numbers_sharing_a_store_keep_their_own_files_and_read_each_others(
    tmp_path: Path,
) -> None:
    # Two numbers' daemons with their logs in PostgreSQL may share one --store.
    first, second = MediaStore.of(tmp_path, "491700000000"), MediaStore.of(tmp_path, "491700000077")
    assert first.directory == tmp_path / "media" / "491700000000"
    stored = await first.save(inline(b64(b"a picture")), MB)
    assert second.read(stored.sha256) == b"a picture"  # the name is the content's hash
    assert MediaStore.of(tmp_path).read(stored.sha256) == b"a picture"
    old = time.time() - GRACE_SECONDS - 60
    os.utime(first.path(stored.sha256), (old, old))
    assert second.sweep(set()) == 0  # the other number's log never names it: not its file
    assert MediaStore.of(tmp_path).sweep(set()) == 0  # nor the store's own (SQLite) media
    assert first.sweep(set()) == 1
    with pytest.raises(FileNotFoundError):
        second.read(stored.sha256)
