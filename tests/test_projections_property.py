"""Property: a snapshot is a faithful cache, the combined fold equals each apply, and
absorbing a compaction equals folding what it left."""

import os
from typing import Any

import msgspec
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from events.compaction import removed
from events.model import (
    AccountRestricted,
    AnyEvent,
    ChatPaused,
    ChatResumed,
    ChatTurn,
    Citation,
    Compacted,
    ConfigLoaded,
    FactForgotten,
    FactRemembered,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    Media,
    MediaFetched,
    MediaTranscribed,
    MessageReceived,
    MessageSkipped,
    MessageUndecryptable,
    OwnerAlerted,
    Recorded,
    ReminderCancelled,
    ReminderFired,
    ReminderSet,
    ReplyDelivered,
    ReplyFailed,
    ReplyPlanned,
    ReplySent,
    SessionStarted,
    SpeechFailed,
    SpeechPlan,
    SpeechSynthesized,
    TimerChanged,
    TranscriptionFailed,
    TransportStatus,
    Usage,
)
from events.protocol import CompactReason, Selection, removal
from events.units import DAY
from projections import account, alerts, budget, retention, session_texts, sessions, stats
from projections.fold import ALL, decode, dispatch_table, encode, feed, fold

# Small pools make events refer to each other (same chats, messages, calls).
chats = st.sampled_from(["491701@s.whatsapp.net", "491702@s.whatsapp.net", "1203@g.us"])
people = st.sampled_from(["491701@s.whatsapp.net", "491702@s.whatsapp.net", "77@lid", "88@lid"])
msg_ids = st.sampled_from([f"m{i}" for i in range(6)])
call_ids = st.sampled_from([f"c{i}" for i in range(4)])
session_ids = st.sampled_from([f"s{i}" for i in range(3)])
reply_ids = st.sampled_from([f"r{i}" for i in range(4)])
reminder_ids = st.sampled_from([f"R{i}" for i in range(4)])
texts = st.sampled_from(["hi", "hi ", "hello there", "", "answer"])
maybe = st.none() | st.floats(0, 1, allow_nan=False)

configs = st.builds(
    ConfigLoaded,
    hash=st.sampled_from(["h1", "h2"]),
    # Sessions follow their events for drop_expired_sessions: on, so the law covers it.
    config=st.builds(
        lambda n: {
            "session_memory": {"max_messages": n},
            "rotation": {"drop_expired_sessions": True},
        },
        st.integers(1, 6),
    ),
    path=st.just("app.json"),
)
received = st.builds(
    MessageReceived,
    chat=chats,
    msg_id=msg_ids,
    sender=people,
    sender_alt=st.none() | people,
    text=texts,
    from_me=st.booleans(),
    is_group=st.booleans(),
    mentions=st.lists(people, max_size=2),
    via=st.none() | people,
    chat_alt=st.none() | people,
    expiration=st.none() | st.sampled_from([0, 86400, 604800]),
)
fetched = st.builds(
    MediaFetched,
    chat=chats,
    msg_id=msg_ids,
    media=st.builds(Media, kind=st.just("image"), sha256=st.sampled_from(["", "ab"])),
)
skipped = st.builds(
    MessageSkipped,
    chat=chats,
    msg_id=msg_ids,
    reason=st.sampled_from(["echo", "takeover", "budget"]),
)
started = st.builds(
    SessionStarted,
    chat=chats,
    session_id=session_ids,
    user=people,
    reason=st.sampled_from(["new", "expired"]),
)
requested = st.builds(
    LlmRequested,
    chat=chats,
    call_id=call_ids,
    session_id=session_ids,
    trigger_ids=st.lists(msg_ids, max_size=3),
    model=st.just("m"),
    params=st.just({}),
    messages=st.builds(
        lambda system, turns: [*system, *turns],
        st.lists(st.builds(ChatTurn, st.just("system"), texts), max_size=1),
        st.lists(st.builds(ChatTurn, st.just("user"), texts), max_size=2),
    ),
    config_hash=st.just("h1"),
)
completed = st.builds(
    LlmCompleted,
    chat=chats,
    call_id=call_ids,
    content=texts,
    citations=st.lists(st.builds(Citation, url=st.just("https://x")), max_size=1),
    usage=st.builds(Usage, cost_usd=maybe),
    latency_ms=st.floats(0, 5000),
)
planned = st.builds(
    ReplyPlanned,
    chat=chats,
    reply_id=reply_ids,
    purpose=st.sampled_from(["reply", "debug"]),
    text=texts,
    call_id=st.none() | call_ids,
    in_reply_to=st.none() | msg_ids,
    wa_id=st.none() | st.sampled_from(["w1", "w2"]),
    trigger_ids=st.lists(msg_ids, max_size=2),
    speech=st.none() | st.builds(SpeechPlan, model=st.just("tts"), voice=st.just("alloy")),
    # A part of an answer split into messages (budget and schedule count its first).
    part=st.none() | st.integers(1, 3),
    parts=st.none() | st.just(3),
)
# What came of speaking a voice reply: its audio (a stored file) or a failed attempt.
speech = st.one_of(
    st.builds(
        SpeechSynthesized,
        chat=chats,
        reply_id=reply_ids,
        sha256=st.sampled_from(["cd", "ef"]),
        size=st.just(100),
        seconds=st.just(1.5),
        model=st.just("tts"),
        voice=st.just("alloy"),
        cost_usd=maybe,
    ),
    st.builds(SpeechFailed, chat=chats, reply_id=reply_ids, error=texts, final=st.booleans()),
)
events = st.one_of(
    configs,
    received,
    fetched,
    st.builds(
        TimerChanged,
        chat=chats,
        msg_id=msg_ids,
        expiration=st.sampled_from([0, 86400, 604800]),
    ),
    st.builds(
        MessageUndecryptable,
        chat=chats,
        msg_id=msg_ids,
        sender=people,
        reason=st.sampled_from(["view_once", "decrypt_failed"]),
    ),
    skipped,
    started,
    requested,
    completed,
    st.builds(
        LlmFailed,
        chat=chats,
        call_id=call_ids,
        error=st.just("x"),
        final=st.booleans(),
        usage=st.none() | st.builds(Usage, cost_usd=maybe),
    ),
    planned,
    speech,
    st.builds(
        ReplySent,
        chat=chats,
        reply_id=reply_ids,
        wa_id=st.sampled_from(["w1", "w3"]),
        sent_at=st.just(0.0),
    ),
    st.builds(ReplyFailed, chat=chats, reply_id=reply_ids, error=st.just("x"), final=st.booleans()),
    st.builds(
        ReplyDelivered,
        chat=chats,
        reply_id=reply_ids,
        wa_id=st.sampled_from(["w1", "w3"]),
        state=st.sampled_from(["server", "delivered", "read", "played"]),
        at=st.just(0.0),
    ),
    st.builds(
        TransportStatus,
        state=st.sampled_from(["connected", "qr", "logged_out", "disconnected", "connecting"]),
        me_pn=st.none() | st.sampled_from(["491700@s.whatsapp.net"]),
        me_lid=st.none() | st.sampled_from(["70@lid", "71@lid"]),
        code=st.none() | st.just(409),
    ),
    st.builds(
        AccountRestricted,
        active=st.booleans(),
        code=st.none() | st.sampled_from([463, 479]),
        until=st.none() | st.floats(1_764_000_000, 1_765_000_000),
    ),
    st.builds(
        TranscriptionFailed, chat=chats, msg_id=msg_ids, error=st.just("x"), final=st.booleans()
    ),
    st.builds(
        MediaTranscribed, chat=chats, msg_id=msg_ids, text=texts, model=st.just("w"), cost_usd=maybe
    ),
    st.builds(
        OwnerAlerted,
        kind=st.sampled_from(
            [
                "logged_out",
                "budget",
                "llm_failing",
                "transcription_failing",
                "undelivered",
                "restricted",
            ]
        ),
        ok=st.booleans(),
    ),
    st.builds(
        ChatPaused,
        chat=chats,
        until=st.none() | st.floats(1_764_000_000, 1_765_000_000),
        msg_id=msg_ids,
    ),
    st.builds(ChatResumed, chat=chats, msg_id=msg_ids),
    st.builds(
        ReminderSet,
        chat=chats,
        reminder_id=reminder_ids,
        at=st.floats(1_764_000_000, 1_765_000_000),
        text=texts,
    ),
    st.builds(ReminderCancelled, chat=chats, reminder_id=reminder_ids),
    st.builds(
        ReminderFired,
        chat=chats,
        reminder_id=reminder_ids,
        reply_id=reply_ids,
        missed=st.booleans(),
    ),
    st.builds(FactRemembered, chat=chats, fact=texts),
    st.builds(
        FactForgotten,
        chat=chats,
        facts=st.lists(texts, max_size=2),
        reason=st.sampled_from(["asked", "bound"]),
    ),
    st.builds(
        Compacted, reason=st.just("rotation"), before=st.integers(1, 50), removed=st.integers(0, 9)
    ),
)


@st.composite
def exchange(draw: st.DrawFn) -> list[AnyEvent]:
    """A message answered in a session (started anew or not), as the agent records it;
    a voice reply with what came of speaking it."""
    chat, session_id = draw(chats), draw(session_ids)
    call_id, msg_id = draw(call_ids), draw(msg_ids)
    request = draw(requested)
    start = msgspec.structs.replace(draw(started), chat=chat, session_id=session_id)
    reply = msgspec.structs.replace(draw(planned), chat=chat, call_id=call_id)
    said = draw(st.lists(speech, max_size=2 if reply.speech else 0))
    evs: list[AnyEvent] = [
        msgspec.structs.replace(draw(received), chat=chat, msg_id=msg_id),
        msgspec.structs.replace(draw(fetched), chat=chat, msg_id=msg_id),
        start,
        msgspec.structs.replace(
            request, chat=chat, call_id=call_id, session_id=session_id, trigger_ids=[msg_id]
        ),
        msgspec.structs.replace(draw(completed), chat=chat, call_id=call_id),
        reply,
        *(msgspec.structs.replace(s, chat=chat, reply_id=reply.reply_id) for s in said),
    ]
    if draw(st.booleans()):
        del evs[1]  # no attachment fetched after it
    if draw(st.booleans()):
        evs.remove(start)  # the session's next exchange: no start
    return evs


@st.composite
def logs(draw: st.DrawFn, *, tracked: bool = False) -> list[Recorded]:
    """Records with increasing seq and ts; gaps of up to two days exercise pruning.
    ``tracked``: a config turning ``drop_expired_sessions`` on comes first, and whole
    exchanges (``exchange``) among the events, so sessions have turns to lose."""
    evs = [draw(configs)] if tracked else []
    if tracked:
        for part in draw(
            st.lists(st.one_of(events.map(lambda e: [e]), exchange()), min_size=2, max_size=20)
        ):
            evs += part
    else:
        evs += draw(st.lists(events, max_size=60))
    steps = draw(st.lists(st.floats(0, 2 * 86400), min_size=len(evs), max_size=len(evs)))
    records, seq, ts = [], 0, 1_764_000_000.0
    for event, step in zip(evs, steps, strict=True):
        seq += draw(st.integers(1, 3))
        ts += step
        records.append(Recorded(seq, ts, event))
    return records


@settings(max_examples=300, deadline=None)
@given(logs(), st.data())
def test_snapshot_plus_tail_equals_full_fold(records, data):
    split = data.draw(st.integers(0, len(records)))
    resumed = decode(encode(fold(records[:split])))
    feed(resumed, dispatch_table(resumed), records[split:])
    assert resumed == fold(records)


@settings(max_examples=100, deadline=None)
@given(logs())
def test_combined_fold_equals_each_projection_applied_alone(records):
    combined = fold(records)
    for projection in ALL:
        state = projection.state_type()
        for rec in records:
            state = projection.apply(state, rec)
        assert state == getattr(combined, projection.name), projection.name


# -- absorbing a compaction ---------------------------------------------------
#
# The law: folding a history and then its Compacted (each projection drops what
# it derived from the removed events) gives the states a fold of what is left
# (plus the marker) gives. Histories are made coherent first, as the daemon's
# are: a message, session, call or reply id is recorded once, ids belong to one
# chat, a request names the config in force. Each projection's docstring states
# where it deliberately differs; ``_view`` compares the rest and the rule tests
# below check the difference.

_IDS = ("msg_id", "call_id", "session_id", "reply_id", "in_reply_to", "wa_id", "reminder_id")
_UNIQUE = {
    MessageReceived: "msg_id",
    SessionStarted: "session_id",
    LlmRequested: "call_id",
    ReplyPlanned: "reply_id",
    ReminderSet: "reminder_id",
}


def _coherent(records: list[Recorded]) -> list[Recorded]:
    used: set[tuple[str, str]] = set()
    config = "h0"
    kept = []
    for rec in records:
        event = rec.event
        if isinstance(event, ConfigLoaded):
            config = f"h{event.config['session_memory']['max_messages']}"
            event = msgspec.structs.replace(event, hash=config)
        elif event.chat:
            event = _in_chat(event, event.chat)
        if isinstance(event, LlmRequested):
            event = msgspec.structs.replace(event, config_hash=config)
        field = _UNIQUE.get(type(event))
        if field is not None:
            key = (type(event).__name__, getattr(event, field))
            if key in used:
                continue
            used.add(key)
        kept.append(Recorded(rec.seq, rec.ts, event))
    return kept


def _in_chat(event: AnyEvent, chat: str) -> AnyEvent:
    """Ids of other events' kinds and of other chats never collide: namespace them."""
    changes: dict[str, Any] = {}
    for name in _IDS:
        value = getattr(event, name, None)
        if value:
            changes[name] = f"{chat}/{value}"
    triggers: list[str] = getattr(event, "trigger_ids", [])
    if triggers:
        changes["trigger_ids"] = [f"{chat}/{m}" for m in triggers]
    return msgspec.structs.replace(event, **changes)


def _forget(records: list[Recorded], data: st.DataObject) -> tuple[CompactReason, Selection]:
    chat = data.draw(chats)
    return "forget", Selection(chats=frozenset({chat}))


def _rotation(records: list[Recorded], data: st.DataObject) -> tuple[CompactReason, Selection]:
    """What the scheduler's rotation selects: older than a cut-off but the configs still needed."""
    cutoff = data.draw(st.floats(records[0].ts, records[-1].ts + 1))
    keep = retention.kept(fold(records, [retention.PROJECTION]).retention, cutoff)
    return "rotation", Selection(older_than=cutoff, keep=keep)


def _seqs(records: list[Recorded], data: st.DataObject) -> tuple[CompactReason, Selection]:
    """An explicit list: one chat's events before a time (as an expiry of old sessions)."""
    chat = data.draw(chats)
    upto = data.draw(st.integers(0, records[-1].seq))
    seqs = frozenset(r.seq for r in records if r.chat == chat and r.seq <= upto)
    return "expiry", Selection(seqs=seqs)


def _expiry(records: list[Recorded], data: st.DataObject) -> tuple[CompactReason, Selection]:
    """What ``rotation.drop_expired_sessions`` selects: the texts of the sessions ended
    or expired by a time (a session expires after an hour idle)."""
    now = data.draw(st.floats(records[0].ts, records[-1].ts + DAY))
    state = fold(records, [sessions.PROJECTION]).sessions
    counted_before = data.draw(st.floats(records[0].ts, now))
    doomed = sessions.expired_texts(state, now, "idle", 60, "UTC", counted_before)
    return "expiry", Selection(seqs=doomed)


def _compacted(
    records: list[Recorded], reason: CompactReason, selection: Selection
) -> tuple[list[Recorded], Recorded] | None:
    """What is left of ``records`` and the marker, as a log would record them."""
    gone = [r for r in records if selection.matches(r)]
    event = removed(selection, reason, [(r.seq, type(r.event).__name__, r.chat) for r in gone])
    if event is None:
        return None
    marker = Recorded(records[-1].seq + 1, records[-1].ts, event)
    return [r for r in records if not selection.matches(r)], marker


def _view(name: str, state: Any, newest: float) -> Any:
    """What a projection's law compares; the deliberate differences are tested on their own."""
    if name == "alerts":  # see _alerts_absorbed
        return None
    if name == "stats":  # tallies survive compactions (see projections.stats)
        return (state.compacted, state.newest_ts)
    if name == "budget":  # swept at the same time; recent costs checked apart
        swept = msgspec.structs.replace(state, recent=[], recent_from=[])
        swept = decode_budget(encode_budget(swept))
        swept.newest = newest
        budget._sweep(swept)
        return msgspec.structs.replace(swept, swept_at=0.0)
    if name == "schedule":  # the day's replies, as asked at or after the newest event
        left = [
            (t, seq, chat)
            for t, seq, chat in zip(state.replies, state.reply_seqs, state.reply_chats, strict=True)
            if t >= newest - DAY
        ]
        return msgspec.structs.replace(state, replies=left, reply_seqs=[], reply_chats=[])
    if name == "retention":  # the newest facts a rotation keeps: see _newest_absorbed
        return msgspec.structs.replace(state, newest={}, scheduled={})
    if name == "sessions":  # what expiry follows: see _texts_absorbed
        return _without_texts(state)
    if name == "account":  # the recent sends left: see _sends_absorbed
        return state.strikes
    if name == "failures":  # the newest failures left: see _failures_absorbed
        return None
    return state


def _sends_absorbed(ours: account.State, theirs: account.State) -> None:
    """The recent sends left are the newest a fold of what is left keeps (which may
    reach further back, when the newest send went)."""
    assert theirs.sends[len(theirs.sends) - len(ours.sends) :] == ours.sends


def _without_texts(state: sessions.State) -> sessions.State:
    plain = {
        sid: msgspec.structs.replace(s, texts=session_texts.Texts())
        for sid, s in state.sessions.items()
    }
    return msgspec.structs.replace(
        state,
        sessions=plain,
        waiting={},
        attached={},
        ended={},
        replying={},
        orphans=[],
        speaking={},
    )


def _texts_absorbed(state: sessions.State, left: list[Recorded]) -> None:
    """What expiry may remove names only events still there: nothing dangles, nothing grows.

    (A refold may follow more of the events left: those the absorbed state no
    longer follows go with the retention instead.)
    """
    followed = [*state.waiting.values(), *(seq for seq, _, _ in state.orphans)]
    texts = [s.texts for s in state.sessions.values()]
    for t in [*texts, *state.ended.values(), *state.attached.values()]:
        followed.extend([*t.words, *t.counted])
    assert set(followed) <= {r.seq for r in left}


def _newest_absorbed(ours: retention.State, theirs: retention.State, left: list[Recorded]) -> None:
    """The newest check-in, status… that rotation keeps: a refold's, unless it went
    (then a refold finds an older one; naming a seq that is gone keeps nothing)."""
    alive = {r.seq for r in left}
    for key, seqs in ours.newest.items():
        living = [seq for seq in seqs if seq in alive]
        assert not living or living == theirs.newest.get(key), key


def _alerts_absorbed(state: alerts.State, marker: Compacted) -> None:
    """Nothing owed, settled or failing because of an event that went."""
    gone = removal(marker)
    assert gone is not None
    causes = [
        *state.owed_from.values(),
        *state.settled_from.values(),
        *state.failing,
        *state.unheard_from,
    ]
    assert not [cause for cause in causes if gone.gone(*cause)]
    assert state.owed.keys() == state.owed_from.keys()
    assert (state.failures, state.unheard) == (len(state.failing), len(state.unheard_from))


def _stats_absorbed(
    ours: stats.State, theirs: stats.State, before: stats.State, reason: str
) -> None:
    """A forget's counts are a refold's; otherwise the tallies are those before the marker."""
    if reason == "forget":
        assert (ours.by_type, ours.by_chat) == (theirs.by_type, theirs.by_chat)
        assert ours.replies_sent == theirs.replies_sent
        return
    marker = {**before.by_type, "Compacted": before.by_type["Compacted"] + 1}
    assert (ours.by_type, ours.spend_usd, ours.latencies) == (
        marker,
        before.spend_usd,
        before.latencies,
    )
    assert (ours.replies_sent, ours.llm_failures) == (before.replies_sent, before.llm_failures)


encode_budget = msgspec.msgpack.encode
decode_budget = msgspec.msgpack.Decoder(budget.State).decode


@settings(max_examples=int(os.environ.get("WABOT_LAW_EXAMPLES", "300")), deadline=None)
@given(logs(), st.sampled_from([_forget, _rotation, _seqs]), st.data())
def test_absorbing_a_compaction_equals_folding_what_is_left(raw, select, data):
    records = _coherent(raw)
    assume(records)
    reason, selection = select(records, data)
    compacted = _compacted(records, reason, selection)
    if compacted is None:
        return  # nothing selected: no marker
    left, marker = compacted
    absorbed, refolded = fold([*records, marker]), fold([*left, marker])
    newest = records[-1].ts
    for projection in ALL:
        name = projection.name
        ours, theirs = getattr(absorbed, name), getattr(refolded, name)
        assert _view(name, ours, newest) == _view(name, theirs, newest), name
    assert isinstance(marker.event, Compacted)
    _alerts_absorbed(absorbed.alerts, marker.event)
    _texts_absorbed(absorbed.sessions, left)
    _newest_absorbed(absorbed.retention, refolded.retention, left)
    _stats_absorbed(absorbed.stats, refolded.stats, fold(records).stats, reason)
    _sends_absorbed(absorbed.account, refolded.account)
    # The failures left are the newest a refold keeps (which may reach further back).
    ours = absorbed.failures.newest
    assert refolded.failures.newest[len(refolded.failures.newest) - len(ours) :] == ours
    # The estimate keeps the recent costs left; a refold may reach further back.
    kept = absorbed.budget.recent_from
    assert refolded.budget.recent_from[len(refolded.budget.recent_from) - len(kept) :] == kept


@settings(max_examples=int(os.environ.get("WABOT_LAW_EXAMPLES", "300")), deadline=None)
@given(logs(tracked=True), st.data())
def test_absorbing_an_expiry_equals_folding_what_is_left(raw, data):
    """An expiry keeps a session's start and removes its texts: the turns, system
    text and activity they brought leave the sessions too. (Tracked from the start:
    the requests made before ``tracking`` stay, see projections.sessions. The law
    is the sessions': the generated logs answer messages of no session, which the
    agent never does.)"""
    records = _coherent(raw)
    compacted = _compacted(records, *_expiry(records, data))
    if compacted is None:
        return  # nothing selected: no marker
    left, marker = compacted
    absorbed, refolded = (
        fold(log, [sessions.PROJECTION]) for log in ([*records, marker], [*left, marker])
    )
    newest = records[-1].ts
    ours, theirs = absorbed.sessions, refolded.sessions
    assert _view("sessions", ours, newest) == _view("sessions", theirs, newest)
    _texts_absorbed(ours, left)
