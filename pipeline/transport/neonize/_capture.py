"""``run --capture-inbound DIR``: the raw events of monitored chats, one file each.

So a user can hand over a shape the bot got wrong, and ``python -m pipeline
inbound`` turns it back into the stdio line the daemon got. Each file holds one
serialized neonize protobuf, written only after the daemon kept the fact (a
monitored chat's): ``<ms>-<id>.pb`` for a ``Neonize_pb2.Message`` (a
``MessageEv``), ``<ms>-<id>.undecryptable.pb`` for a
``Neonize_pb2.UndecryptableMessage``; ``<ms>`` is when it arrived (unix
milliseconds). Files are 0600 in a 0700 directory; a failure to write one is
logged (the directory and the error, never a byte of the event) and the bot
goes on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from neonize.proto.Neonize_pb2 import UndecryptableMessage

from events.owner_only import private_dir, write_private
from pipeline.logs import get_logger

_log = get_logger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_ID_CHARS = 64


def capture_name(event: Any, arrived_at: float) -> str:
    """The file name of ``event`` (a ``Message`` or ``UndecryptableMessage`` proto)."""
    msg_id = _UNSAFE.sub("_", event.Info.ID)[:_ID_CHARS] or "none"
    kind = ".undecryptable" if isinstance(event, UndecryptableMessage) else ""
    return f"{round(arrived_at * 1000)}-{msg_id}{kind}.pb"


class Capture:
    """Writes kept events into ``directory`` (created 0700 when first needed)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def write(self, event: Any, arrived_at: float) -> None:
        try:
            private_dir(self.directory, tighten=False)
            write_private(
                self.directory / capture_name(event, arrived_at), event.SerializePartialToString()
            )
        except OSError as exc:
            _log.warning(
                "inbound_not_captured",
                directory=str(self.directory),
                error=exc.strerror or str(exc),
            )
