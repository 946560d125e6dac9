"""A chat's turn, as pure functions: what to record next, and what to do then.

``step`` looks at a chat's queue and returns a ``Plan``: the events to append
and at most one effect, run once they are committed (the write-ahead rule: a
restart finds in the log every decision made, and an LLM call is requested in
the log before it goes out). The agent appends, runs the effect and asks
again, until the chat has nothing left or must wait. ``answered`` turns what
the LLM said into the events that record it: the reply's parts, or why none
goes out (nothing at all when a compaction, a ``forget``, removed the turn
while the call was out). Both read only their arguments (the view, the config
in force, now, where ids come from), so the tests can cover every path without
a daemon.

The judgements themselves are ``_decide``'s; attachments are ``_attachments``';
what a round of tool calls comes to is ``_loop``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from events.model import (
    AnyEvent,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MessageSkipped,
    ReplyPlanned,
    SessionStarted,
)
from pipeline import toolbox
from pipeline.config import Entity, LoadedConfig, Skip, skip_words
from pipeline.daemon import _attachments as attachments
from pipeline.daemon import _commands as commands
from pipeline.daemon import _decide as decide
from pipeline.daemon import _loop as loop
from pipeline.daemon import _outreach as outreach
from pipeline.daemon import _voice as voice
from pipeline.daemon._replies import Ids, owner_note, reply_parts
from pipeline.llm import (
    LlmResult,
    Prompt,
    compose,
    debug_note,
    format_reply,
    group_context,
    pointed_at,
    spoken_reply,
    system_text,
    user_turn,
)
from projections import addresses, aliases, group_talk, identity, loops, queue, sessions
from projections import facts as known_facts
from projections.fold import States
from projections.queue import Item

RESET_REPLY = "New conversation started: I have forgotten what we said before."

# The fields a model took, given those a turn asks for (the client learns which it refuses).
Learned = Callable[[str, dict[str, Any]], dict[str, Any]]
Line = tuple[str, dict[str, str]]  # a log line (INFO) to write once the events are in


def _as_asked(model: str, params: dict[str, Any]) -> dict[str, Any]:
    return params


@dataclass(frozen=True, slots=True)
class Facts:
    """What a turn reads: the view, the config in force, now and where ids come from."""

    view: States
    loaded: LoadedConfig
    now: float
    ids: Ids
    reserving: frozenset[str] = frozenset()  # chats whose call may not be in the log yet
    learned: Learned = _as_asked
    prepares_media: bool = False  # attachments are transcribed and read before a turn


@dataclass(frozen=True, slots=True)
class Ask:
    """Ask the LLM (``LlmRequested`` is in the events before it)."""

    chat: str
    call_id: str
    prompt: Prompt
    run: list[Item]
    to: str  # where "typing…" is shown
    typing: bool
    request: LlmRequested  # as recorded: the next round of a tool loop copies it


@dataclass(frozen=True, slots=True)
class Prepare:
    """Transcribe or read an attachment of the burst (``_media.MediaStep``)."""

    step: attachments.Step


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to do before ``until`` (the burst's debounce); a commit may end it sooner."""

    until: float


@dataclass(frozen=True, slots=True)
class AwaitResume:
    """The owner paused the chat: look again at ``until`` (the pause's end, or when a
    waiting message is no longer recent), or when a ``/resume`` comes."""

    until: float


@dataclass(frozen=True, slots=True)
class AwaitFetch:
    """An attachment of the burst is still on its way: look again once it is in."""


@dataclass(frozen=True, slots=True)
class AwaitCosts:
    """Today's budget may be spent by the calls in flight: look again when one lands,
    or at ``until`` should none."""

    until: float


Effect = Ask | Prepare | Wait | AwaitResume | AwaitFetch | AwaitCosts


@dataclass(frozen=True, slots=True)
class Plan:
    """Events to append, log lines to write once they are in, then at most one effect.
    No events and no effect: the chat has nothing left to decide."""

    events: list[AnyEvent] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    effect: Effect | None = None


def step(facts: Facts, chat: str) -> Plan:
    """The next step of ``chat``'s turn."""
    config = facts.loaded.config
    items = queue.pending(facts.view.queue, chat)
    if not items:
        return Plan()
    first = items[0]
    entity = config.entity_for(chat, first.message.sender_alt, first.message.is_group)
    if entity is None:
        return skips(facts, None, items, "not_monitored")
    orphans = [i for i in items if i.status == "requested"]
    if orphans:
        # Requested before a restart and never answered: ask again,
        # unless the restart came too late for an answer to make sense.
        call = _same_call(orphans)
        if decide.is_stale(config, call[-1], facts.now):
            return skips(facts, entity, call, "stale")
        resumed = loops.resuming(facts.view.loops, chat, call[0].call_id)
        if resumed is not None:
            return again(facts, chat, call, resumed)  # a later round of a tool loop
        return ask(facts, entity, chat, call)
    judged = arrivals(facts, entity, chat, items)
    if judged.events:
        return judged
    resume_at = commands.wait_until(facts.view, config, chat, facts.now)
    if resume_at is not None:
        return Plan(effect=AwaitResume(resume_at))
    run = decide.burst(items)
    due = decide.due_at(config, run)
    if facts.now < due:
        return Plan(effect=Wait(due))
    if decide.fetching(run):
        return Plan(effect=AwaitFetch())
    judging = _judging(facts)
    reason = decide.before_turn(judging, chat)
    if reason is not None:
        return skips(facts, entity, run, reason)
    if decide.budget_held(judging):
        return Plan(effect=AwaitCosts(facts.now + config.polling.interval_seconds))
    ready = attachments.next_step(run) if facts.prepares_media else None
    if ready is not None:
        return prepare(facts, chat, ready)
    return ask(facts, entity, chat, run)


def arrivals(facts: Facts, entity: Entity, chat: str, items: list[Item]) -> Plan:
    """The skips and resets that need no waiting, for every message not yet judged."""
    judging = _judging(facts)
    plan = Plan()
    triggers: dict[str, float] = {}  # sender -> when their newest message here triggered
    for item in items:
        sender = item.message.sender
        if item.status != "pending":
            triggers[sender] = item.ts  # asked already: it triggered
            continue
        reason = decide.on_arrival(judging, entity, item, triggers.get(sender))
        if reason is None:
            triggers[sender] = item.ts
        if reason is not None:
            _skip(plan, facts, entity, item, reason)
        elif decide.is_reset(item):
            plan.events.extend(reset(facts, chat, item))
        elif commands.is_command(entity, item):
            asked = commands.Facts(facts.view, facts.loaded.config, facts.now, facts.ids)
            plan.events.extend(commands.answer(asked, item))
            said = {
                "chat": chat,
                "msg_id": item.message.msg_id,
                "command": commands.logged(item.text),
            }
            plan.lines.append(("owner_command", said))
    return plan


def skips(facts: Facts, entity: Entity | None, items: list[Item], reason: str) -> Plan:
    plan = Plan()
    for item in items:
        _skip(plan, facts, entity, item, reason)
    return plan


def _skip(plan: Plan, facts: Facts, entity: Entity | None, item: Item, reason: str) -> None:
    """Record the skip of ``item``, and log why in words (never its text)."""
    chat, msg_id = item.message.chat, item.message.msg_id
    skipped = MessageSkipped(chat=chat, msg_id=msg_id, reason=reason)
    said = Skip(
        reason=reason,
        at=facts.now,
        sent_at=item.message.sent_at or item.ts,
        took_over_at=facts.view.takeover.paused_since.get(chat),
        media=item.media.kind if item.media is not None else None,
        owner_paused=reason == "paused" and decide.waited_out(_judging(facts), item),
    )
    why = skip_words(said, facts.loaded.config, entity)
    plan.events.append(skipped)
    line = {"chat": chat, "msg_id": msg_id, "reason": reason, "why": why}
    plan.lines.append(("message_skipped", line))


def reset(facts: Facts, chat: str, item: Item) -> list[AnyEvent]:
    """``/reset``: a new session, and the reply that says so (no LLM call)."""
    ids = facts.ids
    user = aliases.canonical(facts.view.aliases, item.message.sender)
    return [
        SessionStarted(chat=chat, session_id=ids.new_id(), user=user, reason="reset"),
        ReplyPlanned(
            chat=chat,
            reply_id=ids.new_id(),
            purpose="reply",
            text=RESET_REPLY,
            in_reply_to=item.message.msg_id,
            trigger_ids=[item.message.msg_id],
            wa_id=ids.new_wa_id(),
        ),
    ]


def prepare(facts: Facts, chat: str, ready: attachments.Step) -> Plan:
    """An attachment that cannot be used is answered at once; the others need work."""
    if ready.need != "notice":
        return Plan(effect=Prepare(ready))
    text = attachments.notice(ready.media)
    replies = attachments.tell(facts.loaded.config, chat, ready.item, text, facts.ids)
    line = {"chat": chat, "msg_id": ready.item.message.msg_id}
    return Plan(events=list(replies), lines=[("media_notice", line)])


def ask(facts: Facts, entity: Entity, chat: str, run: list[Item]) -> Plan:
    """Compose the prompt, record it (and a new session, should the turn start one)."""
    loaded, view, ids = facts.loaded, facts.view, facts.ids
    cfg = loaded.config
    memory = cfg.session_memory
    user = aliases.canonical(view.aliases, run[-1].message.sender)
    forms = aliases.forms(view.aliases, user)
    live = sessions.live(
        view.sessions,
        chat,
        forms,
        facts.now,
        memory.mode,
        memory.ttl_minutes,
        cfg.vitality.timezone,
    )
    last = live if live is not None else sessions.current(view.sessions, chat, forms)
    reason = decide.session_start(live, last, system_text(cfg, entity))
    events: list[AnyEvent] = []
    if live is not None and reason is None:
        session_id, context = live.session_id, sessions.context(live)
    else:
        session_id, context = ids.new_id(), []
        started = SessionStarted(
            chat=chat, session_id=session_id, user=user, reason=reason or "new"
        )
        events.append(started)
    leave = frozenset(i.message.msg_id for i in run)
    heard = group_talk.since_spoke(view.group_talk, chat, leave)
    kept = known_facts.of_chat(view.facts, view.aliases, chat) if cfg.tools.memory else []
    known = aliases.named_by(view.aliases, (i.message for i in run))
    talk, asked = pointed_at(entity, run, group_context(cfg, entity, heard), known)
    turn = user_turn(run, cfg, talk, asked)
    prompt = compose(cfg, entity, context, turn, kept, now=facts.now)
    # Fields this model refused earlier in this process go out as it takes them, recorded so.
    params = facts.learned(prompt.model, prompt.params)
    # A model that refused function calling in this process is offered no tools.
    refused = "tools" in (params.get("refused") or ())
    offered = [] if refused else toolbox.offered(cfg, run[-1].message.is_group)
    prompt = msgspec.structs.replace(prompt, params=params, tools=offered)
    if entity.debug:
        persona, _ = cfg.entity_prompt(entity)
        text = debug_note(entity.name or chat, prompt, persona)
        # It quotes the chat's words: forget takes the note with the chat.
        events.append(owner_note(cfg.owner_jid, "debug", text, ids, quotes_chat=chat))
    request = LlmRequested(
        chat=chat,
        call_id=ids.new_id(),
        session_id=session_id,
        trigger_ids=[i.message.msg_id for i in run],
        model=prompt.model,
        params=prompt.params,
        messages=prompt.messages,
        config_hash=loaded.hash,
        user=user,
        tools=prompt.tools,
    )
    events.append(request)
    return Plan(events=events, effect=asking(facts, chat, request, run))


def again(facts: Facts, chat: str, run: list[Item], request: LlmRequested) -> Plan:
    """Ask a tool loop's next round, or a round cut by a restart, as ``request``
    records it, under a new call id."""
    params = facts.learned(request.model, request.params)
    recorded = msgspec.structs.replace(request, call_id=facts.ids.new_id(), params=params)
    return Plan(events=[recorded], effect=asking(facts, chat, recorded, run))


def asking(facts: Facts, chat: str, request: LlmRequested, run: list[Item]) -> Ask:
    """The call ``request`` records, with "typing…" where the chat can see it."""
    view, cfg = facts.view, facts.loaded.config
    to = addresses.destination(view.addresses, chat, cfg.owner_jid, view.identity.me_lid)
    # "typing…" is sent to the chat too: not to others while the account is restricted.
    held = outreach.hold_until(view, facts.now) is not None
    shown = cfg.whatsapp.typing and not (held and chat != cfg.owner_jid)
    prompt = loop.prompt_of(request)
    return Ask(chat, request.call_id, prompt, run, to, shown, request)


def answered(facts: Facts, asked: Ask, result: LlmResult) -> Plan:
    """What the LLM's answer comes to: the reply's parts, the next round of its
    tool calls, or why none goes out."""
    chat, call_id = asked.chat, asked.call_id
    completed = LlmCompleted(
        chat=chat,
        call_id=call_id,
        content=result.content,
        citations=result.citations,
        usage=result.usage,
        latency_ms=result.latency_ms,
        finish_reason=result.finish_reason,
    )
    if forgotten(facts.view, chat, asked.run):
        # A compaction removed the turn while the model answered: nothing of it is recorded.
        return Plan(lines=[("llm_answer_dropped", {"chat": chat, "call_id": call_id})])
    if revoked(facts.view, chat, asked.run):
        # Deleted while the model was answering: the answer goes nowhere.
        entity = facts.loaded.config.find_entity(chat)
        plan = skips(facts, entity, asked.run, "revoked")
        return Plan(events=[completed, *plan.events], lines=plan.lines)
    if loop.runs_tools(asked.request, result):
        return _called(facts, asked, completed, result)
    whatsapp = facts.loaded.config.whatsapp
    text = format_reply(result.content, result.citations, formatting=whatsapp.formatting)
    if not text.strip():
        error = loop.no_answer(asked.request, result)
        return Plan(
            events=[completed, LlmFailed(chat=chat, call_id=call_id, error=error, final=True)]
        )
    return Plan(events=[completed, *_replies(facts, asked, result, text)])


def _replies(facts: Facts, asked: Ask, result: LlmResult, text: str) -> list[ReplyPlanned]:
    """The answer's parts: spoken first (up to ``_voice.spoken_chars``) where the
    chat's mode says so, the rest as text."""
    config = facts.loaded.config
    last = asked.run[-1].message
    entity = config.entity_for(asked.chat, last.sender_alt, last.is_group)
    plan = voice.speech_plan(config, entity, asked.run) if entity is not None else None
    spoken = None
    if plan is not None:
        words, text = spoken_reply(
            result.content,
            result.citations,
            voice.spoken_chars(config),
            formatting=config.whatsapp.formatting,
        )
        spoken = (words, plan) if words.strip() else None
    return reply_parts(
        asked.chat,
        text,
        asked.run,
        whatsapp=config.whatsapp,
        call_id=asked.call_id,
        new_id=facts.ids.new_id,
        new_wa_id=facts.ids.new_wa_id,
        spoken=spoken,
    )


def _called(facts: Facts, asked: Ask, completed: LlmCompleted, result: LlmResult) -> Plan:
    """A round of tool calls: its record, then the turn's end or its next round."""
    config = facts.loaded.config
    scene = toolbox.Scene(facts.view, asked.chat, facts.now, config)
    done = loop.called(scene, asked.request, completed, result, config.tools.max_rounds)
    if done.next is None:
        return Plan(events=done.events, lines=done.lines)
    following = again(facts, asked.chat, asked.run, done.next)
    return Plan(events=[*done.events, *following.events], lines=done.lines, effect=following.effect)


def forgotten(view: States, chat: str, run: list[Item]) -> bool:
    """No message of the turn is waiting for its answer any more: a compaction
    (``forget``, a rotation, expiry) removed them, and the call's request with them,
    while the call was out. The queue is what a call answers (``revoked`` reads it,
    ``step`` asks its requested messages again after a restart), so it says whether
    the call is still wanted; the budget's calls in flight are one per chat, and a
    revoke ends a session's pending call while its answer is still recorded."""
    still = {i.message.msg_id for i in queue.pending(view.queue, chat)}
    return not any(i.message.msg_id in still for i in run)


def revoked(view: States, chat: str, run: list[Item]) -> bool:
    """Every message of the turn still waiting for its answer was deleted by its sender."""
    still = {i.message.msg_id: i for i in queue.pending(view.queue, chat)}
    asked = [still[i.message.msg_id] for i in run if i.message.msg_id in still]
    return bool(asked) and all(i.revoked for i in asked)


def _judging(facts: Facts) -> decide.View:
    """What ``_decide``'s judgements read."""
    view, config = facts.view, facts.loaded.config
    owner = identity.owner_forms(view.identity, config.owner_jid)
    return decide.View(
        config,
        view.own_sends,
        view.takeover,
        view.budget,
        facts.now,
        owner,
        facts.reserving,
        view.pauses,
        view.sessions,
        view.aliases,
    )


def _same_call(items: list[Item]) -> list[Item]:
    first = items[0].call_id
    return [i for i in items if i.call_id == first]
