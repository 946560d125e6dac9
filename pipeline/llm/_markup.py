"""The model's Markdown as WhatsApp's own formatting (docs/config.md, ``whatsapp.formatting``).

Models answer in Markdown; WhatsApp shows ``**bold**`` with its stars and
``[text](url)`` as brackets, and reads a single ``*x*`` as bold where Markdown
means italic. So: ``**b**``/``__b__`` → ``*b*``, ``*i*`` → ``_i_``,
``***bi***`` → ``*_bi_*``, ``~~s~~`` → ``~s~``, a heading → a bold line,
``[t](u)`` → ``t (u)`` (a link to itself: ``u``; ``[1](u)`` → ``[1] (u)``). Code is WhatsApp's too:
fences and inline code are kept as they are (a fence loses its language word,
which WhatsApp would show), and nothing inside code or a URL is touched.
Lists, quotes (``> ``) and citation markers (``[1]``) are WhatsApp's already.

``protected`` names the places a message must not be split: a code block, a
formatting span, a URL (``_render.split_message`` cuts around them).
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[^\n`]*\n?.*?(?:```|\Z)", re.DOTALL)
_FENCE_OPEN = re.compile(r"```[^\n`]*\n")
# Inline things whose insides are not prose: code, a Markdown link or image, a bare URL.
_TOKEN = re.compile(
    r"(?P<code>`[^`\n]+`)"
    r"|(?P<link>!?\[(?P<text>[^\]\n]+)\]\((?P<url>[^()\s]+)\))"
    r"|(?P<bare>(?:https?://|www\.)[^\s<>]+)"
)
_HEADING = re.compile(r" {0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$")
_BOLD_ITALIC = re.compile(r"\*\*\*(?=\S)(.+?)(?<=\S)\*\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
# WhatsApp's spans, as they are after conversion: one line, no space just inside the marks.
_SPAN = re.compile(r"(?<!\w)([*_~])(?=\S)[^\n]*?(?<=\S)\1(?!\w)")


def whatsapp_markup(text: str) -> str:
    """``text`` with its Markdown written the way WhatsApp formats messages."""
    out: list[str] = []
    last = 0
    for fence in _FENCE.finditer(text):
        out.append(_prose(text[last : fence.start()]))
        out.append(_FENCE_OPEN.sub("```\n", fence.group(0), count=1))
        last = fence.end()
    out.append(_prose(text[last:]))
    return "".join(out)


def protected(text: str) -> list[tuple[int, int]]:
    """Where a cut would break something: code blocks, formatting spans, URLs (start, end)."""
    found = [(m.start(), m.end()) for m in _FENCE.finditer(text)]
    found += [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    found += [(m.start(), m.end()) for m in _SPAN.finditer(text)]
    return sorted(found)


def _prose(text: str) -> str:
    lines = text.split("\n")
    for n, line in enumerate(lines):
        heading = _HEADING.match(line)
        lines[n] = f"*{_inline(_plain(heading.group(1)))}*" if heading else _inline(line)
    return "\n".join(lines)


def _inline(text: str) -> str:
    out: list[str] = []
    last = 0
    for token in _TOKEN.finditer(text):
        out.append(_emphasis(text[last : token.start()]))
        out.append(_token(token))
        last = token.end()
    out.append(_emphasis(text[last:]))
    return "".join(out)


def _token(token: re.Match[str]) -> str:
    if token.group("link") is None:
        return token.group(0)  # code or a bare URL: as it is
    label, url = token.group("text"), token.group("url")
    if label.strip() in (url, url.split("://", 1)[-1]):
        return url
    if label.isdigit():  # a citation marker that links its source: it keeps its number
        return f"[{label}] ({url})"
    return f"{_emphasis(label)} ({url})"


def _emphasis(text: str) -> str:
    # Italic first: a converted **bold** (or ***both***) must not be read as italic again.
    text = _ITALIC.sub(r"_\1_", text)
    text = _BOLD_ITALIC.sub(r"*_\1_*", text)
    text = _BOLD.sub(lambda m: f"*{m.group(1) or m.group(2)}*", text)
    return _STRIKE.sub(r"~\1~", text)


def _plain(heading: str) -> str:
    """A heading's text without the emphasis marks it may carry (the line is bold already)."""
    return re.sub(r"\*\*|__|\*", "", heading).strip()
