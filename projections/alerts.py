"""What the owner must hear of, out of band: alerts owed and not yet given.

An alert is owed once per episode: when WhatsApp logs the bot out, replaces,
bans it or finds it outdated (each time the connection falls into that
state), when the daily budget stops a turn (once until a call goes out
again), and when the LLM has failed ``alerts.llm_failures`` turns in a row or
refused a turn in a way no retry mends (once until it answers again). Voice
notes that cannot be transcribed are counted the same way, apart: a revoked
transcription key leaves the chat model answering, so only a transcript ends
that episode. WhatsApp restricting the account (``AccountRestricted``) is owed
once until a restriction that is not ``active`` ends the episode (so another
463 in the same episode alerts no more). An ``OwnerAlerted`` settles it.

A webhook that did not take an alert (``ok`` false with an ``error``) is
tried again (``retries``): after 1, 5, 15, 30 minutes, then every hour, until
it takes it, the episode ends, or ``RETRY_FOR`` (a day) has passed since the
first failure. Each try is one more ``OwnerAlerted``; the owner's own chat,
which got the alert with the first, hears nothing more of it.

A connection that stays down is owed by the clock, not by an event
(``connection_down``): once it has been down (``connecting``/``disconnected``)
for ``alerts.connection_down_minutes``, or at once when WhatsApp refused the
connection with a reason whatsmeow does not retry (a ``disconnected`` status
with a ``code``); a ``connected`` ends that episode. A stop, a pairing, or a
state with its own alert (a ban, a logout) is no outage of its own. The
time it went down is a time, not a fact of an event: a compaction leaves it.

``undelivered`` is owed by the clock, not by an event (see ``undelivered``):
a message the bot sent that no phone confirmed within
``alerts.undelivered_minutes`` of connected time. Its episode ends with the
next receipt of a phone (delivered, read, played) after the alert; messages
sent before that receipt never open another one, so a contact whose phone
stays off, or a whole outage, is told once.

A ``Compacted`` drops the alerts owed or settled by events that went, and
the failures that went from the current runs of failures. What a removed
event ended stays ended: a compaction that removed the answer which ended an
earlier run does not join the runs again, nor does one that removed an
alert's settlement owe that alert again (a fold of what is left would, and
alert the owner twice for one episode). So this state is the one projection
that a fold of the compacted log may not reproduce; it only ever holds
episodes whose causes are still in the log.
"""

from __future__ import annotations

import msgspec

from events.model import (
    AccountRestricted,
    AlertKind,
    Compacted,
    ConfigLoaded,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MediaTranscribed,
    MessageSkipped,
    OwnerAlerted,
    Recorded,
    ReplyDelivered,
    TranscriptionFailed,
    TransportStatus,
)
from events.units import DAY, HOUR, MINUTE
from projections import deliveries
from projections.base import Handlers, Origin, Projection, origin, removal

DEFAULT_LLM_FAILURES = 3
_CONNECTION: dict[str, AlertKind] = {
    "logged_out": "logged_out",
    "replaced": "replaced",
    "outdated": "outdated",
    "banned": "banned",
}
# Client errors the LLM client retries: the rest of 4xx fail every turn until the
# owner acts (a key, an endpoint, a setting the model refuses, credit, a model name).
_TRANSIENT_4XX = frozenset({408, 409, 429})
# The connection is being tried and is not up: an outage, if it lasts.
_DOWN = frozenset({"connecting", "disconnected"})
# Alerts whose detail is an API's error about one chat's turn.
_QUOTING: frozenset[AlertKind] = frozenset({"llm_failing", "transcription_failing"})
# After each failed delivery to the webhook, the wait before the next (the last repeats),
# and for how long after the first failure it is tried at all.
RETRY_DELAYS = (MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR)
RETRY_FOR = DAY


class Retry(msgspec.Struct, kw_only=True):
    """An alert the webhook did not take: what it said, and how its tries went."""

    detail: str
    quotes_chat: str | None = None
    first: float  # the first failed delivery (log time)
    last: float  # the newest
    failures: int  # deliveries failed so far


class State(msgspec.Struct, kw_only=True):
    owed: dict[AlertKind, str] = {}  # kind -> what happened, in one line
    settled: list[AlertKind] = []  # kinds alerted in the current episode
    failures: int = 0  # final LLM failures in a row
    unheard: int = 0  # final transcription failures in a row
    threshold: int = DEFAULT_LLM_FAILURES
    # Where each owed alert, each settlement and each failure of the runs came from.
    owed_from: dict[AlertKind, Origin] = {}
    settled_from: dict[AlertKind, Origin] = {}
    failing: list[Origin] = []
    unheard_from: list[Origin] = []
    # Messages sent at or before this time (unix seconds) open no ``undelivered`` episode.
    undelivered_after: float = 0.0
    down_since: float | None = None  # the connection is down since then (log time)
    down_detail: str = ""  # what the newest status of the outage said
    retrying: dict[AlertKind, Retry] = {}  # alerts the webhook did not take yet


def _owe(state: State, rec: Recorded, kind: AlertKind, detail: str) -> None:
    if kind not in state.settled:
        state.owed[kind] = detail
        state.owed_from[kind] = origin(rec)


def _episode_over(state: State, kind: AlertKind) -> None:
    if state.owed.pop(kind, None) is not None:
        del state.owed_from[kind]
    if kind in state.settled:
        _unsettle(state, kind)
    state.retrying.pop(kind, None)


def _unsettle(state: State, kind: AlertKind) -> None:
    """The alert of ``kind`` is no longer settled, nor tried again at the webhook."""
    state.settled.remove(kind)
    del state.settled_from[kind]
    state.retrying.pop(kind, None)


def _config(state: State, rec: Recorded, ev: ConfigLoaded) -> None:
    alerts = ev.config.get("alerts") or {}
    state.threshold = int(alerts.get("llm_failures", DEFAULT_LLM_FAILURES))


def _status(state: State, rec: Recorded, ev: TransportStatus) -> None:
    kind = _CONNECTION.get(ev.state)
    if kind is not None:
        _owe(state, rec, kind, ev.detail or ev.state)
    elif ev.state == "connected":
        for lost in (*_CONNECTION.values(), "connection_down"):
            _episode_over(state, lost)
    if ev.state not in _DOWN:
        state.down_since, state.down_detail = None, ""
        return
    if state.down_since is None:
        state.down_since = rec.ts
    state.down_detail = f"{ev.state}: {ev.detail}" if ev.detail else ev.state
    if ev.code is not None and ev.state == "disconnected":
        # Refused with a reason whatsmeow does not retry: it is not going to mend itself.
        _owe(state, rec, "connection_down", f"WhatsApp refused the connection ({ev.detail})")


def _restricted(state: State, rec: Recorded, ev: AccountRestricted) -> None:
    if ev.active:
        code = f"error {ev.code}" if ev.code is not None else "WhatsApp gave no reason"
        _owe(state, rec, "restricted", ev.detail or code)
    else:
        _episode_over(state, "restricted")


def _skipped(state: State, rec: Recorded, ev: MessageSkipped) -> None:
    if ev.reason == "budget":
        _owe(state, rec, "budget", "the daily budget is spent; no replies until it resets")


def _requested(state: State, rec: Recorded, ev: LlmRequested) -> None:
    if state.owed or state.settled:  # else nothing to end (the common case: skip the call)
        _episode_over(state, "budget")  # a call went out: there was budget again


def _failed(state: State, rec: Recorded, ev: LlmFailed) -> None:
    if ev.final:
        state.failures += 1
        state.failing.append(origin(rec))
        _failing(state, rec, "llm_failing", ev, state.failures, "LLM turns in a row failed")


def _not_transcribed(state: State, rec: Recorded, ev: TranscriptionFailed) -> None:
    if ev.final:
        state.unheard += 1
        state.unheard_from.append(origin(rec))
        what = "voice notes in a row could not be transcribed"
        _failing(state, rec, "transcription_failing", ev, state.unheard, what)


def _failing(  # noqa: PLR0917 - the failure, its kind and how it is told
    state: State,
    rec: Recorded,
    kind: AlertKind,
    ev: LlmFailed | TranscriptionFailed,
    count: int,
    what: str,
) -> None:
    """Owed at once for a refusal no retry mends, else after ``threshold`` in a row."""
    if _needs_owner(ev.status):
        _owe(state, rec, kind, ev.error)
    elif count >= state.threshold:
        _owe(state, rec, kind, f"{count} {what}: {ev.error}")


def _needs_owner(status: int | None) -> bool:
    return status is not None and 400 <= status < 500 and status not in _TRANSIENT_4XX


def _completed(state: State, rec: Recorded, ev: LlmCompleted) -> None:
    # Most answers end nothing: no run of failures, no alert. Skip the writes then.
    if state.failures or state.failing:
        state.failures = 0
        state.failing = []
    if state.owed or state.settled:
        _episode_over(state, "llm_failing")


def _transcribed(state: State, rec: Recorded, ev: MediaTranscribed) -> None:
    state.unheard = 0
    state.unheard_from = []
    _episode_over(state, "transcription_failing")


def _receipt(state: State, rec: Recorded, ev: ReplyDelivered) -> None:
    if ev.state in deliveries.ARRIVED and "undelivered" in state.settled:
        _episode_over(state, "undelivered")  # a phone confirms again
        state.undelivered_after = rec.ts


def _alerted(state: State, rec: Recorded, ev: OwnerAlerted) -> None:
    state.owed.pop(ev.kind, None)
    state.owed_from.pop(ev.kind, None)
    if ev.kind not in state.settled:
        state.settled.append(ev.kind)
    state.settled_from[ev.kind] = origin(rec)
    if ev.ok or not ev.error:  # taken, or no webhook to try again
        state.retrying.pop(ev.kind, None)
        return
    was = state.retrying.get(ev.kind)
    state.retrying[ev.kind] = Retry(
        detail=ev.detail,
        quotes_chat=ev.quotes_chat,
        first=rec.ts if was is None else was.first,
        last=rec.ts,
        failures=1 if was is None else was.failures + 1,
    )


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    for kind, cause in list(state.owed_from.items()):
        if gone.gone(*cause):
            del state.owed[kind], state.owed_from[kind]
    for kind, cause in list(state.settled_from.items()):
        if gone.gone(*cause):
            _unsettle(state, kind)
            if kind == "undelivered":  # what it was given for stays told
                state.undelivered_after = max(state.undelivered_after, cause[1])
    state.failing = [cause for cause in state.failing if not gone.gone(*cause)]
    state.failures = len(state.failing)
    state.unheard_from = [cause for cause in state.unheard_from if not gone.gone(*cause)]
    state.unheard = len(state.unheard_from)


def owed(state: State) -> dict[AlertKind, str]:
    """Alerts owed, by kind, in the order they fell due."""
    return dict(state.owed)


def retries(state: State) -> dict[AlertKind, float]:
    """When each alert the webhook did not take is to be tried again; one given up on
    (``RETRY_FOR`` after its first failure) is not listed."""
    due: dict[AlertKind, float] = {}
    for kind, retry in state.retrying.items():
        at = retry.last + RETRY_DELAYS[min(retry.failures, len(RETRY_DELAYS)) - 1]
        if at <= retry.first + RETRY_FOR:
            due[kind] = at
    return due


def retrying(state: State, kind: AlertKind) -> Retry | None:
    """What the alert of ``kind`` the webhook did not take said (None: none such)."""
    return state.retrying.get(kind)


def undelivered(  # noqa: PLR0917 - the clock, the setting and the connection travel apart
    state: State,
    sent: deliveries.State,
    now: float,
    minutes: float,
    owner: str,
    up_since: float | None,
) -> str | None:
    """What the ``undelivered`` alert says, when one is owed at ``now``; else None.

    ``up_since``: since when the connection is up (None: it is down). While it
    is down no receipt can arrive, and once it is back the ones WhatsApp kept
    meanwhile come first: a message counts as late only ``minutes`` after
    both its send and the reconnect. The owner's own chat does not count: the
    notes sent there (this alert among them) are confirmed by the owner's
    phone differently, if at all.
    """
    if "undelivered" in state.settled or up_since is None or up_since + minutes * 60 > now:
        return None
    late = deliveries.late(sent, now, minutes * 60, after=state.undelivered_after, skip=owner)
    if late is None:
        return None
    waited = (now - late.oldest.ts) / 60
    more = f" ({late.number} messages in all)" if late.number > 1 else ""
    return (
        f"a message sent to {late.oldest.chat} {waited:.0f} min ago has not reached "
        f"the recipient's phone{more}"
    )


def down_due_at(state: State, minutes: float) -> float | None:
    """When the connection, down now, has been down ``minutes``; None: not down, or
    its alert is owed or given already."""
    if state.down_since is None or "connection_down" in (*state.owed, *state.settled):
        return None
    return state.down_since + minutes * 60


def connection_down(state: State, now: float, minutes: float) -> str | None:
    """What to tell the owner if the connection has been down ``minutes`` by ``now``."""
    due = down_due_at(state, minutes)
    if due is None or now < due:
        return None
    minutes_down = (now - due) / 60 + minutes
    return f"no connection to WhatsApp for {minutes_down:.0f} min ({state.down_detail})"


def quoted_chat(state: State, kind: AlertKind) -> str | None:
    """The chat whose failure an owed alert's detail quotes (an API's error, which may
    echo the user's text); None when the detail is the bot's own words."""
    cause = state.owed_from.get(kind)
    if cause is None or kind not in _QUOTING:
        return None
    return cause[2] or None


_HANDLERS: Handlers[State] = {
    ConfigLoaded: _config,
    TransportStatus: _status,
    AccountRestricted: _restricted,
    MessageSkipped: _skipped,
    LlmRequested: _requested,
    LlmFailed: _failed,
    LlmCompleted: _completed,
    TranscriptionFailed: _not_transcribed,
    MediaTranscribed: _transcribed,
    ReplyDelivered: _receipt,
    OwnerAlerted: _alerted,
    Compacted: _compacted,
}
PROJECTION = Projection.of("alerts", State, _HANDLERS)
apply = PROJECTION.apply
