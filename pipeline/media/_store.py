"""Attachments on disk: one private file per content, ``STORE/media/<sha256>``.

Bytes are streamed from their source into a temporary file in the same
directory while being hashed and counted, so no attachment is ever held in
memory by this code and a download over the limit stops at the limit. The
finished file is renamed to its hash: the same voice note sent twice is
stored once, and a file name says what the bytes are.

A file stays while an event refers to it (``MessageReceived.media.sha256``);
``sweep`` deletes the others after compaction and ``forget``. A store with its
log in SQLite holds one number's log, and its files are ``STORE/media/<sha256>``;
several numbers' daemons may share a store when their logs are in PostgreSQL,
so each number then has ``STORE/media/<number>/`` (a sweep of one number's log
must never see another's files). Reading looks in every one: the name is the
content's hash, so any copy is the file. ``migrate`` moves a log's files along
with it (``move_media``), so a sweep of the log where it now is finds them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import IO, NamedTuple, Protocol

import anyio.to_thread

from events.model import (
    ImageRef,
    MediaFetched,
    MediaProblem,
    MessageReceived,
    Recorded,
    SpeechSynthesized,
)
from events.owner_only import FILE_MODE, private_dir

MEDIA_DIR = "media"
# A file this young may belong to a message whose event is being appended right now.
GRACE_SECONDS = 15 * 60.0
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEAD = 32  # bytes kept for recognising the format


class MediaError(Exception):
    """Why an attachment could not be taken: ``problem`` for the event, the message in words."""

    def __init__(self, problem: MediaProblem, detail: str) -> None:
        super().__init__(detail)
        self.problem: MediaProblem = problem
        self.detail = detail


class MediaSink(Protocol):
    def write(self, chunk: bytes) -> None:
        """Take the next bytes; raises ``MediaError("too_large")`` past the limit."""
        ...


class MediaSource(Protocol):
    """An attachment not fetched yet: the transport hands it over, intake decides to fetch."""

    @property
    def size(self) -> int | None:
        """The size the sender declared, when known before downloading."""
        ...

    @property
    def in_hand(self) -> bool:
        """The bytes are here already (carried in with the message): reading them
        cannot wait on a file or a network, so they are stored before the message is."""
        ...

    async def download(self, sink: MediaSink) -> None:
        """Write every byte to ``sink`` (blocking writes belong in a worker thread)."""
        ...


class Stored(NamedTuple):
    sha256: str
    size: int
    head: bytes  # the first bytes, for recognising the format


class _Writer:
    """A temporary file that hashes and counts what is written, up to ``limit`` bytes."""

    def __init__(self, file: IO[bytes], limit: int) -> None:
        self.file = file
        self.limit = limit
        self.size = 0
        self.head = b""
        self.hash = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise MediaError("too_large", f"larger than {human_size(self.limit)}")
        if len(self.head) < _HEAD:
            self.head += chunk[: _HEAD - len(self.head)]
        self.hash.update(chunk)
        self.file.write(chunk)


class MediaStore:
    """The directory of stored attachments (mode 0700, files 0600)."""

    def __init__(self, directory: Path, root: Path | None = None) -> None:
        """``root``: where other logs' media directories are, for reading (default: here)."""
        self.directory = directory
        self.root = root if root is not None else directory

    @classmethod
    def of(cls, store: Path, log: str | None = None) -> MediaStore:
        """The media of a ``--store`` directory; ``log``: the number of a PostgreSQL log."""
        root = Path(store) / MEDIA_DIR
        return cls(root / log if log else root, root)

    def path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.directory / sha256

    async def save(self, source: MediaSource, limit: int) -> Stored:
        """Fetch ``source`` into the store; raises ``MediaError`` (and leaves nothing behind)."""
        await anyio.to_thread.run_sync(self._make_directory)
        fd, name = tempfile.mkstemp(prefix=".part-", dir=self.directory)
        try:
            os.fchmod(fd, FILE_MODE)  # 0600 whatever the umask
            with os.fdopen(fd, "wb") as file:
                writer = _Writer(file, limit)
                await source.download(writer)
                await anyio.to_thread.run_sync(_flush, file)
            sha256 = writer.hash.hexdigest()
            await anyio.to_thread.run_sync(self._keep, Path(name), sha256)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Stored(sha256, writer.size, writer.head)

    async def save_bytes(self, data: bytes) -> Stored:
        """Keep bytes made here (a spoken reply) like a fetched attachment."""
        return await self.save(_Bytes(data), len(data))

    def read(self, sha256: str) -> bytes:
        """The stored bytes, from whichever log's directory has them; OSError when none has."""
        own = self.path(sha256)
        for path in (own, self.root / sha256, *sorted(self.root.glob(f"*/{sha256}"))):
            try:
                return path.read_bytes()
            except FileNotFoundError:
                continue
        return own.read_bytes()  # raises, naming the file that should be there

    def data_url(self, image: ImageRef) -> str:
        """The image as a ``data:`` URL, as both LLM wire shapes take images."""
        encoded = base64.b64encode(self.read(image.sha256)).decode("ascii")
        return f"data:{image.mime};base64,{encoded}"

    def sweep(
        self, referenced: Collection[str], *, now: float | None = None, doomed: Collection[str] = ()
    ) -> int:
        """Delete the files no event refers to; returns how many went.

        A file younger than ``GRACE_SECONDS`` is kept (its event may be on its
        way into the log), unless it is ``doomed``: named by events that were
        just removed on purpose (``forget``).
        """
        cutoff = (time.time() if now is None else now) - GRACE_SECONDS
        removed = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if entry.name in referenced or not entry.is_file(follow_symlinks=False):
                continue
            try:
                if entry.name not in doomed and entry.stat().st_mtime > cutoff:
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed += 1
        return removed

    def _make_directory(self) -> None:
        private_dir(self.directory)

    def _keep(self, part: Path, sha256: str) -> None:
        final = self.path(sha256)
        if final.exists():
            part.unlink()
            os.utime(final)  # young again: a sweep running now must not take it
            return
        part.replace(final)
        _sync_directory(self.directory)


def move_media(store: Path, source: str | None, target: str | None) -> int:
    """Move the files of the log ``source`` to where the log ``target`` keeps them; how many.

    ``None`` is the store's SQLite log (``STORE/media/``), a number its log on
    PostgreSQL (``STORE/media/<number>/``): ``migrate`` calls this once the
    copied log matched, so ``forget`` and compaction there find every file.
    Each file is renamed (atomic; its mode 0600 kept) into a 0700 directory; a
    file already there has the same bytes (its name is their hash), so the
    source's copy just goes. Running it again moves what is left: none if done.
    """
    frm, to = MediaStore.of(store, source).directory, MediaStore.of(store, target).directory
    try:
        entries = list(os.scandir(frm))
    except FileNotFoundError:
        return 0
    names = [
        e.name for e in entries if _SHA256.fullmatch(e.name) and e.is_file(follow_symlinks=False)
    ]
    if not names:
        return 0
    private_dir(to)
    for name in names:
        os.replace(frm / name, to / name)
    _sync_directory(to)
    _sync_directory(frm)
    return len(names)


def referenced_media(records: Iterable[Recorded]) -> set[str]:
    """The stored files events refer to: the ``media.sha256`` of every message, whether
    stored with it or fetched after it was recorded (``MediaFetched``), and every
    spoken reply's audio (``SpeechSynthesized``)."""
    found: set[str] = set()
    for rec in records:
        event = rec.event
        if isinstance(event, SpeechSynthesized):
            found.add(event.sha256)
        elif isinstance(event, MessageReceived | MediaFetched) and event.media is not None:
            found.add(event.media.sha256)
    found.discard("")
    return found


class _Bytes:
    """A ``MediaSource`` of bytes already in hand."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def in_hand(self) -> bool:
        return True

    async def download(self, sink: MediaSink) -> None:
        sink.write(self.data)


def human_size(size: int) -> str:
    """``245 KB``, ``1.2 MB``: how the sender and the model are told a size."""
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _flush(file: IO[bytes]) -> None:
    # The event naming this file is committed next: the bytes must be on disk first.
    file.flush()
    os.fsync(file.fileno())


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
