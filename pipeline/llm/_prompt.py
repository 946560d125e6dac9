"""What the model is asked: a pure function of config, session context and new messages.

The agent and ``replay.py`` both call ``compose``, so any recorded
``LlmRequested`` (model, params, messages) can be composed again from the
events before it. The HTTP body for a provider is ``build_request``'s job.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import msgspec

from events.jid import user_part
from events.model import ChatTurn, MessageReceived, ToolRound
from pipeline.config import AppConfig, Entity, GroupEntity, LlmConfig
from pipeline.llm._attachments import Attached, document_block, images_of, note
from pipeline.llm._turns import normalize_turns
from projections.group_talk import brief

CUT_MARKER = "\n[… message cut: longer than {limit} characters]"
# What precedes the chat's facts (tool ``remember``) at the end of the system turn.
FACTS_HEADING = "\n\nFacts:\n"
# What precedes the time the turn was composed at, the system turn's last line.
NOW_HEADING = "\n\nNow: "
_NOW_LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d[+-]\d\d:\d\d) \(\w+, [^()\n]+\)")


class Message(Attached, Protocol):
    """What a prompt reads of an inbound message (a queue item): the received event
    (who wrote it, in which chat, what it quotes) and its words as they stand."""

    @property
    def message(self) -> MessageReceived: ...
    @property
    def text(self) -> str: ...


class Prompt(msgspec.Struct, frozen=True, kw_only=True):
    """One LLM call as recorded in ``LlmRequested``: model, params, the exact turns."""

    model: str
    params: dict[str, Any]
    messages: list[ChatTurn]
    tools: list[str] = []  # the function tools offered, by name
    rounds: list[ToolRound] = []  # the turn's earlier tool calls and their outputs


def user_text(messages: Sequence[Message], max_chars: int, *, vision: bool = True) -> str:
    """A debounced burst as one user turn; group lines say who wrote them.

    A message that quotes another carries the quoted text before it, as a
    ``> `` block, cut so that quotes take at most half of ``max_chars``. An
    attachment is a bracketed note before the caption; a document's text
    follows the messages, each cut at ``max_chars`` on its own.
    """
    quote_room = max_chars // 2 // max(1, sum(1 for m in messages if _quote(m)))
    lines = []
    for m in messages:
        body = _said(m, vision)
        said = m.message
        text = f"{said.push_name or user_part(said.sender)}: {body}" if said.is_group else body
        if quoted := _quote(m):
            text = f"{_quote_block(quoted, quote_room)}\n{text}"
        lines.append(text)
    text = "\n".join(lines)
    if len(text) > max_chars:
        text = text[:max_chars] + CUT_MARKER.format(limit=max_chars)
    documents = [block for m in messages if (block := document_block(m, max_chars))]
    return "\n\n".join([text, *documents])


class Said(Attached, Protocol):
    """A message heard in a group before the turn (``projections.group_talk.Heard``)."""

    @property
    def name(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def sender(self) -> str: ...
    @property
    def sender_alt(self) -> str | None: ...
    @property
    def from_me(self) -> bool: ...


CONTEXT_HEAD = "[Said in the group since you last answered, for context only; do not answer it]"
ANSWER_HEAD = "[The message to answer]"


def group_context(config: AppConfig, entity: Entity, heard: Sequence[Said]) -> list[Said]:
    """What of ``heard`` goes with a group's turn: in a ``mention`` or ``keyword``
    group (where the bot sees only the triggering message), the newest
    ``groups.context_messages``; elsewhere nothing (the bot answered them all)."""
    if not isinstance(entity, GroupEntity) or entity.trigger.mode == "always":
        return []
    wanted = config.group_settings(entity).context_messages
    return list(heard[len(heard) - wanted :]) if wanted else []


_MENTION = re.compile(r"@\d+")


def pointed_at(
    entity: Entity,
    messages: Sequence[Message],
    context: Sequence[Said],
    known: Mapping[str, Collection[str]] | None = None,
) -> tuple[list[Said], list[Said]]:
    """``context`` apart: (what stays context, what a bare call asks).

    People write the question, then call the bot in a message of its own
    ("@bot"). A burst that is only the call (mentions and the group's keywords,
    no attachment, no quote) asks what its sender said last: their newest
    messages in ``context``, those in a row without another's words between.
    A call that also names someone who spoke there ("@Anna @bot") asks what
    they said last instead. Shown as context, the model was told not to answer
    the question it was called for. ``known``: every form of the ids the call
    names (``aliases.named_by``), so a person who wrote under their LID and
    calls under their number (or the reverse) is still themselves.
    """
    if not isinstance(entity, GroupEntity) or not context or not _bare(entity, messages):
        return list(context), []
    said = messages[-1].message
    known = known or {}
    caller = _people((said.sender, said.sender_alt), known)
    # The owner is named too (the call in a mention group): their words are not asked.
    named = _people(said.mentions, known) - caller
    asker = named if any(_by(h, named, others=True) for h in context) else caller
    others = asker is named
    end = len(context)
    while end and not _by(context[end - 1], asker, others=others):
        end -= 1
    start = end
    while start and _by(context[start - 1], asker, others=others):
        start -= 1
    return [*context[:start], *context[end:]], list(context[start:end])


def _people(ids: Iterable[str | None], known: Mapping[str, Collection[str]]) -> set[str]:
    """``ids`` with every other form the bot knows of each."""
    return {form for jid in ids if jid for form in (jid, *known.get(jid, ()))}


def _by(said: Said, ids: set[str], *, others: bool = False) -> bool:
    """Written by one of ``ids``; with ``others``, not by the owner."""
    if others and said.from_me:
        return False
    return said.sender in ids or (said.sender_alt is not None and said.sender_alt in ids)


def _bare(group: GroupEntity, messages: Sequence[Message]) -> bool:
    """Every message of the burst holds nothing but the call (no words of its own),
    and the call is there: a "👍" or "?" alone, heard in a listening window, has no
    words either, but answers what the bot said; it asks for nothing earlier."""
    keywords = [re.escape(w.strip()) for w in group.trigger.keywords]
    call = re.compile(rf"(?<!\w)(?:{'|'.join(keywords)})(?!\w)", re.I) if keywords else None
    called = False
    for m in messages:
        # A reply points at the message it quotes, text or not (a photo, a voice note).
        if m.media is not None or m.message.quoted is not None or m.message.quoted_id:
            return False
        words = _MENTION.sub(" ", m.text)
        if call is not None:
            words = call.sub(" ", words)
        if re.search(r"\w", words):
            return False
        # Something was taken out: a mention or a keyword, the call itself.
        called = called or bool(m.message.mentions) or words != m.text
    return called


def user_turn(
    messages: Sequence[Message],
    config: AppConfig,
    context: Sequence[Said] = (),
    asked: Sequence[Said] = (),
) -> ChatTurn:
    """The user turn of a burst: its text and, with ``media.vision`` on, its images;
    with ``context``, the group's earlier messages first, marked as such; with
    ``asked`` (``pointed_at``), the words a bare call asks, before the call."""
    vision = config.media.vision
    limit = config.limits.max_input_chars
    text = user_text(messages, limit, vision=vision)
    if asked:
        # Part of the message to answer: whole, and cut as that is, never left out.
        text = "\n".join([*(_line(said.name, _said(said, vision)) for said in asked), text])
        if len(text) > limit:
            text = text[:limit] + CUT_MARKER.format(limit=limit)
    if context:
        lines = _context_lines(context, limit // 2)
        text = "\n".join([CONTEXT_HEAD, *lines, "", ANSWER_HEAD, text])
    return ChatTurn("user", text, images_of([*asked, *messages], vision))


def _context_lines(context: Sequence[Said], room: int) -> list[str]:
    """``name: text`` lines, the newest that fit in ``room`` characters, oldest first;
    each message as context shows it (``group_talk.brief``), an attachment as its
    note, never sent along."""
    lines: list[str] = []
    for said in reversed(context):
        line = _line(said.name, brief(_said(said, vision=False)))
        room -= len(line) + 1
        if room < 0:
            break
        lines.append(line)
    return lines[::-1]


def _said(message: Message | Said, vision: bool) -> str:
    """What a message said: its attachment's note, then its words."""
    return " ".join(part for part in (note(message, vision), message.text) if part)


def _line(name: str, said: str) -> str:
    return f"{name}: {' '.join(said.split())}"


def _quote(message: Message) -> str:
    quoted = message.message.quoted
    return quoted.text.strip() if quoted is not None else ""


def _quote_block(text: str, room: int) -> str:
    if len(text) > room:
        text = text[: max(room - 1, 0)] + "…"
    return "\n".join(f"> {line}" for line in text.splitlines())


def system_text(
    config: AppConfig, entity: Entity, facts: Sequence[str] = (), now: float | None = None
) -> str:
    """The system turn: the entity's persona, then its prompt, then the facts the
    model kept about the chat (``remember``), one ``- `` line each under ``Facts:``,
    then, given ``now``, the date and time in the owner's zone (``vitality.timezone``):
    without them "remind me in 10 minutes" or "what day is it" has no answer."""
    persona, prompt = config.entity_prompt(entity)
    text = "\n\n".join(part for part in (persona.strip(), prompt.strip()) if part)
    if facts:
        text += FACTS_HEADING + "\n".join(f"- {fact}" for fact in facts)
    if now is not None:
        text += NOW_HEADING + time_line(now, config.vitality.zone)
    return text


def time_line(now: float, zone: ZoneInfo) -> str:
    """``2026-12-07T18:50+01:00 (Monday, Europe/Berlin)``: the minute, its offset,
    weekday and zone, as the model reads it and ``composed_at`` reads it back."""
    local = datetime.fromtimestamp(now, zone)
    return f"{local.isoformat(timespec='minutes')} ({local:%A}, {zone.key})"


def composed_at(system: str) -> float | None:
    """The time a recorded system turn was composed at (its ``Now:`` line); None
    when it has none (recorded before the line was sent)."""
    _, heading, line = system.rpartition(NOW_HEADING)
    found = _NOW_LINE.fullmatch(line) if heading else None
    return datetime.fromisoformat(found.group(1)).timestamp() if found else None


def same_system(recorded: str, system: str) -> bool:
    """Whether a session answered under ``recorded`` was under the persona and prompt
    ``system`` says: the facts and the time after them change from turn to turn,
    and neither is a reason to forget the conversation."""
    if composed_at(recorded) is not None:
        recorded = recorded.rpartition(NOW_HEADING)[0]
    if recorded == system:
        return True
    before, heading, _ = recorded.rpartition(FACTS_HEADING)
    return bool(heading) and before == system


def llm_params(llm: LlmConfig) -> dict[str, Any]:
    """Everything besides model and messages that shapes the HTTP body."""
    return {
        "temperature": llm.temperature,
        "max_output_tokens": llm.max_output_tokens,
        "web_search": llm.web_search and llm.provider == "perplexity",
    }


def compose(
    config: AppConfig,
    entity: Entity,
    context: Sequence[ChatTurn],
    new: str | ChatTurn,
    facts: Sequence[str] = (),
    *,
    now: float | None = None,
) -> Prompt:
    """The prompt for the new user turn after ``context``; turns normalised once, here.
    ``facts``: what the model kept about the chat, and ``now``: when the turn is
    composed, for the system turn."""
    turn = new if isinstance(new, ChatTurn) else ChatTurn("user", new)
    turns = [ChatTurn("system", system_text(config, entity, facts, now)), *context, turn]
    return Prompt(
        model=config.llm.model, params=llm_params(config.llm), messages=normalize_turns(turns)
    )


def debug_note(entity_name: str, prompt: Prompt, persona: str) -> str:
    """What the owner sees before a debugged entity's LLM call."""
    system = next((t.content for t in prompt.messages if t.role == "system"), "")
    user = prompt.messages[-1].content
    return (
        f"[debug] {entity_name}\n"
        f"User entry:\n{user}\n\n"
        f"System prompt:\n{system}\n\n"
        f"Persona:\n{persona}"
    )
