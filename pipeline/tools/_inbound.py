"""``python -m pipeline inbound FILE…``: what captured WhatsApp events become.

Each FILE holds one serialized neonize event, as ``run --capture-inbound``
writes it: a ``MessageEv`` (``Neonize_pb2.Message``), or with
``--undecryptable`` an ``UndecryptableMessageEv``. For each, one JSON line on
stdout: the stdio transport's stdin line the event becomes (docs/stdio.md),
converted by the very function the WhatsApp transport
uses, or ``{"type": "dropped", "reason": …}``. Files are read in the order
given, and an encrypted edit is decrypted with the secret of a message in an
earlier file, as the transport does with earlier messages. A file that cannot
be read or does not parse gets one line on stderr; the exit status is then 2.

This module imports neonize (for its protobuf classes), so only the command
line loads it, and only for this command.
"""

from __future__ import annotations

import stat
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.Neonize_pb2 import UndecryptableMessage

from events.jid import LID_SERVER, InvalidJid, normalize, phone_digits
from events.model import MessageReceived
from pipeline.tools._args import BadArgument
from pipeline.transport import Fact
from pipeline.transport._stdio_lines import dropped_line, inbound_line
from pipeline.transport.neonize import _convert as convert
from pipeline.transport.neonize._secret import Secrets

# A captured event is a few kilobytes (attachments are referenced, not included).
MAX_FILE_BYTES = 16 * 2**20
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_UNREADABLE = 2


class Unreadable(Exception):
    """A file that is no captured event (one line on stderr)."""


def owner_ids(me_pn: str | None, me_lid: str | None) -> convert.Me:
    """``--me-pn DIGITS`` and ``--me-lid LID`` (``…@lid`` or its digits) as the owner's ids."""
    try:
        pn = f"{phone_digits(me_pn)}@s.whatsapp.net" if me_pn else None
    except InvalidJid as exc:
        raise BadArgument(f"--me-pn: {exc}") from None
    lid = None
    if me_lid:
        try:
            lid = normalize(me_lid if "@" in me_lid else f"{me_lid}@{LID_SERVER}")
        except InvalidJid as exc:
            raise BadArgument(f"--me-lid: {exc}") from None
        if not lid.endswith("@" + LID_SERVER):
            raise BadArgument(f"--me-lid: {me_lid!r} is not a LID (…@lid)")
    return convert.Me(pn, lid)


def run_inbound(
    files: Sequence[Path], *, undecryptable: bool, me: convert.Me, out: BinaryIO, err: TextIO
) -> int:
    """Print each file's line; 2 when a file was unreadable, 1 when one could not be converted."""
    status = EXIT_OK
    secrets = Secrets()
    for path in files:
        try:
            ev = _parse(path, UndecryptableMessage if undecryptable else MessageEv)
        except Unreadable as exc:
            print(f"wabot: {path}: {exc}", file=err)
            status = max(status, EXIT_UNREADABLE)
            continue
        try:
            line = _line(ev, undecryptable, me, secrets)
        except Exception as exc:  # a shape the conversion cannot take: a bug to report
            where = traceback.extract_tb(exc.__traceback__)[-1]
            at = f"{Path(where.filename).name}:{where.lineno}"
            print(f"wabot: {path}: cannot convert ({type(exc).__name__} at {at})", file=err)
            status = max(status, EXIT_FAILURE)
            continue
        out.write(line)
        out.flush()
    return status


def _line(ev: Any, undecryptable: bool, me: convert.Me, secrets: Secrets) -> bytes:
    converted: Fact | convert.SecretEdit | convert.Dropped
    converted = convert.undecryptable(ev) if undecryptable else convert.inbound(ev, me)
    if isinstance(converted, convert.Dropped):
        return dropped_line(converted.reason)
    fact = convert.with_secrets(converted, ev, secrets)
    if isinstance(fact, MessageReceived):  # every file's message is "kept" here
        convert.remember_secret(secrets, ev, fact)
    return inbound_line(fact)


def _parse(path: Path, kind: Any) -> Any:
    data = _read(path)
    name = "undecryptable-message event" if kind is UndecryptableMessage else "message event"
    try:
        ev = kind.FromString(data)
    except Exception as exc:  # protobuf's DecodeError, RecursionError in its pure-Python build
        raise Unreadable(f"not a neonize {name} ({exc})") from None
    missing = ev.FindInitializationErrors()
    if missing:
        hint = (
            "a message event is read without --undecryptable"
            if kind is UndecryptableMessage
            else "an undecryptable-message event needs --undecryptable"
        )
        raise Unreadable(f"not a neonize {name} (missing {', '.join(missing[:3])}; {hint})")
    return ev


def _read(path: Path) -> bytes:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("not a file")
        if info.st_size > MAX_FILE_BYTES:
            raise Unreadable(f"larger than {MAX_FILE_BYTES // 2**20} MiB: not a captured event")
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise Unreadable(exc.strerror or type(exc).__name__) from None
    if not data:
        raise Unreadable("empty")
    if len(data) > MAX_FILE_BYTES:  # it grew while being read
        raise Unreadable(f"larger than {MAX_FILE_BYTES // 2**20} MiB: not a captured event")
    return data
