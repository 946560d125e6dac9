"""What the model is told of attachments, and how images go over both wire shapes."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import pytest

from events.model import ChatTurn, DocumentRead, ImageRef, Media, MessageReceived
from pipeline.config import config_from_dict
from pipeline.llm import CUT_MARKER, build_request, normalize_turns, user_text, user_turn
from projections.queue import Item
from tests.media_files import png

SHA = "c0ffee" + "0" * 58
PICTURE = ImageRef(sha256=SHA, mime="image/png")


def item(text: str = "", media: Media | None = None, **fields: Any) -> Item:
    """A queued message; ``fields`` name the queue's own (transcript…) or the message's."""
    queued = {k: fields.pop(k) for k in list(fields) if k in _QUEUED}
    said: dict[str, Any] = {
        "msg_id": "M1",
        "chat": "491701111111@s.whatsapp.net",
        "sender": "491701111111@s.whatsapp.net",
        "push_name": "Alice",
    }
    message = MessageReceived(text=text, media=media, **(said | fields))
    return Item(seq=1, ts=0.0, message=message, **queued)


_QUEUED = {f.name for f in msgspec.structs.fields(Item)}


def voice(transcript: str | None, seconds: float = 7.0) -> Item:
    media = Media(kind="voice", mime="audio/ogg", size=9000, sha256=SHA, seconds=seconds)
    return item(media=media, transcript=transcript)


def test_a_voice_note_is_a_marked_transcript_never_typed_text() -> None:
    assert user_text([voice("Wann treffen wir uns?")], 4000) == (
        "[voice note, 7 s, automatic transcript] Wann treffen wir uns?"
    )
    assert (
        user_text([voice("ok", 125.4)], 4000) == "[voice note, 2 min 5 s, automatic transcript] ok"
    )


def test_in_a_group_the_transcript_says_who_spoke() -> None:
    said = item(is_group=True, push_name="Bob", media=voice("hi").media, transcript="hi")
    assert user_text([said], 4000) == "Bob: [voice note, 7 s, automatic transcript] hi"


def test_an_image_goes_with_its_caption_or_is_named_when_vision_is_off() -> None:
    photo = item("What plant is this?", Media(kind="image", mime="image/png", sha256=SHA))
    assert user_text([photo], 4000) == "[image] What plant is this?"
    assert user_text([photo], 4000, vision=False) == "[image, not shown to you] What plant is this?"


def test_the_user_turn_carries_images_only_with_vision_on() -> None:
    photo = item("look", Media(kind="image", mime="image/png", sha256=SHA))
    on = config_from_dict({"whatsapp": {"phone_number": "491700000000"}})
    off = config_from_dict(
        {"whatsapp": {"phone_number": "491700000000"}, "media": {"vision": False}}
    )
    assert user_turn([photo], on) == ChatTurn("user", "[image] look", (PICTURE,))
    assert user_turn([photo], off) == ChatTurn("user", "[image, not shown to you] look")


def test_a_documents_text_follows_the_turn_cut_with_a_marker() -> None:
    media = Media(kind="document", mime="application/pdf", size=5000, sha256=SHA, file_name="r.pdf")
    read = DocumentRead(msg_id="M1", text="x" * 120, pages=3, cut=True)
    text = user_text([item("Summarise this", media, document=read)], 80)
    assert text == (
        '[document "r.pdf", 3 pages: its text follows below] Summarise this\n\n'
        '[text of "r.pdf"]\n' + "x" * 80 + "\n"
        "[… document cut: only its first 80 characters are shown]\n"
        '[end of "r.pdf"]'
    )


def test_documents_that_cannot_be_read_are_described_by_name_and_size() -> None:
    media = Media(
        kind="document", mime="application/vnd.ms-excel", size=46_000, file_name="budget.xls"
    )
    assert user_text([item("", media)], 4000) == (
        '[document "budget.xls" (application/vnd.ms-excel, 45 KB): '
        "its contents cannot be read here]"
    )
    scan = DocumentRead(msg_id="M1", text="", pages=2)
    pdf = Media(kind="document", mime="application/pdf", sha256=SHA, file_name="scan.pdf")
    assert user_text([item("", pdf, document=scan)], 4000) == (
        '[document "scan.pdf", 2 pages: there is no text in it, perhaps a scan]'
    )


def test_the_message_cut_does_not_eat_the_document() -> None:
    media = Media(kind="document", mime="text/plain", sha256=SHA, file_name="a.txt")
    read = DocumentRead(msg_id="M1", text="doc text")
    text = user_text([item("q" * 100, media, document=read)], 60)
    head, doc = text.split("\n\n", 1)
    assert head.endswith(CUT_MARKER.format(limit=60))
    assert doc == '[text of "a.txt"]\ndoc text\n[end of "a.txt"]'


def test_a_message_without_attachment_reads_as_before() -> None:
    assert user_text([item("plain"), item("two", is_group=False)], 4000) == "plain\ntwo"


URL = "data:image/png;base64," + base64.b64encode(png()).decode()
TURNS = [
    ChatTurn("system", "Be brief."),
    ChatTurn("user", "hi"),
    ChatTurn("assistant", "Hello!"),
    ChatTurn("user", "[image] What is it?", (PICTURE,)),
]


def test_agent_api_images_are_input_image_parts() -> None:
    _, body = build_request("perplexity", "http://x", "m", TURNS, {}, images=lambda _: URL)
    assert body["input"] == [
        {"role": "user", "content": "hi"},  # older turns keep only text
        {"role": "assistant", "content": "Hello!"},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "[image] What is it?"},
                {"type": "input_image", "image_url": URL},
            ],
        },
    ]


def test_chat_completions_images_are_image_url_parts() -> None:
    _, body = build_request("openai", "http://x/v1", "m", TURNS, {}, images=lambda _: URL)
    assert body["messages"][-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "[image] What is it?"},
            {"type": "image_url", "image_url": {"url": URL}},
        ],
    }
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_images_without_a_store_to_read_them_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="no media store"):
        build_request("openai", "http://x/v1", "m", TURNS, {})


def test_merging_turns_keeps_their_images() -> None:
    merged = normalize_turns([ChatTurn("user", "a"), ChatTurn("user", "b", (PICTURE,))])
    assert merged == [ChatTurn("user", "a\n\nb", (PICTURE,))]
