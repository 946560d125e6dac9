"""The audit for people (a terminal timeline) and for programs (one JSON document)."""

from __future__ import annotations

from typing import Any

import msgspec

from events.jid import user_part
from events.model import Media, MediaOutcome, MediaTranscribed, Recorded, TranscriptionFailed
from pipeline.config import counted
from pipeline.media import human_size
from pipeline.tools._args import iso
from projections.timeline import Audit, Delivery, Effect, Failure, Incoming, Response, Turn

_INDENT = "    "
# Receipts from the recipient's side, in the order they happen.
_PHONE_STATES = ("delivered", "read", "played")
# Why a message had no content for the bot (``MessageUndecryptable.reason``).
_UNREADABLE = {
    "view_once": "view-once media, which WhatsApp shows on the phone only",
    "decrypt_failed": "WhatsApp could not decrypt it",
    "unavailable": "WhatsApp did not hand its content over",
}


def event_object(rec: Recorded) -> dict[str, Any]:
    """An event as ``{"type", "seq", "ts", …fields}`` (fields flat)."""
    body: dict[str, Any] = msgspec.to_builtins(rec.event)
    kind = body.pop("type")
    return {"type": kind, "seq": rec.seq, "ts": rec.ts, **body}


def audit_doc(result: Audit) -> dict[str, Any]:
    return {
        "chat": result.chat,
        "turns": msgspec.to_builtins(result.turns),
        "events": [event_object(r) for r in result.records],
    }


def audit_text(result: Audit, title: str) -> str:
    turns, events = counted(len(result.turns), "turn"), counted(len(result.records), "event")
    head = f"Audit of {title}: {turns}, {events}"
    lines = [head]
    shown_config: str | None = None
    for t in result.turns:
        lines += ["", *_turn(t, shown_config)]
        shown_config = t.config.hash if t.config is not None else shown_config
    return "\n".join(lines)


def _turn(t: Turn, shown_config: str | None) -> list[str]:
    """``shown_config``: the hash of the last config printed, whose changes need no repeat."""
    lines = [f"#{t.n} {iso(t.ts)}  {headline(t)}  (seq {t.seq})"]
    lines += [line for m in t.messages for line in _incoming(m)]
    if t.session_id is not None:
        started = f" ({t.session_started})" if t.session_started else ""
        lines.append(f"  session {t.session_id[:8]}{started}")
    if t.config is not None:
        if t.config.hash == shown_config:
            change = "unchanged"
        elif t.config.changed is None:
            change = "first config in the log"
        else:
            change = "; ".join(t.config.changed) or "no setting changed"
        applied = t.config.experiment and change != "unchanged"
        source = f" (from replay experiment {t.config.experiment})" if applied else ""
        lines.append(f"  config {t.config.hash[:12]}{source}: {change}")
    if t.request is not None:
        params = " ".join(f"{k}={v}" for k, v in t.request.params.items())
        lines.append(f"  request {t.request.model} {params} (call {t.request.call_id[:8]})")
        for m in t.request.messages:
            lines += _block(f"[{m.role}]", m.content, 4)
            lines += [f"{_INDENT}  + image {i.mime} sha256 {i.sha256}" for i in m.images]
    lines += [_failure("llm failed", f) for f in t.failures]
    lines += _tool_rounds(t)
    lines += [f"  {effect_line(e)}" for e in t.effects]
    if t.kind == "silent":
        lines.append(f"  stayed silent: {t.reason}")
    if t.response is not None:
        r = t.response
        lines.append(f"  response {_answer(r)}")
        lines += _block("", r.content, 4)
        lines += [
            f"{_INDENT}[{i}] {c.url} {c.title}".rstrip() for i, c in enumerate(r.citations, 1)
        ]
    for d in t.replies:
        lines += _delivery(d)
    return lines


def _answer(r: Response) -> str:
    """When an answer came, how long it took, what it cost, its tokens and finish reason."""
    cost = "cost unknown" if r.usage.cost_usd is None else f"${r.usage.cost_usd:.4f}"
    tokens = f"{r.usage.input_tokens}+{r.usage.output_tokens} tokens"
    return f"{iso(r.ts)}  {r.latency_ms:.0f} ms  {cost}  {tokens}  {r.finish_reason}"


def _tool_rounds(t: Turn) -> list[str]:
    """Each round of the tool loop: the answer that called tools, then every call
    with its arguments (as the model wrote them) and the result it got."""
    lines: list[str] = []
    for number, r in enumerate(t.rounds, start=1):
        lines.append(f"  round {number} {_answer(r)}")
        if r.content:
            lines += _block("", r.content, 4)
        for use in (u for u in t.tools if u.round == number):
            lines.append(f"{_INDENT}tool {use.name} {use.arguments}")
            said = "(no result recorded)" if use.output is None else use.output
            lines.append(f"{_INDENT}  {'error' if use.error else 'result'}: {said}")
    return lines


def effect_line(e: Effect) -> str:
    """What a tool did, or a reminder's firing, in one line."""
    if e.kind == "reminder_set":
        return f"reminder {e.subject} set for {iso(e.at or 0.0)}: {e.text}"
    if e.kind == "reminder_cancelled":
        return f"reminder {e.subject} cancelled" + (f" ({e.text})" if e.text else "")
    if e.kind == "reminder_fired":
        return f"reminder {e.subject} fired"
    if e.kind == "reminder_missed":
        return f"reminder {e.subject} missed (due while the bot was down)"
    if e.kind == "fact_remembered":
        return f"fact remembered: {e.text}"
    why = "over the bound, the oldest" if e.subject == "bound" else "asked"
    return f"facts forgotten ({why}): {e.text}"


def headline(t: Turn) -> str:
    """What was decided, in a few words: ``skipped: not_triggered``, ``answered by the LLM``."""
    if t.kind == "skipped":
        return f"skipped: {t.reason}" + (f" ({t.detail})" if t.detail else "")
    if t.kind == "answered":
        final = next((f for f in t.failures if f.final), None)
        return "LLM call failed, no reply" if final is not None else "answered by the LLM"
    if t.kind == "reset":
        return "reset: new session, no LLM call"
    if t.kind == "command":
        return "owner command, answered without an LLM call"
    if t.kind == "paused":
        return f"paused by you (/pause) until {t.detail or '/resume'}"
    if t.kind == "resumed":
        return "resumed by you (/resume)"
    if t.kind == "silent":
        return "the LLM stayed silent, no reply"
    if t.kind == "reminder":
        sent = "reminder sent by the scheduler" if t.replies else "recorded without an LLM call"
        return f"{sent}, no LLM call" if t.replies else sent
    if t.kind == "compacted":
        # The message was kept (it ties a person's ids together); what was decided went.
        return f"decision removed by a compaction ({t.reason} {t.detail}); the message was kept"
    if t.kind == "pending":
        return "not decided yet"
    if t.kind == "undecryptable":
        detail = f" ({t.detail})" if t.detail else ""
        return f"not readable: {_UNREADABLE.get(t.reason or '', t.reason)}{detail}; never answered"
    return f"{t.kind} message"


def who(m: Incoming) -> str:
    """Who wrote an inbound message: ``owner``, the push name, else the number."""
    return "owner" if m.from_me else (m.push_name or user_part(m.sender))


def _incoming(m: Incoming) -> list[str]:
    kind = m.media.kind if m.media is not None else m.kind  # "voice", not just "audio"
    text = m.text if kind == "text" else f"[{kind}] {m.text}".rstrip()
    lines = [f"  in  {iso(m.ts)}  {who(m)}: {text}  [{m.msg_id}]"]
    lines += [f"      edited: {e if e is not None else '(not readable)'}" for e in m.edits]
    if m.revoked:
        lines.append("      deleted by the sender")
    return lines + _attachment(m)


def _attachment(m: Incoming) -> list[str]:
    """The attachment of a message and what was made of it, one line each."""
    media = m.media
    if media is None:
        return []
    facts = attachment_facts(media)
    stored = "being fetched" if media.fetching else "not stored"
    facts += [f"sha256 {media.sha256}"] if media.sha256 else [stored]
    lines = [f"{_INDENT}media {', '.join(facts)}"]
    if media.problem is not None:
        lines.append(f"{_INDENT}  not used: {unused(media)}")
    for done in m.attached:
        label, text = outcome(done)
        lines += _block(f"  {label}", text, 4) if text else [f"{_INDENT}  {label}"]
    return lines


def attachment_facts(media: Media) -> list[str]:
    """What an attachment is: its kind, type, size, length and name, as far as known."""
    facts = [media.kind, media.mime or "type unknown"]
    facts += [human_size(media.size)] if media.size else []
    facts += [f"{media.seconds:g} s"] if media.seconds else []
    facts += [f'"{media.file_name}"'] if media.file_name else []
    return facts


def unused(media: Media) -> str:
    """Why an attachment's bytes were not used: ``too_large (40.0 MB, over …)``."""
    return f"{media.problem}" + (f" ({media.detail})" if media.detail else "")


def outcome(done: MediaOutcome) -> tuple[str, str]:
    """What was made of an attachment: a label, and the text it introduces ("" if none)."""
    if isinstance(done, MediaTranscribed):
        cost = "cost unknown" if done.cost_usd is None else f"${done.cost_usd:.4f}"
        return f"transcript ({done.model}, {cost}):", done.text
    if isinstance(done, TranscriptionFailed):
        status = f" HTTP {done.status}" if done.status else ""
        final = "final" if done.final else "will retry"
        return f"transcription failed attempt {done.attempt}{status} ({final}): {done.error}", ""
    if done.error:
        return f"document not readable: {done.error}", ""
    pages = f"{done.pages} page{'s' * (done.pages != 1)}, " if done.pages else ""
    cut = ", cut" if done.cut else ""
    return f"document text: {pages}{len(done.text)} characters{cut}", ""


def _failure(what: str, f: Failure) -> str:
    status = f" HTTP {f.status}" if f.status else ""
    final = "final" if f.final else "will retry"
    return f"  {what} {iso(f.ts)} attempt {f.attempt}{status} ({final}): {f.error}"


def _delivery(d: Delivery) -> list[str]:
    if d.sent_ts is not None:
        state = f"sent {iso(d.sent_ts)} as {d.wa_id}; {receipts_text(d)}"
    elif any(f.final for f in d.failures):
        state = "NOT sent"
    else:
        state = "not sent yet"
    lines = [f"  {d.purpose} planned {iso(d.planned_ts)}, {state}"]
    lines += _speech(d)
    lines += [_failure("send failed", f) for f in d.failures]
    return lines + _block("", d.text, 4)


def _speech(d: Delivery) -> list[str]:
    """How a part planned to be spoken went: the voice note made, or why its text went."""
    if d.speech_plan is None:
        return []
    lines = [_failure("speech failed", f) for f in d.speech_failures]
    made = d.speech
    if made is not None:
        cost = f", ${made.cost_usd:.4f}" if made.cost_usd is not None else ""
        lines.append(
            f"  spoken as a voice note ({d.speech_plan}, {made.seconds:.1f} s{cost}), "
            f"sha256 {made.sha256}"
        )
    elif any(f.final for f in d.speech_failures):
        lines.append("  sent as text instead of a voice note")
    else:
        lines.append(f"  to be spoken ({d.speech_plan})")
    return lines


def receipts_text(d: Delivery) -> str:
    """How far a sent message got, by WhatsApp's receipts: ``delivered …, read …``."""
    told = [f"{s} {iso(d.receipts[s])}" for s in _PHONE_STATES if s in d.receipts]
    if d.reached in ("server", None):
        told.append("no phone confirmed it yet")
    return ", ".join(told)


def _block(label: str, text: str, indent: int) -> list[str]:
    pad = " " * indent
    first, *rest = text.splitlines() or [""]
    lead = f"{pad}{label} " if label else pad
    more = f"{pad}{'  ' if label else ''}"
    return [f"{lead}{first}".rstrip(), *(f"{more}{ln}".rstrip() for ln in rest)]
