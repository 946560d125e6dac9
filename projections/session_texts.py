"""Which events carry a session's words, by seq: what ``rotation.drop_expired_sessions``
removes, followed by ``projections.sessions`` without reading the log back.

A ``Compacted`` prunes what it removed, so nothing grows and expiry never
names an event twice.
"""

from __future__ import annotations

import msgspec

from events.model import Recorded
from events.protocol import Removal


class Texts(msgspec.Struct, kw_only=True, gc=False):
    """The events carrying a session's (or a waiting message's) words, by seq."""

    words: list[int] = []  # messages, edits, documents read, LLM requests
    counted: list[int] = []  # answers, replies and transcripts: the budget counts them a while
    # ts of the newest (set when it stops growing: ended, attached; a session's, when
    # its requests went and its activity with them)
    last: float = 0.0
    chat: str = ""  # set when it stops being a session's: ended, attached

    def add(self, rec: Recorded, *, counted: bool = False) -> None:
        (self.counted if counted else self.words).append(rec.seq)
        self.last = rec.ts

    def take(self, other: Texts) -> None:
        self.words.extend(other.words)
        self.counted.extend(other.counted)
        self.last = max(self.last, other.last)


def prune(texts: Texts, gone: Removal, chat: str) -> None:
    texts.words = [seq for seq in texts.words if not went(gone, seq, chat)]
    texts.counted = [seq for seq in texts.counted if not went(gone, seq, chat)]


def went(gone: Removal, seq: int, chat: str) -> bool:
    """``gone.gone`` without the time: log order is time order, so below ``before``
    every event is older than the cut-off."""
    return (
        seq < gone.before
        and (gone.chats is None or chat in gone.chats)
        and (gone.seqs is None or seq in gone.seqs)
        and seq not in gone.keep
    )
