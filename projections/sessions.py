"""Per (chat, user) the live conversation: its turns, activity times and id.

Expiry is not folded in: it depends on the clock and the configured mode, so
callers ask ``live(..., now, mode, ...)`` and start a new session when it is None.

A ``Compacted`` ends the sessions whose ``SessionStarted`` went (with their
calls in flight) and drops the calls whose request went: the chat starts
afresh, as a fold of what is left would have it. A surviving session loses
the turns whose request went, and when its latest request went, the system
text and the activity that request brought: an expiry removes every request
of a session it ends but keeps its start, so its words leave the state with
the log's, and the session is what a fold of what is left makes of it (its
start, no context; a rotation or a forget removes a session's events
together with its start). Requests made before ``tracking`` was turned on
stay (expiry never names them) until the retention: a fold of what is left
would rebuild a context from them, this keeps only the turns still there.

Each session also knows the events that carry its words (``Texts``): the
messages an LLM call took (with their edits, the attachments fetched after
them, so the files go too, transcripts and documents read), the requests
(with their failed attempts, whose error may echo them), the answers and the
replies planned from them (a voice reply with its speech or its failures to
be spoken, so the audio file goes too: ``speaking`` follows it from its
planning until it is spoken, given up or sent), so
``rotation.drop_expired_sessions`` can remove an ended session's text by seq
(``expired_texts``) without reading the log back. A message is followed from
its receipt until a call takes it or it is skipped; a turn's tool calls, their
results and a reply withheld are its words too (``looping`` follows a tool
loop's rounds to their session); a session replaced by a
newer one of its (chat, user) is kept as ``ended`` until its texts are gone.
That costs one int per such event for as long as the event is kept, so it is
done only while the config in force asks for it (``tracking``): turned on, it
follows the sessions' events from then on (earlier ones go with the
retention); turned off, what was followed is let go.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from events.model import (
    ChatTurn,
    Compacted,
    ConfigLoaded,
    DocumentRead,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MediaFetched,
    MediaTranscribed,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageSkipped,
    Recorded,
    ReplyFailed,
    ReplyPlanned,
    ReplySent,
    ReplyWithheld,
    SessionStarted,
    SpeechFailed,
    SpeechSynthesized,
    ToolCalled,
    ToolFinished,
)
from events.protocol import Removal
from projections.base import Handlers, Origin, Projection, origin, removal
from projections.session_texts import Texts, prune, went

DEFAULT_MAX_MESSAGES = 10
Reason = Literal["new", "expired", "config_changed", "reset"]


class Utterance(msgspec.Struct, frozen=True, gc=False):
    """One side of an exchange in a session's context."""

    role: Literal["user", "assistant"]
    content: str
    at: float
    msg_ids: tuple[str, ...] = ()  # the messages a user utterance is made of
    asked: int = 0  # seq of the LlmRequested of the call it came from


class Session(msgspec.Struct, kw_only=True, gc=False):
    session_id: str
    chat: str
    user: str
    started_at: float
    last_activity: float
    reason: Reason
    turns: list[Utterance] = []
    system: str = ""  # the system text of the session's latest request
    asked: int = 0  # seq of the session's latest request (0: none, or it went)
    seq: int = 0  # of its SessionStarted
    texts: Texts = msgspec.field(default_factory=Texts)


class PendingCall(msgspec.Struct, frozen=True, gc=False):
    """An LLM call in flight: the session it belongs to and its user turn."""

    session_id: str
    text: str
    msg_ids: tuple[str, ...] = ()
    origin: Origin = (0, 0.0, "")  # of its LlmRequested


class State(msgspec.Struct, kw_only=True):
    sessions: dict[str, Session] = {}
    current: dict[str, str] = {}  # f"{chat}|{user}" -> session_id
    pending: dict[str, PendingCall] = {}  # call_id -> call
    max_messages: int = DEFAULT_MAX_MESSAGES
    tracking: bool = False  # rotation.drop_expired_sessions: follow the events of each session
    # f"{chat}|{msg_id}" -> seq of a message no call took yet (every message passes here:
    # one int, its edits, documents and transcripts in ``attached`` only when they come).
    waiting: dict[str, int] = {}
    attached: dict[str, Texts] = {}
    ended: dict[str, Texts] = {}  # session_id -> texts of a session a newer one replaced
    replying: dict[str, str] = {}  # call_id -> session_id ("": orphans), answer to reply
    orphans: list[Origin] = []  # answers and replies whose request went (an ended session)
    looping: dict[str, str] = {}  # call_id of a tool round -> session_id, while tracking
    # reply_id of a voice reply -> session_id ("": orphans), until it is spoken or given up
    speaking: dict[str, str] = {}


def _key(chat: str, user: str) -> str:
    return f"{chat}|{user}"


def _config(state: State, rec: Recorded, ev: ConfigLoaded) -> None:
    memory = ev.config.get("session_memory") or {}
    state.max_messages = int(memory.get("max_messages", DEFAULT_MAX_MESSAGES))
    rotation = ev.config.get("rotation") or {}
    state.tracking = bool(rotation.get("drop_expired_sessions", False))
    if not state.tracking:
        _let_go(state)


def _let_go(state: State) -> None:
    """Drop what ``tracking`` followed: nothing will ask for it."""
    for followed in (
        state.waiting,
        state.attached,
        state.ended,
        state.replying,
        state.looping,
        state.speaking,
    ):
        followed.clear()
    state.orphans.clear()
    for session in state.sessions.values():
        if session.texts.words or session.texts.counted:
            session.texts = Texts()


def _last_active(session: Session) -> float:
    """When the session was last active: ``texts.last`` keeps it should its requests
    have gone since (an expiry lowers ``last_activity`` to what is left)."""
    return max(session.last_activity, session.texts.last)


def _started(state: State, rec: Recorded, ev: SessionStarted) -> None:
    key = _key(ev.chat, ev.user)
    old = state.current.get(key)
    if old is not None and old != ev.session_id:
        # Only the current session of a key is ever used again: forget the old one.
        ended = state.sessions.pop(old, None)
        if state.tracking and ended is not None and (ended.texts.words or ended.texts.counted):
            ended.texts.last = _last_active(ended)
            ended.texts.chat = ended.chat
            state.ended[old] = ended.texts
        if state.pending:  # mostly empty: skip building the comprehension
            for call_id in [c for c, call in state.pending.items() if call.session_id == old]:
                del state.pending[call_id]
    state.current[key] = ev.session_id
    state.sessions[ev.session_id] = Session(
        session_id=ev.session_id,
        chat=ev.chat,
        user=ev.user,
        started_at=rec.ts,
        last_activity=rec.ts,
        reason=ev.reason,
        seq=rec.seq,
    )


def _requested(state: State, rec: Recorded, ev: LlmRequested) -> None:
    session = state.sessions.get(ev.session_id)
    if session is None:
        return
    if ev.rounds:
        _loop_done(state, ev.session_id)  # the round's calls and results are in by now
    messages = ev.messages
    text = messages[-1].content if messages else ""
    at = (rec.seq, rec.ts, ev.chat)  # origin(rec), without the call
    state.pending[ev.call_id] = PendingCall(ev.session_id, text, tuple(ev.trigger_ids), at)
    session.last_activity = rec.ts
    session.asked = rec.seq
    if messages and messages[0].role == "system":
        session.system = messages[0].content
    if not state.tracking:
        return
    texts = session.texts
    words = texts.words
    words.append(rec.seq)
    waiting, attached, chat = state.waiting, state.attached, ev.chat
    for msg_id in ev.trigger_ids:
        key = f"{chat}|{msg_id}"
        seq = waiting.pop(key, None)
        if seq is not None:
            words.append(seq)
        if attached and key in attached:
            texts.take(attached.pop(key))


def _completed(state: State, rec: Recorded, ev: LlmCompleted) -> None:
    call = state.pending.pop(ev.call_id, None)
    session = state.sessions.get(call.session_id) if call is not None else None
    if ev.tool_calls:
        # A round of the tool loop: the context gets the turn's final answer only.
        if state.tracking and call is not None and session is not None:
            session.texts.counted.append(rec.seq)
            state.looping[ev.call_id] = call.session_id
        return
    _loop_done(state, call.session_id if call is not None else None)
    if call is None or session is None:
        # Its request went with an ended session (or the session was replaced).
        if state.tracking:
            _orphan(state, rec)
            state.replying[ev.call_id] = ""
        return
    if state.tracking:
        session.texts.counted.append(rec.seq)
        state.replying[ev.call_id] = call.session_id
    turns = session.turns
    asked = call.origin[0]
    turns.append(Utterance("user", call.text, rec.ts, call.msg_ids, asked))
    if ev.content.strip():
        # No text (the turn then failed, so nothing was sent): the next request must
        # not carry an empty assistant turn, which an API may refuse.
        turns.append(Utterance("assistant", ev.content, rec.ts, asked=asked))
    size = len(turns)
    if size > state.max_messages:
        # Keep at most max_messages; Perplexity needs the context to open with a user turn.
        cut = size - state.max_messages
        while cut < size and turns[cut].role != "user":
            cut += 1
        del turns[:cut]
    session.last_activity = rec.ts


def _file(state: State, rec: Recorded, session_id: str, *, counted: bool) -> None:
    """File ``rec`` with the texts of session ``session_id``, live or ended (``counted``:
    with those the budget still counts), else as an orphan, its session gone."""
    session = state.sessions.get(session_id)
    texts = session.texts if session is not None else state.ended.get(session_id)
    if texts is None:
        _orphan(state, rec)
    elif counted:
        texts.counted.append(rec.seq)
    else:
        texts.words.append(rec.seq)


def _tool_text(state: State, rec: Recorded, ev: ToolCalled | ToolFinished | ReplyWithheld) -> None:
    """A tool call's words (its arguments, its result, a reason for silence) go with
    its session's, while ``tracking``."""
    session_id = state.looping.get(ev.call_id)
    if session_id is None:
        return
    _file(state, rec, session_id, counted=False)
    if isinstance(ev, ReplyWithheld):
        _loop_done(state, session_id)


def _loop_done(state: State, session_id: str | None) -> None:
    """The session's tool loop went on to another round or ended: let go of its rounds."""
    if state.looping and session_id is not None:
        state.looping = {c: s for c, s in state.looping.items() if s != session_id}


def _failed(state: State, rec: Recorded, ev: LlmFailed) -> None:
    """A failed attempt's error may quote the API's words, which may echo the request:
    it goes with the request, while ``tracking``."""
    call = state.pending.pop(ev.call_id, None) if ev.final else state.pending.get(ev.call_id)
    if state.tracking and call is not None:  # a pending call's session is a live one
        _file(state, rec, call.session_id, counted=False)


def _revoked(state: State, rec: Recorded, ev: MessageRevoked) -> None:
    """A deleted message leaves the context, with the answer it got or will get."""
    for call_id in [c for c, call in state.pending.items() if ev.msg_id in call.msg_ids]:
        del state.pending[call_id]
    for session in state.sessions.values():
        if session.chat != ev.chat:
            continue
        turns = session.turns
        for i, turn in enumerate(turns):
            if turn.role == "user" and ev.msg_id in turn.msg_ids:
                end = i + 2 if i + 1 < len(turns) and turns[i + 1].role == "assistant" else i + 1
                del turns[i:end]
                return


def _received(state: State, rec: Recorded, ev: MessageReceived) -> None:
    if state.tracking:
        state.waiting[f"{ev.chat}|{ev.msg_id}"] = rec.seq


def _more(state: State, rec: Recorded, ev: MessageEdited | MediaFetched | DocumentRead) -> None:
    """An edit, an attachment fetched after its message (the agent waits for it) or a
    document's text joins its message while no call has taken it."""
    key = _key(ev.chat, ev.msg_id)
    if key in state.waiting:
        state.attached.setdefault(key, Texts(chat=ev.chat)).add(rec)


def _transcribed(state: State, rec: Recorded, ev: MediaTranscribed) -> None:
    key = _key(ev.chat, ev.msg_id)
    if key in state.waiting:
        state.attached.setdefault(key, Texts(chat=ev.chat)).add(rec, counted=True)


def _skipped(state: State, rec: Recorded, ev: MessageSkipped) -> None:
    key = f"{ev.chat}|{ev.msg_id}"
    if state.waiting.pop(key, None) is not None and state.attached:
        state.attached.pop(key, None)


def _planned(state: State, rec: Recorded, ev: ReplyPlanned) -> None:
    call_id = ev.call_id
    session_id = state.replying.get(call_id) if call_id is not None else None
    if call_id is None or session_id is None:
        return
    _file(state, rec, session_id, counted=True)
    if ev.speech is not None:
        state.speaking[ev.reply_id] = session_id  # its audio (or why not) comes later
    if ev.closes_answer:
        del state.replying[call_id]


def _spoken(state: State, rec: Recorded, ev: SpeechSynthesized | SpeechFailed) -> None:
    """A voice reply's speech (the audio file of its words) or a failure to make it
    (whose error may quote them) goes with the reply: counted, as the speech's cost is."""
    speaking = state.speaking
    if not speaking:
        return
    final = not isinstance(ev, SpeechFailed) or ev.final
    session_id = speaking.pop(ev.reply_id, None) if final else speaking.get(ev.reply_id)
    if session_id is None:
        return
    _file(state, rec, session_id, counted=True)


def _unspoken(state: State, rec: Recorded, ev: ReplySent | ReplyFailed) -> None:
    """A reply sent, or given up, is spoken no more: let go of it."""
    if state.speaking and (isinstance(ev, ReplySent) or ev.final):
        state.speaking.pop(ev.reply_id, None)


def expired_texts(  # noqa: PLR0917 - the shape of ``live``: clock and session config last
    state: State, now: float, mode: str, ttl_minutes: float, tz: str, counted_before: float
) -> frozenset[int]:
    """The seqs of the words of every session that ended or expired at ``now``, and
    of their answers, replies and transcripts once the session was last active
    before ``counted_before``."""
    found: set[int] = set()
    done = [(t, t.last) for t in state.ended.values()]
    for session in state.sessions.values():
        end = expires_at(session, mode, ttl_minutes, tz)
        if end is not None and now >= end:
            done.append((session.texts, _last_active(session)))
    for texts, last in done:
        found.update(texts.words)
        if last < counted_before:
            found.update(texts.counted)
    found.update(seq for seq, ts, _ in state.orphans if ts < counted_before)
    return frozenset(found)


def _orphan(state: State, rec: Recorded) -> None:
    state.orphans.append(origin(rec))


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    ended = {
        session_id
        for session_id, session in state.sessions.items()
        if gone.gone(session.seq, session.started_at, session.chat)
    }
    for session_id in ended:
        del state.sessions[session_id]
    state.current = {key: sid for key, sid in state.current.items() if sid not in ended}
    state.pending = {
        call_id: call
        for call_id, call in state.pending.items()
        if call.session_id not in ended and not gone.gone(*call.origin)
    }
    for session in state.sessions.values():
        _unasked(session, gone)
    _absorb_texts(state, gone, ev.older_than is not None)


def _unasked(session: Session, gone: Removal) -> None:
    """The turns whose request went leave the context; the latest request gone takes
    the system text and the activity it brought along (a fold of what is left would
    know neither)."""
    chat = session.chat
    if any(went(gone, turn.asked, chat) for turn in session.turns):
        session.turns = [turn for turn in session.turns if not went(gone, turn.asked, chat)]
    if session.asked and went(gone, session.asked, chat):
        # Expiry still counts the answers left by when the session was last active.
        session.texts.last = max(session.texts.last, session.last_activity)
        session.system, session.asked = "", 0
        turns = session.turns
        session.last_activity = max(session.started_at, turns[-1].at if turns else 0.0)


def _absorb_texts(state: State, gone: Removal, rotation: bool) -> None:
    """Drop the seqs that went from every ``Texts``: nothing grows, and expiry never
    names an event twice. A rotation also retires the messages it kept waiting (a
    message that ties a person's ids): as in the queue, they are done."""
    for session in state.sessions.values():
        prune(session.texts, gone, session.chat)
    for group in (state.ended, state.attached):
        for key, texts in list(group.items()):
            prune(texts, gone, texts.chat)
            if not texts.words and not texts.counted:
                del group[key]
    for key, seq in list(state.waiting.items()):
        if (rotation and seq < gone.before) or went(gone, seq, key.split("|", 1)[0]):
            del state.waiting[key]
            state.attached.pop(key, None)
    state.orphans = [o for o in state.orphans if not gone.gone(*o)]
    # Orphans' replies ("") are followed until the next compaction at most.
    known = state.sessions.keys() | state.ended.keys()
    for call_id in [c for c, s in state.replying.items() if s not in known]:
        del state.replying[call_id]
    for reply_id in [r for r, s in state.speaking.items() if s not in known]:
        del state.speaking[reply_id]


def current(state: State, chat: str, users: Iterable[str]) -> Session | None:
    """The newest session of ``chat`` under the first alias form of the user that has one."""
    for user in users:
        session_id = state.current.get(_key(chat, user))
        if session_id is not None:
            return state.sessions.get(session_id)
    return None


def expires_at(session: Session, mode: str, ttl_minutes: float, tz: str) -> float | None:
    """When ``session`` ends under the configured mode; None for ``never``."""
    if mode == "idle":
        return session.last_activity + ttl_minutes * 60
    if mode == "fixed":
        return session.started_at + ttl_minutes * 60
    if mode == "daily":
        zone = ZoneInfo(tz)
        day = datetime.fromtimestamp(session.started_at, zone).date() + timedelta(days=1)
        # A midnight skipped by DST resolves (fold=0) to the first instant of that day.
        return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
    if mode == "never":
        return None
    raise ValueError(f"unknown session mode {mode!r} (idle, fixed, daily or never)")


def live(  # noqa: PLR0917 - the agent's call shape: clock and session config last
    state: State,
    chat: str,
    users: Iterable[str],
    now: float,
    mode: str,
    ttl_minutes: float,
    tz: str,
) -> Session | None:
    """The current session if it has not expired at ``now`` (expiry instant included)."""
    session = current(state, chat, users)
    if session is None:
        return None
    end = expires_at(session, mode, ttl_minutes, tz)
    return session if end is None or now < end else None


def context(session: Session) -> list[ChatTurn]:
    """The session's turns as LLM messages, oldest first."""
    return [ChatTurn(t.role, t.content) for t in session.turns]


_HANDLERS: Handlers[State] = {
    ConfigLoaded: _config,
    SessionStarted: _started,
    LlmRequested: _requested,
    LlmCompleted: _completed,
    LlmFailed: _failed,
    MessageRevoked: _revoked,
    MessageReceived: _received,
    MessageEdited: _more,
    MediaFetched: _more,
    DocumentRead: _more,
    MediaTranscribed: _transcribed,
    MessageSkipped: _skipped,
    ReplyPlanned: _planned,
    SpeechSynthesized: _spoken,
    SpeechFailed: _spoken,
    ReplySent: _unspoken,
    ReplyFailed: _unspoken,
    ToolCalled: _tool_text,
    ToolFinished: _tool_text,
    ReplyWithheld: _tool_text,
    Compacted: _compacted,
}
PROJECTION = Projection.of("sessions", State, _HANDLERS)
apply = PROJECTION.apply
