"""The one-pass dispatch: each event reaches exactly its projections' handlers, in order."""

from typing import Any

import pytest

from events.model import EVENT_TYPES, MessageReceived, Recorded, ReplySent
from projections import queue
from projections.base import Projection
from projections.fold import ALL, States, dispatch_table, feed

CHAT = "491701111111@s.whatsapp.net"


def spy(name: str, calls: list[tuple[str, int, Any]], *types: type) -> Projection[Any]:
    """A projection named ``name`` (borrowing that state) noting each call it gets."""

    def note(state: Any, rec: Recorded, event: Any) -> None:
        calls.append((name, rec.seq, state))

    real = next(p for p in ALL if p.name == name)
    return Projection.of(name, real.state_type, dict.fromkeys(types, note))


def test_each_event_calls_its_handlers_in_projection_order_with_their_states() -> None:
    calls: list[tuple[str, int, Any]] = []
    states = States()
    projections = [
        spy("queue", calls, MessageReceived),
        spy("stats", calls, MessageReceived, ReplySent),
        spy("outbox", calls, ReplySent),
    ]
    records = [
        Recorded(1, 1.0, MessageReceived(chat=CHAT, msg_id="m", sender=CHAT)),
        Recorded(2, 2.0, ReplySent(chat=CHAT, reply_id="r", wa_id="w", sent_at=2.0)),
    ]
    feed(states, dispatch_table(states, projections), records)
    assert calls == [
        ("queue", 1, states.queue),
        ("stats", 1, states.stats),
        ("stats", 2, states.stats),
        ("outbox", 2, states.outbox),
    ]
    assert states.seq == 2


def test_every_event_type_has_a_step_even_when_nothing_handles_it() -> None:
    states = States()
    table = dispatch_table(states, [])
    assert set(table) == set(EVENT_TYPES)
    feed(states, table, [Recorded(1, 1.0, MessageReceived(chat=CHAT, msg_id="m", sender=CHAT))])
    assert states == States(seq=1)


def test_a_failing_handler_stops_the_fold_at_the_last_record_folded() -> None:
    def fail(state: Any, rec: Recorded, event: Any) -> None:
        if rec.seq == 2:
            raise RuntimeError("boom")

    states = States()
    broken = Projection.of("queue", queue.State, {MessageReceived: fail})
    records = [
        Recorded(n, float(n), MessageReceived(chat=CHAT, msg_id=f"m{n}", sender=CHAT))
        for n in (1, 2, 3)
    ]
    with pytest.raises(RuntimeError, match="boom"):
        feed(states, dispatch_table(states, [broken]), records)
    assert states.seq == 1
