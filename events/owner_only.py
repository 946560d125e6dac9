"""Files only their owner can read: the store holds private chats, the session WhatsApp's keys.

Everything wabot creates is made owner-only whatever the process umask:
directories 0700, files 0600. The mode is given when a file or directory is
created (a umask can only take bits away), and what an older version left
with a looser mode is tightened when it is opened again. Files that libraries
create themselves are covered by creating them first: SQLite gives a
database's ``-wal``/``-shm`` the mode of the database file, and whatsmeow
opens the session file it finds. The entry points also call
``restrict_umask`` for whatever a library creates that cannot be named here.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077


def restrict_umask() -> None:
    """Make every file this process creates from now on owner-only (belt and braces)."""
    os.umask(UMASK)


def private_dir(path: Path, *, tighten: bool = True) -> Path:
    """``mkdir -p`` where every directory created is 0700.

    With ``tighten``, ``path`` itself is made 0700 when it already exists (it
    is one of ours, e.g. the store); pass False for a directory that may be
    the user's (the session file's, which may be the home directory).
    Directories above ``path`` that exist are never changed.
    """
    path = Path(path)
    missing: list[Path] = []
    for directory in (path, *path.parents):
        if directory.is_dir():
            break
        missing.append(directory)
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)  # another process may be quicker
    if tighten or missing:
        _chmod(path, DIR_MODE)
    return path


def open_private(path: Path, flags: int) -> int:
    """``os.open`` that creates ``path`` as 0600 and makes an existing file 0600."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    with contextlib.suppress(PermissionError):  # someone else's file: not ours to change
        os.fchmod(fd, FILE_MODE)
    return fd


def private_file(path: Path) -> Path:
    """Create ``path`` empty if missing; either way it ends up 0600.

    An existing file is never opened: closing any descriptor of a SQLite
    database drops every POSIX lock this process holds on it, including those
    of a connection still using it (SQLite's "posix advisory locks" caveat).
    """
    if path.exists():
        _chmod(path, FILE_MODE)
        return path
    with contextlib.suppress(FileExistsError):  # another process may be quicker
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _chmod(path, FILE_MODE)
    return path


def tighten(*paths: Path) -> None:
    """Make those of ``paths`` that exist 0600 (files a library created before us)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            _chmod(path, FILE_MODE)


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to a 0600 file.

    ``exclusive`` never replaces an existing file (FileExistsError); otherwise
    the file is replaced atomically, so a reader never sees half of it.
    """
    target = path if exclusive else path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        if not exclusive:
            target.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise


def _chmod(path: Path, mode: int) -> None:
    with contextlib.suppress(PermissionError):  # someone else's: not ours to change
        os.chmod(path, mode)
