"""Message secrets of monitored chats' recent messages, kept on disk for their edits.

A phone encrypts an edit with the original message's secret (see the neonize
transport's ``_secret``), so an edit arriving after a restart is readable only
if the secret outlived the process. Each secret of a message the daemon kept
(a monitored chat's) is appended to ``STORE/edit-secrets.jsonl`` (0600), one
JSON line: the message id, its chat and senders (so ``forget`` can find it),
the secret (base64) and when it was seen. WhatsApp allows edits for about
20 minutes; older lines are dropped when the file is read at start and
whenever it has grown to twice what is still young. Nothing of a chat that is
not monitored is ever written here.

Every writer takes ``edit-secrets.lock`` first, so ``forget`` (another process)
and the daemon never undo each other's rewrite.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import msgspec

from events.owner_only import open_private, private_dir, write_private

SECRETS_FILE = "edit-secrets.jsonl"
_LOCK_FILE = "edit-secrets.lock"
KEEP_SECONDS = 30 * 60.0  # WhatsApp allows edits for about 20 minutes


class KeptSecret(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the message's id
    chat: str  # its chat, as WhatsApp named it
    senders: tuple[str, ...]  # the sender's ids (as sent, and its other form)
    secret: bytes
    at: float  # unix seconds, when it arrived


_decoder = msgspec.json.Decoder(KeptSecret)


class SecretsFile:
    """The file of one store; ``clock`` is wall-clock time (ages outlive the process)."""

    def __init__(self, store: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(store) / SECRETS_FILE
        self._lock_path = Path(store) / _LOCK_FILE
        self._clock = clock
        self._lines = 0  # lines in the file, young or not

    def load(self) -> list[KeptSecret]:
        """The secrets young enough to matter, oldest first; the file keeps only those."""
        if not self.path.exists():
            return []
        with self._locked():
            young = self._young(_read(self.path))
            self._rewrite(young)
        return young

    def add(self, msg_id: str, chat: str, senders: tuple[str, ...], secret: bytes) -> None:
        """Append one secret, seen now (the page cache keeps it through a kill -9)."""
        kept = KeptSecret(id=msg_id, chat=chat, senders=senders, secret=secret, at=self._clock())
        with self._locked():
            fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)
            with os.fdopen(fd, "ab") as file:
                file.write(msgspec.json.encode(kept) + b"\n")
            self._lines += 1
            if self._lines > 64:
                young = self._young(_read(self.path))
                if self._lines > 2 * len(young):
                    self._rewrite(young)

    def _young(self, secrets: Iterator[KeptSecret]) -> list[KeptSecret]:
        cutoff = self._clock() - KEEP_SECONDS
        return [s for s in secrets if s.at >= cutoff]

    def _rewrite(self, secrets: list[KeptSecret]) -> None:
        _write(self.path, secrets)
        self._lines = len(secrets)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with _lock(self._lock_path):
            yield


def forget_secrets(store: Path, ids: Collection[str]) -> int:
    """Remove the secrets of messages in or from any of ``ids``; returns how many went."""
    path = Path(store) / SECRETS_FILE
    if not path.exists():
        return 0
    with _lock(Path(store) / _LOCK_FILE):
        secrets = list(_read(path))
        left = [s for s in secrets if s.chat not in ids and not set(s.senders) & set(ids)]
        if len(left) < len(secrets):
            _write(path, left)
    return len(secrets) - len(left)


def _read(path: Path) -> Iterator[KeptSecret]:
    """The file's secrets; a line a crash cut short (or anything else unreadable) is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in data.splitlines():
        with contextlib.suppress(msgspec.DecodeError):
            yield _decoder.decode(line)


def _write(path: Path, secrets: list[KeptSecret]) -> None:
    write_private(path, b"".join(msgspec.json.encode(s) + b"\n" for s in secrets))


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    private_dir(path.parent, tighten=False)
    fd = open_private(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
