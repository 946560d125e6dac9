"""Property: a snapshot is a faithful cache, and the combined fold equals each apply."""

from hypothesis import given, settings
from hypothesis import strategies as st

from events.model import (
    ChatTurn,
    Citation,
    Compacted,
    ConfigLoaded,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MessageReceived,
    MessageSkipped,
    Recorded,
    ReplyFailed,
    ReplyPlanned,
    ReplySent,
    SessionStarted,
    TransportStatus,
    Usage,
)
from projections.fold import ALL, decode, dispatch_table, encode, feed, fold

# Small pools make events refer to each other (same chats, messages, calls).
chats = st.sampled_from(["491701@s.whatsapp.net", "491702@s.whatsapp.net", "1203@g.us"])
people = st.sampled_from(["491701@s.whatsapp.net", "491702@s.whatsapp.net", "77@lid", "88@lid"])
msg_ids = st.sampled_from([f"m{i}" for i in range(6)])
call_ids = st.sampled_from([f"c{i}" for i in range(4)])
session_ids = st.sampled_from([f"s{i}" for i in range(3)])
reply_ids = st.sampled_from([f"r{i}" for i in range(4)])
texts = st.sampled_from(["hi", "hi ", "hello there", "", "answer"])
maybe = st.none() | st.floats(0, 1, allow_nan=False)

events = st.one_of(
    st.builds(
        ConfigLoaded,
        hash=st.sampled_from(["h1", "h2"]),
        config=st.builds(lambda n: {"session_memory": {"max_messages": n}}, st.integers(1, 6)),
        path=st.just("app.json"),
    ),
    st.builds(
        MessageReceived,
        chat=chats,
        msg_id=msg_ids,
        sender=people,
        sender_alt=st.none() | people,
        text=texts,
        from_me=st.booleans(),
        is_group=st.booleans(),
        mentions=st.lists(people, max_size=2),
    ),
    st.builds(
        MessageSkipped, chat=chats, msg_id=msg_ids, reason=st.sampled_from(["echo", "takeover"])
    ),
    st.builds(
        SessionStarted,
        chat=chats,
        session_id=session_ids,
        user=people,
        reason=st.sampled_from(["new", "expired"]),
    ),
    st.builds(
        LlmRequested,
        chat=chats,
        call_id=call_ids,
        session_id=session_ids,
        trigger_ids=st.lists(msg_ids, max_size=3),
        model=st.just("m"),
        params=st.just({}),
        messages=st.lists(st.builds(ChatTurn, st.just("user"), texts), max_size=2),
        config_hash=st.just("h1"),
    ),
    st.builds(
        LlmCompleted,
        chat=chats,
        call_id=call_ids,
        content=texts,
        citations=st.lists(st.builds(Citation, url=st.just("https://x")), max_size=1),
        usage=st.builds(Usage, cost_usd=maybe),
        latency_ms=st.floats(0, 5000),
    ),
    st.builds(LlmFailed, chat=chats, call_id=call_ids, error=st.just("x"), final=st.booleans()),
    st.builds(
        ReplyPlanned,
        chat=chats,
        reply_id=reply_ids,
        purpose=st.sampled_from(["reply", "debug"]),
        text=texts,
        call_id=st.none() | call_ids,
        in_reply_to=st.none() | msg_ids,
        wa_id=st.none() | st.sampled_from(["w1", "w2"]),
        trigger_ids=st.lists(msg_ids, max_size=2),
    ),
    st.builds(
        ReplySent,
        chat=chats,
        reply_id=reply_ids,
        wa_id=st.sampled_from(["w1", "w3"]),
        sent_at=st.just(0.0),
    ),
    st.builds(ReplyFailed, chat=chats, reply_id=reply_ids, error=st.just("x"), final=st.booleans()),
    st.builds(TransportStatus, state=st.sampled_from(["connected", "qr"])),
    st.builds(
        Compacted, reason=st.just("rotation"), before=st.integers(1, 50), removed=st.integers(0, 9)
    ),
)


@st.composite
def logs(draw: st.DrawFn) -> list[Recorded]:
    """Records with increasing seq and ts; gaps of up to two days exercise pruning."""
    evs = draw(st.lists(events, max_size=60))
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
