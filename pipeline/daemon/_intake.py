"""What the transport hands over: monitored chats' messages go to the log, nothing else does.

A message of a chat that is not monitored is counted and dropped here, before
anything about it is written anywhere, log lines included: transports never
log what they receive, so the one debug line of a message is written here,
after the check (DESIGN.md section 3).
"""

from __future__ import annotations

import msgspec

from events.model import MessageReceived, TransportStatus
from events.protocol import Keyed, LogError
from pipeline.daemon._live import Live
from pipeline.daemon._settings import Settings
from pipeline.logs import get_logger
from pipeline.transport import Inbound

log = get_logger("wabot.daemon")

# What one message may add to the log: a longer text is recorded cut, with its
# original size (``truncated_from``); WhatsApp's own limit is about 65,000
# characters, so only the stdio transport or a misbehaving client gets here.
MAX_TEXT_BYTES = 64 * 1024
_MAX_NAME_CHARS = 256
_MAX_MENTIONS = 256


class Intake:
    def __init__(self, live: Live, settings: Settings) -> None:
        self.live = live
        self.settings = settings
        self.dropped = 0  # messages from unmonitored chats: counted, never stored

    async def deliver(self, inbound: Inbound) -> None:
        event = inbound.event
        if self.settings.app.entity_for(event.chat, event.sender_alt, event.is_group) is None:
            self.dropped += 1
            return
        event = bounded(event)
        log.debug("message", chat=event.chat, msg_id=event.msg_id, text=event.text)
        try:
            await self.live.append(Keyed(event, f"{event.chat}/{event.msg_id}"))
        except LogError as exc:
            # One line, not a traceback: the cause (disk full, locked) is in the message.
            log.error(  # noqa: TRY400
                "message_not_recorded", chat=event.chat, msg_id=event.msg_id, error=str(exc)
            )

    async def status(self, status: TransportStatus) -> None:
        log.info("transport", state=status.state, detail=status.detail)
        await self.live.append(status)


def bounded(event: MessageReceived) -> MessageReceived:
    """``event`` as it is recorded: text, display name and mentions cut to their limits."""
    changes: dict[str, object] = {}
    # Four bytes at most per character: a shorter text cannot be over the limit.
    if len(event.text) * 4 > MAX_TEXT_BYTES:
        data = event.text.encode()
        if len(data) > MAX_TEXT_BYTES:
            # "ignore" drops a character the cut split in two.
            changes["text"] = data[:MAX_TEXT_BYTES].decode(errors="ignore")
            changes["truncated_from"] = len(data)
    if event.push_name is not None and len(event.push_name) > _MAX_NAME_CHARS:
        changes["push_name"] = event.push_name[:_MAX_NAME_CHARS]
    if len(event.mentions) > _MAX_MENTIONS:
        changes["mentions"] = event.mentions[:_MAX_MENTIONS]
    return msgspec.structs.replace(event, **changes) if changes else event
