"""The bot's recent sends per chat, so its own messages coming back are recognised."""

from __future__ import annotations

import zlib
from typing import Literal

import msgspec

from events.model import Recorded, ReplyPlanned, ReplySent
from projections.base import Handlers, Projection, dispatcher

KEEP = 50  # per chat and kind; an echo arrives within seconds, not 50 replies later
_TRIM_AT = 2 * KEEP  # trimming in bulk keeps the per-send cost flat

_WHITESPACE = b" \t\n\r\x0b\x0c"

Match = Literal["id", "text"]


class Sent(msgspec.Struct, kw_only=True, gc=False):
    # Ordered sets (dicts with None values): O(1) lookups, oldest evicted first;
    # each holds the last KEEP to 2 * KEEP values.
    wa_ids: dict[str, None] = {}
    digests: dict[str, None] = {}


class State(msgspec.Struct, kw_only=True):
    chats: dict[str, Sent] = {}


def digest(text: str) -> str:
    """Whitespace-insensitive fingerprint; "" for blank text (nothing to match).

    ASCII whitespace is dropped rather than collapsed: a transport that re-wraps
    or trims a message still matches, and bytes.translate is several times
    cheaper than splitting a long reply into words.
    """
    squeezed = text.encode().translate(None, _WHITESPACE)
    if not squeezed:
        return ""
    # crc32 plus length is stable across processes (snapshots keep digests) and
    # cheap; a false match needs a collision among one chat's last 100 sends.
    return f"{zlib.crc32(squeezed):08x}{len(squeezed):x}"


def _remember(items: dict[str, None], value: str) -> None:
    items.pop(value, None)  # a repeat counts as the newest
    items[value] = None
    if len(items) > _TRIM_AT:
        for old in list(items)[: len(items) - KEEP]:
            del items[old]


def _planned(state: State, rec: Recorded, ev: ReplyPlanned) -> None:
    sent = state.chats.get(ev.chat)
    if sent is None:
        sent = state.chats[ev.chat] = Sent()
    text = digest(ev.text)
    if text:
        _remember(sent.digests, text)
    if ev.wa_id:
        _remember(sent.wa_ids, ev.wa_id)


def _confirmed(state: State, rec: Recorded, ev: ReplySent) -> None:
    if not ev.wa_id:
        return
    sent = state.chats.get(ev.chat)
    if sent is None:
        sent = state.chats[ev.chat] = Sent()
    _remember(sent.wa_ids, ev.wa_id)


def match(state: State, chat: str, msg_id: str, text: str) -> Match | None:
    """Whether an inbound message is the bot's own send, by WhatsApp id or by text."""
    sent = state.chats.get(chat)
    if sent is None:
        return None
    if msg_id in sent.wa_ids:
        return "id"
    text_digest = digest(text)
    if text_digest and text_digest in sent.digests:
        return "text"
    return None


_HANDLERS: Handlers[State] = {ReplyPlanned: _planned, ReplySent: _confirmed}
apply = dispatcher(_HANDLERS)
PROJECTION = Projection("echo", State, apply, _HANDLERS)
