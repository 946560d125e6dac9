"""Turn an answer and its citations into one WhatsApp message.

A list of bare URLs is hard to read on a phone, so sources are listed as
"[n] domain - title" (with an en dash). Inline ``[n]`` markers index the API's
citation list (1-based); after duplicates are dropped and the list is cut to
``max_sources`` they are renumbered, and markers to unlisted sources removed.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from events.model import Citation
from pipeline.llm._errors import one_line
from pipeline.llm._markup import protected, whatsapp_markup

Formatting = Literal["whatsapp", "plain"]
_MARKER = re.compile(r"( *)\[(\d{1,3})\]")
_TITLE_CHARS = 60
_EN_DASH = "\u2013"


def format_reply(
    content: str,
    citations: list[Citation],
    max_sources: int = 5,
    *,
    formatting: Formatting = "whatsapp",
) -> str:
    """Return ``content`` followed by a numbered "Sources:" list when there are citations.

    With ``formatting="whatsapp"`` the content's Markdown is written as WhatsApp's.
    """
    listed: list[Citation] = []
    number_of_url: dict[str, int] = {}
    new_number: dict[int, int | None] = {}  # 1-based API index -> listed number, None if cut
    for index, citation in enumerate(citations, start=1):
        if citation.url not in number_of_url and len(listed) < max_sources:
            listed.append(citation)
            number_of_url[citation.url] = len(listed)
        new_number[index] = number_of_url.get(citation.url)
    text = _renumber(content.strip(), new_number)
    if formatting == "whatsapp":
        text = whatsapp_markup(text)
    if not listed:
        return text
    lines = [f"[{n}] {_label(c)}" for n, c in enumerate(listed, start=1)]
    return "\n".join([text, "", "Sources:", *lines]) if text else "\n".join(["Sources:", *lines])


def _renumber(text: str, new_number: dict[int, int | None]) -> str:
    def replace(match: re.Match[str]) -> str:
        index = int(match.group(2))
        if index not in new_number:  # not a citation marker, e.g. "a[0]" in code
            return match.group(0)
        number = new_number[index]
        return "" if number is None else f"{match.group(1)}[{number}]"

    return _MARKER.sub(replace, text)


def _label(citation: Citation) -> str:
    domain = _domain(citation.url)
    title = one_line(citation.title, _TITLE_CHARS)
    if not title or title.lower() == domain.lower():
        return domain
    return f"{domain} {_EN_DASH} {title}"


def _domain(url: str) -> str:
    try:
        host = urlsplit(url).hostname
    except ValueError:  # e.g. an unbalanced "[" in the netloc
        host = None
    if not host:
        return one_line(url, _TITLE_CHARS)
    return host.removeprefix("www.")


_BREAKS = ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ")
_NUMBERING = "({part}/{parts}) "
_NUMBERING_ROOM = 10  # "(99/99) " and then some


def split_message(text: str, limit: int) -> list[str]:
    """``text`` as one message, or as numbered parts of at most ``limit`` characters.

    Cuts fall at the last paragraph break that fits, else a line break, else a
    sentence end, else a space, and never inside a URL, a code block or a
    formatting span (``_markup.protected``) while a break outside one fits;
    only a run without any break is cut hard.
    """
    if len(text) <= limit:
        return [text]
    room = limit - _NUMBERING_ROOM
    chunks: list[str] = []
    rest = text
    while len(rest) > room:
        cut = _cut(rest, room, protected(rest[: room * 2]))
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    parts = len(chunks)
    return [_NUMBERING.format(part=n, parts=parts) + c for n, c in enumerate(chunks, start=1)]


def _cut(text: str, room: int, spans: list[tuple[int, int]]) -> int:
    """Where to end the next part: just after the best break within ``room``."""
    window = text[:room]
    for respect in (spans, []):  # a code block longer than a part must be cut somewhere
        for mark in _BREAKS:
            at = window.rfind(mark)
            # A break in the first quarter would make a stub of a part: look for a weaker one.
            while at >= room // 4:
                end = at + len(mark.rstrip()) if mark.strip() else at + len(mark)
                if not any(a < at < b or a < end < b for a, b in respect):
                    return end
                at = window.rfind(mark, 0, at)
    return room
