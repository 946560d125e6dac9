"""The connection as the transport last reported it: what the sender, the alerter and
the check-in decide from."""

from events.model import AnyEvent, Compacted, MessageReceived, Recorded, TransportStatus
from projections import connection
from projections.fold import fold

CHAT = "491701111111@s.whatsapp.net"


def folded(*events: AnyEvent) -> connection.State:
    records = [Recorded(i, 1000.0 + i, e) for i, e in enumerate(events, 1)]
    return fold(records, [connection.PROJECTION]).connection


def test_the_newest_report_is_the_state_and_says_since_when() -> None:
    state = folded(
        TransportStatus(state="connecting", detail="daemon started"),
        MessageReceived(chat=CHAT, msg_id="m", sender=CHAT),
        TransportStatus(state="connected"),
        MessageReceived(chat=CHAT, msg_id="n", sender=CHAT),
    )
    assert (state.state, state.detail) == ("connected", "")
    assert connection.connected_at(state) == 3
    assert connection.up_since(state) == 1003.0
    assert connection.usable(state)


def test_a_connection_down_is_not_usable_and_not_up() -> None:
    state = folded(TransportStatus(state="connected"), TransportStatus(state="disconnected"))
    assert (state.state, state.since) == ("disconnected", (2, 1002.0, ""))
    assert not connection.usable(state)
    assert connection.connected_at(state) is None
    assert connection.up_since(state) is None


def test_no_report_is_unknown_and_up_as_far_as_anyone_knows() -> None:
    state = folded()
    assert state.state is None
    assert connection.usable(state)
    assert connection.up_since(state) == 0.0
    assert connection.connected_at(state) is None


def test_a_compaction_that_removes_the_newest_report_forgets_it() -> None:
    status = TransportStatus(state="connected", detail="up")
    rotated = Compacted(reason="rotation", before=3, removed=2, older_than=1002.5, keep=[])
    assert folded(TransportStatus(state="qr"), status, rotated).state is None
    expired = Compacted(reason="expiry", before=3, removed=1, seqs=[1], keep=[])
    assert folded(TransportStatus(state="qr"), status, expired).detail == "up"
