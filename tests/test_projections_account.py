"""The account as WhatsApp treats it, and the alerts it owes: a restriction episode,
the recent sends a restarted bot counts, a connection that stays down (issue 18)."""

from __future__ import annotations

from events.compaction import removed
from events.model import (
    AccountRestricted,
    AlertKind,
    AnyEvent,
    OwnerAlerted,
    Recorded,
    ReplySent,
    TransportStatus,
)
from events.protocol import Selection
from projections import account, alerts
from projections.fold import States, fold

ALICE = "491701111111@s.whatsapp.net"
BOB = "491702222222@s.whatsapp.net"
T0 = 1_764_070_000.0


def records(*timed: tuple[float, AnyEvent]) -> list[Recorded]:
    return [Recorded(n, T0 + at, ev) for n, (at, ev) in enumerate(timed, start=1)]


def sent(chat: str = ALICE, reply_id: str = "R") -> ReplySent:
    return ReplySent(chat=chat, reply_id=reply_id, wa_id="W", sent_at=0.0)


def compact(recs: list[Recorded], selection: Selection) -> States:
    """The states after ``recs`` and the marker of a compaction that selected ``selection``."""
    gone = [(r.seq, type(r.event).__name__, r.chat) for r in recs if selection.matches(r)]
    marker = removed(selection, "rotation", gone)
    assert marker is not None
    return fold([*recs, Recorded(recs[-1].seq + 1, recs[-1].ts, marker)])


# -- a restriction episode ---------------------------------------------------------


def test_an_episode_keeps_each_restriction_until_one_that_is_not_active() -> None:
    recs = records(
        (0, AccountRestricted(code=463, detail="first")),
        (5, AccountRestricted(code=479, until=T0 + 900, detail="again")),
    )
    state = fold(recs).account
    newest = account.newest(state)
    assert newest is not None
    assert (newest.code, newest.until, newest.detail) == (479, T0 + 900, "again")
    assert account.since(state) == T0

    over = fold([*recs, Recorded(3, T0 + 9, AccountRestricted(active=False))]).account
    assert (account.newest(over), account.since(over)) == (None, None)


def test_a_rotation_that_removes_a_restriction_leaves_the_rest_of_the_episode() -> None:
    recs = records((0, AccountRestricted(code=463)), (100, AccountRestricted(code=479)))
    state = compact(recs, Selection(older_than=T0 + 50, keep=frozenset())).account
    assert [s.code for s in state.strikes] == [479]
    assert account.since(state) == T0 + 100


def test_the_recent_sends_are_those_of_the_last_minute() -> None:
    recs = records((0, sent()), (30, sent()), (61, sent(BOB)), (62, sent()))
    assert account.send_times(fold(recs).account) == [T0 + 30, T0 + 61, T0 + 62]


def test_a_forgotten_chats_sends_no_longer_count() -> None:
    recs = records((0, sent()), (1, sent(BOB)), (2, sent()))
    state = compact(recs, Selection(chats=frozenset({ALICE}))).account
    assert account.send_times(state) == [T0 + 1]


# -- the alerts -----------------------------------------------------------------------


def owed(*timed: tuple[float, AnyEvent]) -> dict[AlertKind, str]:
    return alerts.owed(fold(records(*timed)).alerts)


def test_a_restriction_is_owed_once_per_episode() -> None:
    first = AccountRestricted(code=463, detail="refused with 463")
    told = OwnerAlerted(kind="restricted", ok=True)
    assert owed((0, first)) == {"restricted": "refused with 463"}
    # Another 463 in the same episode (the probe after the hold) is not news.
    assert owed((0, first), (1, told), (2, first)) == {}
    # Once a message went through again, the next restriction is a new episode.
    lifted = AccountRestricted(active=False)
    again = owed((0, first), (1, told), (2, lifted), (3, first))
    assert again == {"restricted": "refused with 463"}


def down(*timed: tuple[float, AnyEvent]) -> alerts.State:
    return fold(records(*timed)).alerts


def test_a_connection_down_past_the_limit_is_owed_by_the_clock() -> None:
    state = down(
        (0, TransportStatus(state="connected")),
        (10, TransportStatus(state="disconnected", detail="connection lost; reconnecting")),
        (20, TransportStatus(state="connecting")),
    )
    assert alerts.down_due_at(state, 10) == T0 + 10 + 600
    assert alerts.connection_down(state, T0 + 609, 10) is None
    assert alerts.connection_down(state, T0 + 611, 10) == (
        "no connection to WhatsApp for 10 min (connecting)"
    )


def test_a_connection_down_alert_is_given_once_until_connected() -> None:
    lost = TransportStatus(state="disconnected")
    told = OwnerAlerted(kind="connection_down", ok=True)
    state = down((0, lost), (700, told), (800, lost))
    assert alerts.connection_down(state, T0 + 5000, 10) is None
    state = down((0, lost), (700, told), (800, TransportStatus(state="connected")), (900, lost))
    assert alerts.down_due_at(state, 10) == T0 + 900 + 600


def test_a_stop_a_pairing_or_a_ban_is_no_outage_of_its_own() -> None:
    for state in ("stopped", "qr", "banned", "logged_out"):
        later = down((0, TransportStatus(state="disconnected")), (5, TransportStatus(state=state)))
        assert alerts.down_due_at(later, 10) is None, state


def test_a_connection_whatsapp_refuses_is_owed_at_once() -> None:
    refused = TransportStatus(
        state="disconnected", detail="connect failure BAD_USER_AGENT", code=409
    )
    assert owed((0, refused)) == {
        "connection_down": "WhatsApp refused the connection (connect failure BAD_USER_AGENT)"
    }
