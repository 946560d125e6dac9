"""The bot's recent sends per chat, so its own messages coming back are recognised.

A ``Compacted`` drops the values whose latest send went. Which values a chat
keeps past ``KEEP`` depends on how many came before: after a compaction a
chat with more than ``KEEP`` sends may hold a few more or fewer than a fold
of what is left would, all of them recent sends.
"""

from __future__ import annotations

import zlib
from typing import Literal, TypeVar

import msgspec

from events.model import Compacted, Recorded, ReplyPlanned, ReplySent
from events.protocol import Removal
from projections.base import Handlers, Projection, removal

KEEP = 50  # per chat and kind; an echo arrives within seconds, not 50 replies later
# Trimming in bulk keeps the per-send cost flat; every tenth send of a chat past
# KEEP is bulk enough, where twice KEEP held a third more entries (a chat holds two
# dicts of them, and every chat the bot answered within the retention has them).
_TRIM_AT = KEEP + KEEP // 5

_WHITESPACE = b" \t\n\r\x0b\x0c"

Match = Literal["id", "text"]
_V = TypeVar("_V", str, int)  # a WhatsApp id or a digest


class At(msgspec.Struct, gc=False, array_like=True):
    """Where a send was recorded: 32 B, where a tuple takes 56 and is tracked by the
    collector (every chat holds up to 4 * KEEP of them)."""

    seq: int
    ts: float


class Sent(msgspec.Struct, kw_only=True, gc=False):
    # Ordered sets (value -> where its latest send was recorded): O(1) lookups,
    # oldest evicted first; each holds the last KEEP to _TRIM_AT values.
    wa_ids: dict[str, At] = {}
    digests: dict[int, At] = {}


class State(msgspec.Struct, kw_only=True):
    chats: dict[str, Sent] = {}


def digest(text: str) -> int:
    """Whitespace-insensitive fingerprint; 0 for blank text (nothing to match).

    ASCII whitespace is dropped rather than collapsed: a transport that re-wraps
    or trims a message still matches, and bytes.translate is several times
    cheaper than splitting a long reply into words.
    """
    squeezed = text.encode().translate(None, _WHITESPACE)
    if not squeezed:
        return 0
    # crc32 plus length is stable across processes (snapshots keep digests) and
    # cheap; a false match needs a collision among one chat's last 100 sends.
    # One int holds both (crc32 is below 2**32): 32 bytes where their text took 61.
    return zlib.crc32(squeezed) | len(squeezed) << 32


def _remember(items: dict[_V, At], value: _V, at: At) -> None:
    items.pop(value, None)  # a repeat counts as the newest
    items[value] = at
    if len(items) > _TRIM_AT:
        for old in list(items)[: len(items) - KEEP]:
            del items[old]


def _planned(state: State, rec: Recorded, ev: ReplyPlanned) -> None:
    text = digest(ev.text)
    if not text and not ev.wa_id:
        return
    at = At(rec.seq, rec.ts)
    sent = state.chats.get(ev.chat)
    if sent is None:
        sent = state.chats[ev.chat] = Sent()
    if text:
        _remember(sent.digests, text, at)
    if ev.wa_id:
        _remember(sent.wa_ids, ev.wa_id, at)


def _confirmed(state: State, rec: Recorded, ev: ReplySent) -> None:
    if not ev.wa_id:
        return
    sent = state.chats.get(ev.chat)
    if sent is None:
        sent = state.chats[ev.chat] = Sent()
    _remember(sent.wa_ids, ev.wa_id, At(rec.seq, rec.ts))


def _forget(items: dict[_V, At], gone: Removal, chat: str) -> None:
    for value in [v for v, at in items.items() if gone.gone(at.seq, at.ts, chat)]:
        del items[value]


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    for chat, sent in list(state.chats.items()):
        _forget(sent.wa_ids, gone, chat)
        _forget(sent.digests, gone, chat)
        if not sent.wa_ids and not sent.digests:
            del state.chats[chat]


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


_HANDLERS: Handlers[State] = {
    ReplyPlanned: _planned,
    ReplySent: _confirmed,
    Compacted: _compacted,
}
PROJECTION = Projection.of("own_sends", State, _HANDLERS)
apply = PROJECTION.apply
