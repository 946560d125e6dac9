"""Replies that read well on a phone: split into numbered parts, quoting in groups.

Each part is its own ``ReplyPlanned`` (own reply id and message id), so the
outbox sends each exactly once across crashes; every part carries the same
``in_reply_to`` and trigger ids, and only the first one quotes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from events.model import Quoted, ReplyPlanned
from pipeline.config import WhatsAppConfig
from pipeline.llm import split_message
from projections.queue import Item


def quote_for(whatsapp: WhatsAppConfig, run: Sequence[Item]) -> Quoted | None:
    """The message a reply visibly quotes: the last of the burst, where configured."""
    last = run[-1]
    wanted = whatsapp.quote_replies == "always" or (
        whatsapp.quote_replies == "groups" and last.is_group
    )
    return Quoted(id=last.msg_id, text=last.text, sender=last.sender) if wanted else None


def reply_parts(
    chat: str,
    text: str,
    run: Sequence[Item],
    *,
    whatsapp: WhatsAppConfig,
    call_id: str | None,
    new_id: Callable[[], str],
    new_wa_id: Callable[[], str | None],
) -> list[ReplyPlanned]:
    """The planned messages of one answer to ``run``."""
    parts = split_message(text, whatsapp.max_message_chars)
    quoted = quote_for(whatsapp, run)
    trigger_ids = [i.msg_id for i in run]
    numbered = len(parts) > 1
    return [
        ReplyPlanned(
            chat=chat,
            reply_id=new_id(),
            purpose="reply",
            text=part,
            call_id=call_id,
            in_reply_to=run[-1].msg_id,
            trigger_ids=trigger_ids,
            wa_id=new_wa_id(),
            quoted=quoted if n == 1 else None,
            part=n if numbered else None,
            parts=len(parts) if numbered else None,
        )
        for n, part in enumerate(parts, start=1)
    ]
