"""What an unwrapped WhatsApp message says, in words the model reads.

Text, captions and attachments are what they are. Locations, contact cards,
polls and events carry no text of their own: each becomes one bracketed
line, the way an attachment is noted ("[location: …] comment"), so the model
can read it and the daemon does not skip it as empty; their kind stays
``other`` (docs/events.md, ``MessageReceived``, lists the kinds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import PollType

from events.model import MessageKind
from pipeline.media import message_kind
from pipeline.transport.neonize._media import PARTS

_TEXT_FIELDS = ("text", "caption")
_MAX_CARDS = 20  # contact cards named in one message
_MAX_NUMBERS = 10  # numbers named per card


class Content(NamedTuple):
    kind: MessageKind
    text: str
    context: Any  # the part's ContextInfo, or None


def content_of(message: Any) -> Content | None:
    """The content of an unwrapped message; None when it has nothing to answer."""
    if message.conversation:
        return Content("text", message.conversation, None)
    if message.HasField("extendedTextMessage") and message.extendedTextMessage.text:
        return _part(message.extendedTextMessage, "text")  # without text: a bare link preview
    for field, kind in PARTS:
        if message.HasField(field):
            return _part(getattr(message, field), message_kind(kind))
    for field, render in READABLE.items():
        if message.HasField(field):
            part = getattr(message, field)
            return Content("other", render(part), _context(part))
    return None


def _part(part: Any, kind: MessageKind) -> Content:
    fields = part.DESCRIPTOR.fields_by_name
    text = next((getattr(part, name) for name in _TEXT_FIELDS if name in fields), "")
    return Content(kind, text, _context(part))


def _context(part: Any) -> Any:
    has = "contextInfo" in part.DESCRIPTOR.fields_by_name and part.HasField("contextInfo")
    return part.contextInfo if has else None


# -- readable lines -------------------------------------------------------


def location(loc: Any) -> str:
    return _line("location", _place(loc), loc.comment)


def _place(loc: Any) -> str:
    return _joined("; ", _joined(", ", loc.name, loc.address), _coordinates(loc), loc.URL)


def live_location(loc: Any) -> str:
    # Only the start of a live location reaches a linked device, never its moves.
    return _line("live location", _coordinates(loc), loc.caption)


def _coordinates(loc: Any) -> str:
    if not (loc.HasField("degreesLatitude") or loc.HasField("degreesLongitude")):
        return ""  # an event's place may be named only
    return f"{loc.degreesLatitude:.6f}, {loc.degreesLongitude:.6f}"


def contact(card: Any) -> str:
    return _line("contact card", _card(card))


def contacts(array: Any) -> str:
    cards = [_card(card) for card in array.contacts[:_MAX_CARDS]]
    more = len(array.contacts) - len(cards)
    if more > 0:
        cards.append(f"and {more} more")
    count = len(array.contacts)
    what = f"{count} contact card{'s' if count != 1 else ''}"
    return _line(what, "; ".join(c for c in cards if c) or _clean(array.displayName))


def _card(card: Any) -> str:
    name, numbers = vcard(card.vcard)
    return _joined(", ", name or _clean(card.displayName), *numbers)


def poll(created: Any) -> str:
    what = "quiz" if created.pollType == PollType.QUIZ else "poll"
    options = [_clean(o.optionName) for o in created.options]
    count = created.selectableOptionsCount
    if count == 1:
        choice = "one choice"
    elif count == 0 or count >= len(options):
        choice = "any number of choices"
    else:
        choice = f"up to {count} choices"
    listed = f"options: {' / '.join(options)}" if options else ""
    return _line(what, _joined("; ", _clean(created.name), listed, choice))


def event(ev: Any) -> str:
    where = f"at {_place(ev.location)}" if ev.HasField("location") else ""
    canceled = "canceled" if ev.isCanceled else ""
    head = _joined("; ", _clean(ev.name), _when(ev.startTime, ev.endTime), where, canceled)
    return _line("event", head, ev.description)


def event_invite(invite: Any) -> str:
    canceled = "canceled" if invite.isCanceled else ""
    head = _joined("; ", _clean(invite.eventTitle), _when(invite.startTime, invite.endTime))
    return _line("event invitation", _joined("; ", head, canceled), invite.caption)


def _when(start: int, end: int) -> str:
    """``2026-07-04 18:00 to 23:00 UTC``; "" when unknown or out of range."""
    begin, until = _utc(start), _utc(end)
    if begin is None:
        return ""
    first = begin.strftime("%Y-%m-%d %H:%M")
    if until is None or until <= begin:
        return f"{first} UTC"
    last = until.strftime("%H:%M" if until.date() == begin.date() else "%Y-%m-%d %H:%M")
    return f"{first} to {last} UTC"


def _utc(seconds: int) -> datetime | None:
    if seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


READABLE: dict[str, Callable[[Any], str]] = {
    "locationMessage": location,
    "liveLocationMessage": live_location,
    "contactMessage": contact,
    "contactsArrayMessage": contacts,
    "pollCreationMessage": poll,
    "pollCreationMessageV2": poll,
    "pollCreationMessageV3": poll,
    "pollCreationMessageV5": poll,
    "pollCreationMessageV6": poll,
    "eventMessage": event,
    "eventInviteMessage": event_invite,
}


def _line(what: str, head: str, tail: str = "") -> str:
    """``[what: head] tail``, the way an attachment is noted."""
    note = f"[{what}: {head}]" if head else f"[{what}]"
    tail = tail.strip()
    return f"{note} {tail}" if tail else note


def _joined(separator: str, *parts: str) -> str:
    return separator.join(p for p in (_clean(part) for part in parts) if p)


def _clean(text: str) -> str:
    return " ".join(text.split())


# -- vCards -----------------------------------------------------------------


def vcard(text: str) -> tuple[str, list[str]]:
    """A vCard's name (``FN``, else ``N``) and its phone numbers, in order, without repeats."""
    name = formal = ""
    numbers: list[str] = []
    for prop, params, value in _properties(text):
        if prop == "FN" and not name:
            name = _clean(_unescape(value))
        elif prop == "N" and not formal:
            family, given, *_ = [*_split(value), "", ""]
            formal = _joined(" ", given, family)
        elif prop == "TEL" and len(numbers) < _MAX_NUMBERS:
            number = _clean(_unescape(value)).removeprefix("tel:") or _waid(params)
            if number and number not in numbers:
                numbers.append(number)
    return name or formal, numbers


def _properties(text: str) -> Iterator[tuple[str, list[str], str]]:
    """(name without its group, parameters, raw value) of each content line."""
    for line in _unfolded(text):
        head, colon, value = line.partition(":")
        if not colon:
            continue
        prop, *params = head.split(";")
        yield prop.rpartition(".")[2].strip().upper(), params, value


def _unfolded(text: str) -> Iterable[str]:
    """Lines with folded continuations (a leading space or tab) joined back."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        else:
            lines.append(raw)
    return lines


def _split(value: str) -> list[str]:
    """A structured value's components (``;`` not escaped), unescaped."""
    parts, current, escaped = [], "", False
    for char in value:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ";":
            parts.append(_unescape(current))
            current = ""
        else:
            current += char
    parts.append(_unescape(current))
    return parts


def _unescape(value: str) -> str:
    out, escaped = [], False
    for char in value:
        if escaped:
            out.append(" " if char in "nN" else char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)


def _waid(params: list[str]) -> str:
    """The WhatsApp number WhatsApp puts in ``TEL;waid=<digits>``."""
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "waid" and value.strip().isdigit():
            return "+" + value.strip()
    return ""
