"""The messages the bot plans: replies that read well on a phone, and notes to the owner.

Each part of a reply is its own ``ReplyPlanned`` (own reply id and message
id), so the outbox sends each exactly once across crashes; every part carries
the same ``in_reply_to`` and trigger ids, and only the first one quotes. A
spoken reply's first part is the voice note (its words in ``text``, its
``speech`` planned), the rest of the answer follows as text. A
note to the owner (startup, check-in, alert, debug copy) is one message to the
owner's own chat; one that quotes a chat's words says which (``quotes_chat``),
so ``forget`` takes it with that chat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from events.model import Quoted, ReplyPlanned, ReplyPurpose, SpeechPlan
from pipeline.config import WhatsAppConfig
from pipeline.llm import split_message
from projections.queue import Item


class Ids(NamedTuple):
    """Where a planned message's ids come from (injected, so tests can pin them)."""

    new_id: Callable[[], str]  # the reply id
    new_wa_id: Callable[[], str | None]  # the WhatsApp id, where the transport presets one


def owner_note(
    owner: str, purpose: ReplyPurpose, text: str, ids: Ids, *, quotes_chat: str | None = None
) -> ReplyPlanned:
    """A message to the owner's own chat."""
    return ReplyPlanned(
        chat=owner,
        reply_id=ids.new_id(),
        purpose=purpose,
        text=text,
        wa_id=ids.new_wa_id(),
        quotes_chat=quotes_chat,
    )


def quote_for(whatsapp: WhatsAppConfig, run: Sequence[Item]) -> Quoted | None:
    """The message a reply visibly quotes: the last of the burst, where configured."""
    last = run[-1]
    wanted = whatsapp.quote_replies == "always" or (
        whatsapp.quote_replies == "groups" and last.message.is_group
    )
    return (
        Quoted(id=last.message.msg_id, text=last.text, sender=last.message.sender)
        if wanted
        else None
    )


def reply_parts(
    chat: str,
    text: str,
    run: Sequence[Item],
    *,
    whatsapp: WhatsAppConfig,
    call_id: str | None,
    new_id: Callable[[], str],
    new_wa_id: Callable[[], str | None],
    spoken: tuple[str, SpeechPlan] | None = None,
) -> list[ReplyPlanned]:
    """The planned messages of one answer to ``run``: ``spoken``'s words as a voice note
    first, if any, then ``text`` (what follows them) in parts."""
    parts = split_message(text, whatsapp.max_message_chars) if text else []
    speech: list[SpeechPlan | None] = [None] * len(parts)
    if spoken is not None:
        parts.insert(0, spoken[0])
        speech.insert(0, spoken[1])
    quoted = quote_for(whatsapp, run)
    trigger_ids = [i.message.msg_id for i in run]
    return [
        ReplyPlanned(
            chat=chat,
            reply_id=new_id(),
            purpose="reply",
            text=part,
            call_id=call_id,
            in_reply_to=run[-1].message.msg_id,
            trigger_ids=trigger_ids,
            wa_id=new_wa_id(),
            quoted=quoted if i == 0 else None,
            part=n,
            parts=of,
            speech=speech[i],
        )
        for i, (n, of, part) in enumerate(numbered(parts))
    ]


def numbered(parts: Sequence[str]) -> list[tuple[int | None, int | None, str]]:
    """``(part, parts, text)`` of each message of one answer: numbered only when there
    are several (a message alone carries no part number)."""
    if len(parts) == 1:
        return [(None, None, parts[0])]
    return [(n, len(parts), text) for n, text in enumerate(parts, start=1)]
