"""The agent's judgements as pure functions of config, projections and the clock.

Each returns a skip reason (the ``MessageSkipped.reason`` recorded) or None
when the message goes on towards an answer. Keeping them pure lets the tests
cover every rule without a daemon, and keeps the agent to orchestration.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from events.jid import InvalidJid, normalize, user_part
from events.model import StartReason
from pipeline.config import AppConfig, Entity, GroupEntity, SelfEntity
from pipeline.daemon._attachments import answerable
from pipeline.llm import same_system
from projections import aliases, budget, own_sends, pauses, sessions, takeover
from projections.queue import Item

RESET_COMMAND = "/reset"
_LEADING_MENTIONS = re.compile(r"(?:@\S+\s+)+")


@dataclass(frozen=True, slots=True)
class View:
    """What the judgements read: config in force, projection states and now."""

    config: AppConfig
    own_sends: own_sends.State
    takeover: takeover.State
    budget: budget.State
    now: float
    owner: frozenset[str] = frozenset()  # every id of the owner (phone JID, LID)
    reserving: frozenset[str] = frozenset()  # chats whose call may not be in the log yet
    pauses: pauses.State = field(default_factory=pauses.State)  # the owner's /pause
    sessions: sessions.State = field(default_factory=sessions.State)  # the last exchanges
    aliases: aliases.State = field(default_factory=aliases.State)  # a person's ids


def on_arrival(view: View, entity: Entity, item: Item, heard_at: float | None = None) -> str | None:
    """Rules that hold for one message whatever else is queued; ``heard_at``: when an
    earlier queued message of the same sender triggered the bot (a group's window)."""
    if item.revoked:
        return "revoked"
    match = own_sends.match(view.own_sends, item.message.chat, item.message.msg_id, item.text)
    if match == "id" or (match == "text" and item.message.from_me):
        return "echo"
    if item.message.from_me and not isinstance(entity, SelfEntity):
        # The owner wrote in someone else's chat: a human has taken over.
        return "takeover" if view.config.takeover.enabled else "own_message"
    if is_stale(view.config, item, view.now):
        return "paused" if waited_out(view, item) else "stale"
    if not item.text.strip() and not answerable(item.media):
        return "empty"
    group = entity if isinstance(entity, GroupEntity) else None
    if group is not None and not is_reset(item) and not triggered(view, group, item, heard_at):
        return "not_triggered"
    return None


def is_stale(config: AppConfig, item: Item, now: float) -> bool:
    """Too old to answer: sent more than ``catch_up_minutes`` ago (e.g. while offline)."""
    return now - (item.message.sent_at or item.ts) > config.polling.catch_up_minutes * 60


def waited_out(view: View, item: Item) -> bool:
    """Fresh when it arrived, but the owner's ``/pause`` held it until it was too old."""
    arrived_fresh = not is_stale(view.config, item, item.ts)
    return arrived_fresh and pauses.covered(view.pauses, item.message.chat, item.ts)


def is_reset(item: Item) -> bool:
    """``/reset``, alone or after mentions (``@bot /reset`` in a group): it triggers in
    any group, and starts a new session for its sender only."""
    text = _LEADING_MENTIONS.sub("", item.text.strip(), count=1)
    return text.casefold() == RESET_COMMAND


def before_turn(view: View, chat: str) -> str | None:
    """Rules checked when a debounced burst is about to go to the LLM."""
    cfg = view.config
    if cfg.takeover.enabled:
        until = takeover.paused_until(view.takeover, chat, cfg.takeover.minutes)
        if until is not None and view.now < until:
            return "paused"
    if (
        budget.replies_last_hour(view.budget, chat, view.now)
        >= cfg.limits.replies_per_chat_per_hour
    ):
        return "rate_limited"
    if budget.spent_since(view.budget, cfg.local_midnight(view.now)) >= cfg.limits.daily_budget_usd:
        return "budget"
    return None


def session_start(
    live: sessions.Session | None, last: sessions.Session | None, system: str
) -> StartReason | None:
    """Why a turn starts a new session; None: it continues ``live``.

    ``live`` is the chat's session still in force for the sender (by
    ``session_memory``), ``last`` the newest one whatever its age, ``system``
    the system prompt the turn goes out with. A session answered under another
    persona or prompt (a hot reload) is not continued.
    """
    if live is not None:
        return None if not live.system or same_system(live.system, system) else "config_changed"
    return "new" if last is None else "expired"


def budget_held(view: View) -> bool:
    """Today's spend and the calls in flight may use up the budget: wait for their costs.

    Checked after ``before_turn``, so the spend alone is under the budget; a
    call goes out only while a reserve for every call in flight still fits,
    which keeps the day's spend within one call of the budget however many
    chats are answered at once.
    """
    cfg = view.config
    since = cfg.local_midnight(view.now)
    return budget.committed(view.budget, since, view.reserving) >= cfg.limits.daily_budget_usd


def triggered(view: View, group: GroupEntity, item: Item, heard_at: float | None = None) -> bool:
    """Whether a group message is for the bot: always; a keyword; in a ``mention``
    group a mention of the owner or (``reply_to_bot_is_mention``) a quote of the
    bot's message; or, within ``listen_after_mention_seconds`` of the bot's last
    exchange with the sender (or of ``heard_at``), any message of theirs, those
    sent while the bot was still answering them included. A message
    within ``debounce_seconds`` of ``heard_at`` (an earlier message of the sender's
    that triggered) joins that burst whatever the window: "@bot", then the question."""
    mode = group.trigger.mode
    if mode == "always" or group.trigger.matched(item.text) is not None:
        return True
    settings = view.config.group_settings(group)
    if mode == "mention" and (
        _mentions_owner(view.owner | {view.config.owner_jid}, item)
        or (settings.reply_to_bot_is_mention and _quotes_the_bot(view, item))
    ):
        return True
    window = settings.listen_after_mention_seconds
    joins = max(window, view.config.polling.debounce_seconds)
    if heard_at is not None and item.ts - heard_at <= joins:
        return True
    if window <= 0:
        return False
    # Not yet judged, yet older than the exchange: it came while the bot was asking
    # for the sender (their call in flight), so after they asked; it is heard too.
    talked = last_exchange(view, item)
    return talked is not None and item.ts - talked <= window


def _quotes_the_bot(view: View, item: Item) -> bool:
    """It quotes one of the bot's recent messages in the chat (``own_sends`` keeps them)."""
    quoted = item.message.quoted
    chat = item.message.chat
    return quoted is not None and own_sends.match(view.own_sends, chat, quoted.id, "") == "id"


def last_exchange(view: View, item: Item) -> float | None:
    """When the bot last asked or answered for the sender in this chat (their session)."""
    forms = aliases.forms(view.aliases, aliases.canonical(view.aliases, item.message.sender))
    session = sessions.current(view.sessions, item.message.chat, forms)
    return session.last_activity if session is not None else None


def _mentions_owner(owner: frozenset[str], item: Item) -> bool:
    """Mentioned by any of the owner's ids: in LID groups the mention is ``@<lid digits>``."""
    for jid in item.message.mentions:
        try:
            if normalize(jid) in owner:
                return True
        except InvalidJid:
            continue
    return any(re.search(rf"@{re.escape(user_part(form))}(?!\d)", item.text) for form in owner)


def burst(items: Sequence[Item]) -> list[Item]:
    """The messages answered together: the leading run from one sender."""
    if not items:
        return []
    first = items[0].message.sender
    run: list[Item] = []
    for item in items:
        if item.message.sender != first:
            break
        run.append(item)
    return run


def fetching(run: Sequence[Item]) -> bool:
    """An attachment of the burst is still being fetched: its turn waits for it
    (``MediaFetched`` ends the wait, whether the bytes came or not)."""
    return any(item.media is not None and item.media.fetching for item in run)


def due_at(config: AppConfig, run: Sequence[Item]) -> float:
    """When a burst is complete: ``debounce_seconds`` after its last message arrived."""
    return max(item.ts for item in run) + config.polling.debounce_seconds
