"""Owner commands: what the owner types in the own "note to self" chat, answered
without an LLM call, as pure functions of the view, the config and now.

``/status``, ``/pause NAME|all [30m|2h|1d]``, ``/resume NAME|all``,
``/reminders`` and ``/help`` (``/reset`` is every chat's, ``_turn.reset``).
A command is the whole message: ``/`` and a word, then its arguments; any
other text, and the same text from anyone else, is an ordinary message. An
unknown ``/word`` gets the help text. Each answer is a ``ReplyPlanned`` with
purpose ``command`` to the owner's chat (in numbered parts, as a reply is,
where longer than ``whatsapp.max_message_chars``), in the same commit as
what the command records (``ChatPaused``, ``ChatResumed``): the agent
appends both through the write-ahead chain, and the answer drains the
command from the queue, so a restart neither loses nor repeats it.

``/resume`` also ends a takeover (the owner wrote in the chat:
``projections.takeover``) before its ``takeover.minutes`` are up, recorded
as the same ``ChatResumed``; ``/status`` lists takeovers with the paused chats.

A paused chat's messages wait (``_turn.step``); at ``/resume`` or the
pause's end those still within ``polling.catch_up_minutes`` are answered, the
older ones are skipped as ``paused`` (``_decide.on_arrival``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from events.model import AnyEvent, ChatPaused, ChatResumed, ReplyPlanned
from pipeline.config import AppConfig, Entity, SelfEntity, UnknownChat, clock, counted
from pipeline.daemon import _decide as decide
from pipeline.daemon._replies import Ids, numbered
from pipeline.daemon._status import display, report, taken_over
from pipeline.llm import split_message
from projections import pauses, queue
from projections import reminders as pending_reminders
from projections.fold import States
from projections.queue import Item

NAMES = ("status", "pause", "resume", "reminders", "help")
_COMMAND = re.compile(r"/([A-Za-z]+)(?:\s+(.*))?", re.DOTALL)
_DURATION = re.compile(r"(\d+)\s*(m|min|h|d)", re.IGNORECASE)
# NAME then what is typed as a duration: a number, with its unit or a space and a word.
_TRAILING = re.compile(r"(.*?)\s+(\d+\w*|\d+\s+[^\W\d_]+)", re.DOTALL)
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400}
REMINDERS_SHOWN = 30  # /reminders lists this many, then says how many more
MAX_PAUSE = 365 * 86400  # a longer pause is a mistake: /pause NAME without one lasts anyway

HELP = """Commands (in this chat only):
/status: connection, restriction, queue, replies and spend today, last error
/pause NAME|all [30m|2h|1d]: stop answering a chat (all: every chat but this one), \
for that long or until /resume; its messages wait
/resume NAME|all: answer again; the messages that waited are answered if still recent
/reminders: the reminders pending
/reset: start a new conversation
/help: this list"""


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # one of NAMES, or the unknown word typed
    args: str  # the rest of the message, stripped


@dataclass(frozen=True, slots=True)
class Facts:
    """What a command reads: the view, the config in force, now and where ids come from."""

    view: States
    config: AppConfig
    now: float
    ids: Ids


def parse(text: str) -> Command | None:
    """The command ``text`` is; None: ordinary text (``/reset`` is not one of these).

    Only ``/`` and letters at the start make a command, so a path such as
    ``/etc/hosts`` or a lone ``/`` is ordinary text.
    """
    match = _COMMAND.fullmatch(text.strip())
    if match is None:
        return None
    name = match.group(1).casefold()
    if name == decide.RESET_COMMAND.lstrip("/"):
        return None
    return Command(name, (match.group(2) or "").strip())


def is_command(entity: Entity, item: Item) -> bool:
    """The owner's own message in the owner's own chat that is a command."""
    return isinstance(entity, SelfEntity) and item.message.from_me and parse(item.text) is not None


def logged(text: str) -> str:
    """The command's name for a log line: a known one, else ``unknown`` (never what
    was typed: a log line carries no chat's words)."""
    command = parse(text)
    return command.name if command is not None and command.name in NAMES else "unknown"


def duration(word: str) -> float | None:
    """``30m``, ``2h``, ``1d`` in seconds; None: not a duration."""
    match = _DURATION.fullmatch(word.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNITS[match.group(2).casefold()]


def split_duration(args: str) -> tuple[str, str | None]:
    """``NAME [DURATION]`` as the name and what ends it as a duration, as typed
    (``2h``, ``30 min``, or not one such as ``5y``; None: nothing does). A name
    may have spaces (``Bob Smith 2h``): only a number after it, with or without
    a space before its unit, is taken for the duration; the name's spaces are
    collapsed, so ``Bob  Smith`` is Bob Smith."""
    match = _TRAILING.fullmatch(args.strip())
    name, typed = (args, None) if match is None else (match.group(1), match.group(2))
    return " ".join(name.split()), typed


def answer(facts: Facts, item: Item) -> list[AnyEvent]:
    """What the command ``item`` records, then its answer to the owner's chat."""
    command = parse(item.text) or Command("help", "")  # callers ask ``is_command`` first
    recorded: list[AnyEvent] = []
    quotes: str | None = None
    if command.name == "status":
        text, quotes = report(facts.view, facts.config, facts.now, item.message.msg_id)
    elif command.name == "pause":
        recorded, text = pause(facts, command.args, item.message.msg_id)
    elif command.name == "resume":
        recorded, text = resume(facts, command.args, item.message.msg_id)
    elif command.name == "reminders":
        listed = reminders(facts.view, facts.config, facts.now)
        return [m for text, quotes in listed for m in _said(facts, item, text, quotes)]
    else:
        text = HELP if command.name == "help" else f"Unknown command /{command.name}.\n\n{HELP}"
    return [*recorded, *_said(facts, item, text, quotes)]


def _said(facts: Facts, item: Item, text: str, quotes: str | None) -> list[ReplyPlanned]:
    """One message of a command's answer, to the owner's chat: in numbered parts, as
    a reply is, where longer than ``whatsapp.max_message_chars`` (WhatsApp would
    refuse it whole)."""
    parts = split_message(text, facts.config.whatsapp.max_message_chars)
    return [
        ReplyPlanned(
            chat=item.message.chat,
            reply_id=facts.ids.new_id(),
            purpose="command",
            text=part,
            in_reply_to=item.message.msg_id,
            trigger_ids=[item.message.msg_id],
            wa_id=facts.ids.new_wa_id(),
            part=n,
            parts=of,
            quotes_chat=quotes,
        )
        for n, of, part in numbered(parts)
    ]


def reminders(view: States, config: AppConfig, now: float) -> list[tuple[str, str | None]]:
    """``/reminders``: every chat's pending reminders, earliest first, one line each
    (id, when, which chat, what), so the owner sees what the bot will send. One
    message a chat, each naming the chat whose words it quotes, so ``forget`` of one
    chat takes its own message and leaves the others'."""
    pending = pending_reminders.every(view.reminders)
    if not pending:
        return [("No reminders pending.", None)]
    shown = pending[:REMINDERS_SHOWN]
    chats: dict[str, list[str]] = {}
    for r in shown:
        line = f"{r.reminder_id} {clock(r.at, now, config)} {display(config, r.chat)}: "
        chats.setdefault(r.chat, []).append(line + " ".join(r.text.split()))
    more = len(pending) - len(shown)
    messages = []
    for chat, lines in chats.items():
        whose = "" if len(chats) == 1 else f" for {display(config, chat)}"
        messages.append([f"{counted(len(lines), 'reminder')} pending{whose}:", *lines])
    if more:
        messages[-1].append(f"… and {more} more")
    return [("\n".join(m), chat) for m, chat in zip(messages, chats, strict=True)]


def pause(facts: Facts, args: str, msg_id: str) -> tuple[list[AnyEvent], str]:
    """``/pause NAME|all [DURATION]``: a ``ChatPaused`` per chat, and the answer (only
    the answer when the arguments name no chat or no duration)."""
    name, typed = split_duration(args)
    seconds = duration(typed) if typed is not None else None
    if typed is not None and seconds is None:
        return [], f"{typed!r} is not a duration: say 30m, 2h or 1d."
    if not name or duration(name) is not None:
        return [], "Which chat? /pause NAME|all [30m|2h|1d]"
    if seconds is not None and not 0 < seconds <= MAX_PAUSE:
        return [], "A pause lasts from 1 minute to 365 days (or, without one, until /resume)."
    chats = _targets(facts.config, name, every=True)
    if isinstance(chats, str):
        return [], chats
    until = facts.now + seconds if seconds is not None else None
    paused: list[AnyEvent] = [ChatPaused(chat=c, until=until, msg_id=msg_id) for c in chats]
    names = ", ".join(display(facts.config, chat) for chat in chats)
    end = f"until {clock(until, facts.now, facts.config)}" if until else "until /resume"
    return paused, f"Paused {names} {end}. Their messages wait; /resume answers the recent ones."


def resume(facts: Facts, args: str, msg_id: str) -> tuple[list[AnyEvent], str]:
    """``/resume NAME|all``: a ``ChatResumed`` per paused chat, and the answer saying
    what of theirs will be answered (``_decide`` judges it as it always does)."""
    if not args:
        return [], "Which chat? /resume NAME|all"
    # The owner's /pauses, then the takeovers (the owner wrote in the chat).
    paused = [*pauses.paused_chats(facts.view.pauses, facts.now)]
    paused += [c for c in taken_over(facts.view, facts.config, facts.now) if c not in paused]
    chats = _targets(facts.config, args, every=False)
    if isinstance(chats, str):
        return [], chats
    if args.casefold() == "all":
        chats = [chat for chat in paused if facts.config.find_entity(chat) is not None]
        if not chats:
            return [], "No chat is paused."
    elif chats[0] not in paused:
        return [], f"{display(facts.config, chats[0])} is not paused."
    resumed: list[AnyEvent] = [ChatResumed(chat=chat, msg_id=msg_id) for chat in chats]
    return resumed, _resumed_text(facts, chats)


def _resumed_text(facts: Facts, chats: list[str]) -> str:
    fresh = stale = 0
    for chat in chats:
        for item in queue.pending(facts.view.queue, chat):
            if decide.is_stale(facts.config, item, facts.now):
                stale += 1
            else:
                fresh += 1
    names = ", ".join(display(facts.config, chat) for chat in chats)
    text = f"Resumed {names}."
    if fresh:
        text += f" {counted(fresh, 'message')} that waited will be answered now."
    if stale:
        minutes = facts.config.polling.catch_up_minutes
        text += (
            f" {counted(stale, 'message')} older than polling.catch_up_minutes "
            f"({minutes:g}) stay unanswered."
        )
    return text


def _targets(config: AppConfig, name: str, *, every: bool) -> list[str] | str:
    """The chats NAME means (``all``: every monitored chat but the owner's, when
    ``every``), or the answer saying why none."""
    if name.casefold() == "all":
        chats = [
            config.entity_jid(e) for e in config.monitored_entities if not isinstance(e, SelfEntity)
        ]
        return chats if chats or not every else "No chat to pause: only this one is monitored."
    try:
        entity = config.find_entity(config.resolve_chat(name))
    except UnknownChat:
        names = ", ".join(e.name for e in config.monitored_entities if e.name)
        known = f"the names are {names}" if names else "no chat in app.json has a name"
        return f"No chat named {name!r} ({known})."
    if entity is None:
        return f"{name!r} is not a monitored chat."
    return [config.entity_jid(entity)]


def wait_until(view: States, config: AppConfig, chat: str, now: float) -> float | None:
    """While ``chat`` is paused, when to look at it again: the pause's end, or when
    a message waiting in it is no longer recent (it is then skipped as ``paused``);
    None: not paused."""
    end = pauses.until(view.pauses, chat, now)
    if end is None:
        return None
    window = config.polling.catch_up_minutes * 60
    waiting = [(i.message.sent_at or i.ts) + window for i in queue.pending(view.queue, chat)]
    return min([end, *waiting])
