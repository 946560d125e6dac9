"""Linking this process to a WhatsApp account: the session file and the QR code.

The session (whatsmeow's device keys) lives in ``whatsapp.session_db``, a
SQLite file whose relative path is taken from the working directory, as
neonize does; a ``postgres://`` DSN is passed through untouched. Whoever has
the file can read and send the owner's messages, so it is created 0600 before
whatsmeow opens it (an empty file is an empty SQLite database), and so is the
QR code's image.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TextIO

import segno

from events.private import private_dir, private_file, tighten, write_private
from pipeline.logs import get_logger
from pipeline.transport._base import TransportError

_log = get_logger(__name__)

# whatsmeow shows QR codes for about 160 s, then gives up while neonize keeps
# waiting forever; past this the transport ends so a restart can try again.
PAIRING_TIMEOUT = 170.0
_QR_SCALE = 8
# SQLite's companions of a database file: a stale one must not meet a new database.
_SQLITE_SUFFIXES = ("", "-journal", "-wal", "-shm")
_RETIRED = ".old"


def prepare_session(session_db: str, *, force_qr: bool) -> str:
    """Make the session's directory and its private file; with ``force_qr`` move the old aside.

    The old files are renamed to ``*.old`` (replacing earlier ones), so an
    accidental ``--force-qr`` can be undone by renaming them back.
    """
    if session_db.startswith("postgres"):
        if force_qr:
            raise TransportError(
                "--force-qr cannot reset a postgres session: drop its whatsmeow_* tables",
                retryable=False,
            )
        return session_db
    path = Path(session_db)
    private_dir(path.parent, tighten=False)  # it may be the owner's home directory
    if force_qr and path.exists():
        for suffix in _SQLITE_SUFFIXES:
            old = path.with_name(path.name + suffix)
            if old.exists():
                old.replace(path.with_name(path.name + _RETIRED + suffix))
        _log.warning("old WhatsApp session moved aside", to=session_db + _RETIRED)
    private_file(path)
    tighten(*(path.with_name(path.name + end) for end in _SQLITE_SUFFIXES[1:]))
    tighten(*(path.with_name(path.name + _RETIRED + end) for end in _SQLITE_SUFFIXES))
    return session_db


def show_qr(data: bytes, png: Path, terminal: TextIO) -> None:
    """Save the QR code as ``png`` and draw it on ``terminal`` (never stdout)."""
    qr = segno.make_qr(data)
    image = io.BytesIO()
    qr.save(image, kind="png", scale=_QR_SCALE)
    private_dir(png.parent)
    write_private(png, image.getvalue())
    qr.terminal(out=terminal, compact=True)
