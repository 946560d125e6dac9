"""The model's Markdown as WhatsApp's formatting, and splits that keep formatting whole."""

from __future__ import annotations

import re

import pytest

from events.model import Citation
from pipeline.llm import format_reply, split_message
from pipeline.llm._markup import protected, whatsapp_markup


@pytest.mark.parametrize(
    ("markdown", "whatsapp"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("***both***", "*_both_*"),
        ("**bold with *italic* inside**", "*bold with _italic_ inside*"),
        ("~~gone~~", "~gone~"),
        ("# Trip plan", "*Trip plan*"),
        ("### **Day 1** ###", "*Day 1*"),
        (
            "See [the map](https://maps.example/x_y__z).",
            "See the map (https://maps.example/x_y__z).",
        ),
        ("[https://a.example/p](https://a.example/p)", "https://a.example/p"),
        ("[a.example/p](https://a.example/p)", "https://a.example/p"),
        ("As reported [1](https://a.example).", "As reported [1] (https://a.example)."),
        ("Prices [1][2] vary", "Prices [1][2] vary"),
        ("- one\n- two\n* three\n1. four", "- one\n- two\n* three\n1. four"),
        ("> quoted **line**", "> quoted *line*"),
        ("use `**kwargs` here", "use `**kwargs` here"),
        (
            "```python\nf(**kw)  # __init__\n```\nthen **this**",
            "```\nf(**kw)  # __init__\n```\nthen *this*",
        ),
        ("https://x.example/a__b__c and **b**", "https://x.example/a__b__c and *b*"),
        ("2 * 3 * 4 = 24", "2 * 3 * 4 = 24"),
        ("snake_case and a__b__c", "snake_case and a__b__c"),
        ("already *WhatsApp* bold?", "already _WhatsApp_ bold?"),
        ("", ""),
    ],
)
def test_markdown_becomes_whatsapp_s_formatting(markdown: str, whatsapp: str) -> None:
    assert whatsapp_markup(markdown) == whatsapp


def test_an_unclosed_fence_keeps_the_rest_as_code() -> None:
    assert whatsapp_markup("**a**\n```\nx = **y**") == "*a*\n```\nx = **y**"


def test_format_reply_formats_the_answer_but_not_the_sources() -> None:
    citations = [Citation(url="https://www.example.com/a__b", title="**Title**")]

    text = format_reply("**Yes** [1]", citations)
    plain = format_reply("**Yes** [1]", citations, formatting="plain")

    assert text.splitlines()[0] == "*Yes* [1]"
    assert plain.splitlines()[0] == "**Yes** [1]"
    assert text.splitlines()[1:] == plain.splitlines()[1:]


def test_protected_names_spans_urls_and_code() -> None:
    text = "a *b c* d https://e.example/f g `h i` ~j k~ ```l m```"

    found = {text[a:b] for a, b in protected(text)}

    assert {"*b c*", "https://e.example/f", "`h i`", "~j k~", "```l m```"} <= found
    assert not any(" d " in f or " g " in f for f in found)  # the plain words between


def _spans_whole(part: str) -> bool:
    """Every formatting mark of ``part`` is closed within it (ignoring the numbering)."""
    body = re.sub(r"^\(\d+/\d+\) ", "", part)
    return all(body.count(mark) % 2 == 0 for mark in ("*", "~", "`"))


@pytest.mark.parametrize("limit", [200, 233, 260, 301])
def test_a_split_never_falls_inside_a_span_or_a_url(limit: int) -> None:
    # The best breaks (sentence ends, commas) are all inside spans: the cut must take a space.
    url = "https://example.com/" + "a" * 60
    sentence = f"Word *bold. More bold* and ~struck, too~ then {url} and `code. Here` end"
    text = " ".join([sentence] * 12)

    parts = split_message(text, limit)

    assert len(parts) > 1
    assert all(len(p) <= limit for p in parts)
    assert all(_spans_whole(p) for p in parts), parts
    assert all(p.count(url) == p.count("https://") for p in parts), parts


def test_a_code_block_longer_than_a_part_is_still_cut_at_a_line_break() -> None:
    code = "```\n" + "\n".join(f"line {n} = {n * n}" for n in range(60)) + "\n```"

    parts = split_message(code, 200)

    assert all(len(p) <= 200 for p in parts)
    assert all(p.endswith(tuple("0123456789`")) for p in parts)
