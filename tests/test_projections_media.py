"""Attachments in the folds: the queue item gathers what was made of it, transcription
cost counts against the budget and in stats, the audit timeline shows each step."""

from __future__ import annotations

from events.model import (
    AnyEvent,
    DocumentRead,
    LlmCompleted,
    Media,
    MediaTranscribed,
    MessageReceived,
    Recorded,
    TranscriptionFailed,
    Usage,
)
from projections import budget, queue, stats, timeline
from projections.fold import fold

CHAT = "491701111111@s.whatsapp.net"
VOICE = Media(kind="voice", mime="audio/ogg", size=9000, sha256="a" * 64, seconds=7.0)
PDF = Media(kind="document", mime="application/pdf", size=5000, sha256="b" * 64, file_name="r.pdf")


def records(*events: AnyEvent) -> list[Recorded]:
    return [Recorded(seq=n, ts=1000.0 + n, event=ev) for n, ev in enumerate(events, start=1)]


def received(msg_id: str, media: Media) -> MessageReceived:
    return MessageReceived(chat=CHAT, msg_id=msg_id, sender=CHAT, kind="audio", media=media)


HISTORY = records(
    received("V1", VOICE),
    received("D1", PDF),
    TranscriptionFailed(chat=CHAT, msg_id="V1", status=500, error="server error", final=False),
    MediaTranscribed(chat=CHAT, msg_id="V1", text="Hallo", model="whisper-1", cost_usd=0.0007),
    DocumentRead(chat=CHAT, msg_id="D1", text="Quarterly", pages=2),
    LlmCompleted(chat=CHAT, call_id="c1", content="x", usage=Usage(cost_usd=0.005)),
)


def test_the_queue_item_carries_its_attachment_transcript_and_document() -> None:
    states = fold(HISTORY)
    voice, doc = queue.pending(states.queue, CHAT)
    assert (voice.media, voice.transcript, voice.document) == (VOICE, "Hallo", None)
    assert doc.media == PDF
    assert doc.document is not None
    assert (doc.document.text, doc.document.pages) == ("Quarterly", 2)


def test_transcriptions_count_against_the_budget_and_in_stats() -> None:
    states = fold(HISTORY)
    assert budget.spent_since(states.budget, 0.0) == 0.0057
    assert budget.spent_since(states.budget, 0.0, "transcription") == 0.0007
    assert budget.spent_since(states.budget, 0.0, "llm") == 0.005
    assert states.stats.spend_usd == {"transcription": 0.0007, "llm": 0.005}
    assert states.stats.by_type["MediaTranscribed"] == 1


def test_the_timeline_shows_every_step_under_its_message() -> None:
    audit = timeline.audit(HISTORY, CHAT)
    [pending] = audit.turns
    voice, doc = pending.messages
    assert voice.media == VOICE
    assert [type(a).__name__ for a in voice.attached] == ["TranscriptionFailed", "MediaTranscribed"]
    assert [type(a).__name__ for a in doc.attached] == ["DocumentRead"]


def test_stats_keep_a_slot_for_every_event_type() -> None:
    assert {"MediaTranscribed", "TranscriptionFailed", "DocumentRead"} <= set(stats.State().by_type)
