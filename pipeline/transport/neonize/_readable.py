"""Text fields that are not UTF-8, made readable before anything reads them.

WhatsApp's message protos are proto2, whose strings nobody checks: the server
relays the sender's encrypted bytes, whatsmeow (Go) decodes them without a
UTF-8 check and neonize encodes them again. A sender's client can put bytes
in a text that are not UTF-8: a JavaScript client that cut a text in the
middle of an emoji writes the lone surrogate half as three bytes no decoder
takes. Python's protobuf hands such a string field over as ``bytes``, not
``str``, and everything after it expects ``str`` (the log would keep the
text as base64, a long one stopped intake). So every such value becomes the
text it says, with U+FFFD where a character could not be read, as any
WhatsApp app shows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def readable(proto: Any) -> Any:
    """``proto`` itself when all its strings are text, else a copy with each mended."""
    if not any(_unread(values) for _, _, values in _strings(proto)):
        return proto
    copy = type(proto)()
    copy.CopyFrom(proto)
    for holder, field, values in _strings(copy):
        if field.is_repeated:
            for index, value in enumerate(values):
                if isinstance(value, bytes):
                    values[index] = _text(value)
        elif _unread(values):
            setattr(holder, field.name, _text(values[0]))
    return copy


def _strings(proto: Any) -> Iterator[tuple[Any, Any, Any]]:
    """Each string field set in ``proto`` and the messages in it: (holder, field, values),
    ``values`` the repeated field itself or a list of the one value."""
    for field, value in proto.ListFields():
        if field.type == field.TYPE_STRING:
            yield proto, field, value if field.is_repeated else [value]
        elif field.type in (field.TYPE_MESSAGE, field.TYPE_GROUP):
            for part in value if field.is_repeated else [value]:
                yield from _strings(part)


def _unread(values: Any) -> bool:
    return any(isinstance(value, bytes) for value in values)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
