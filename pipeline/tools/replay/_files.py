"""Files under ``STORE/replays/``: private (directories 0700, files 0600), never overwritten.

They hold the owner's conversations, so nobody else on the machine may read
them, whatever the umask.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from events.owner_only import FILE_MODE, private_dir
from pipeline.tools._args import BadArgument

STAMP = "%Y%m%dT%H%M%SZ"  # experiment names start with their UTC time


def reserve(directory: Path, label: str, suffix: str = ".json") -> Path:
    """A new empty private file named by the time and ``label`` (``-2``, ``-3``… if taken)."""
    private_dir(directory)
    stem = f"{datetime.now(UTC):{STAMP}}-{label}"
    for n in range(1, 1000):
        path = directory / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        except FileExistsError:
            continue
        return path
    raise BadArgument(f"{directory}: too many experiment files named {stem}*")


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` (created 0600 if new)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def replace_private(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a killed run leaves no torn file behind."""
    private_dir(path.parent)
    replace_file(path, data)


def replace_file(
    path: Path,
    data: bytes,
    *,
    mode: int = FILE_MODE,
    durable: bool = False,
    owner: tuple[int, int] | None = None,
    before: Callable[[], None] = lambda: None,
) -> None:
    """Swap ``path`` for a file holding ``data``: a temp file in the same directory,
    renamed over it, so readers see the old file or the new one, never half of one.

    ``durable`` fsyncs the file and the directory (for files a power cut must
    not lose); ``owner`` (uid, gid) is kept where we may set it; ``before``
    runs just before the rename and may raise to abort.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it
        if owner is not None and owner != (os.getuid(), os.getgid()):
            with contextlib.suppress(PermissionError):  # only root may give files away
                os.chown(tmp, *owner)
        before()
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def cache_folder(chat: str) -> str:
    """The response cache's folder for ``chat``'s answers: a hash, so no number is a file name."""
    return hashlib.sha256(chat.encode()).hexdigest()[:32]
