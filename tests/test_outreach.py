"""What the sender may send: the global pace and the account's restriction (issue 18,
items 8 and 9), as pure rules and through the sender on a real log with a fake clock.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from events.backends import open_log
from events.model import (
    AccountRestricted,
    AnyEvent,
    ReplyFailed,
    ReplyPlanned,
    ReplyPurpose,
    ReplySent,
)
from events.model import TransportStatus as Status
from events.testing import FakeClock
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.daemon import FoldedLog, Sender, Settings
from pipeline.daemon import _outreach as outreach
from pipeline.transport import MemoryTransport, TransportError
from projections import account

NOW = 1_764_070_000.0
OWNER = "491700000000@s.whatsapp.net"
ALICE = "491701111111@s.whatsapp.net"
BOB = "491702222222@s.whatsapp.net"
CATCH_UP_MINUTES = 30
# whatsmeow's words for a send WhatsApp refused (send.go), as neonize passes them on.
TIMELOCK = TransportError("send failed: server returned error 463", retryable=False, code=463)


# -- the pace, as a rule ------------------------------------------------------


def test_no_more_than_the_limit_start_in_any_window() -> None:
    sent = [NOW - 59.0, NOW - 30.0, NOW - 1.0]
    assert outreach.next_slot(sent, 0, NOW, limit=4) == NOW
    assert outreach.next_slot(sent, 1, NOW, limit=4) == NOW - 59.0 + 60  # the oldest leaves
    assert outreach.next_slot(sent, 2, NOW, limit=4) == NOW - 30.0 + 60
    # Only sends admitted earlier can make room: their workers wake the sender.
    assert outreach.next_slot(sent, 4, NOW, limit=4) == math.inf
    assert outreach.next_slot([NOW - 60.0, NOW - 61.0], 0, NOW, limit=1) == NOW  # gone


def test_the_window_holds_for_every_start_the_rule_allows() -> None:
    """Starting each send at the first moment the rule allows never puts more than the
    limit into any 60 s, however the sends were spread before."""
    limit, sent, now = 3, [NOW - 50.0, NOW - 49.5, NOW - 10.0], NOW
    for _ in range(20):
        now = outreach.next_slot(sent, 0, now, limit)
        sent.append(now)
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 60) <= limit


# -- the sender, in-process ------------------------------------------------------


class Rig:
    def __init__(self, path: Path, **whatsapp: Any) -> None:
        self.path = path
        self.clock = FakeClock(NOW)
        self.settings = Settings(
            LoadedConfig(
                config=config_from_dict(
                    {
                        "whatsapp": {"phone_number": "491700000000", **whatsapp},
                        "monitored_entities": [
                            {"type": "user", "jid": ALICE},
                            {"type": "user", "jid": BOB},
                            {"type": "self"},
                        ],
                        "polling": {"catch_up_minutes": CATCH_UP_MINUTES},
                    }
                ),
                hash="h",
                path="app.json",
                secrets=Secrets(api_key=None),
            )
        )
        self.transport = MemoryTransport(clock=self.clock)
        self.folded = FoldedLog(open_log(path, clock=self.clock))
        self.sender = self.new_sender()

    def new_sender(self) -> Sender:
        return Sender(self.folded, self.transport, self.settings, clock=self.clock)

    def restart(self) -> None:
        """A new process on the same log (after a crash: nothing was stopped cleanly)."""
        self.folded.close()
        self.folded = FoldedLog(open_log(self.path, clock=self.clock))
        self.sender = self.new_sender()

    async def append(self, *events: AnyEvent) -> None:
        await self.folded.append(*events)

    async def plan(
        self, *reply_ids: str, chat: str = ALICE, purpose: ReplyPurpose = "reply"
    ) -> None:
        await self.append(
            *(
                ReplyPlanned(chat=chat, reply_id=r, purpose=purpose, text=f"text of {r}", wa_id=r)
                for r in reply_ids
            )
        )

    async def until_quiet(self, *, upto: float) -> None:
        """Send, moving the clock to each wake-up, until nothing is due before ``upto``."""
        while (wake := await self.sender.send_due()) <= upto:
            self.clock.now = max(self.clock.now, wake)

    def found(self, kind: type[AnyEvent]) -> list[Any]:
        return [r.event for r in self.folded.log.read() if isinstance(r.event, kind)]

    def sent(self) -> list[tuple[str, float]]:
        return [(s.wa_id, s.sent_at) for s in self.transport.sent]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.folded.close()


@pytest.mark.anyio
async def test_twenty_five_replies_planned_at_once_go_out_twenty_then_the_rest(
    rig: Rig,
) -> None:
    await rig.append(Status(state="connected"))
    ids = [f"R{n:02d}" for n in range(25)]
    # Planned across three chats, in this order: they must leave in it too.
    chats = [ALICE, BOB, OWNER]
    for n, reply_id in enumerate(ids):
        await rig.plan(reply_id, chat=chats[n % 3], purpose="reply" if n % 3 < 2 else "startup")

    wake = await rig.sender.send_due()
    # The first twenty planned go (chats are sent to side by side); the rest wait.
    assert sorted(wa for wa, _ in rig.sent()) == ids[:20]
    assert wake == NOW + 60  # when the first of them leaves the window

    await rig.until_quiet(upto=NOW + 3600)
    assert sorted(rig.sent()[20:]) == [(r, NOW + 60) for r in ids[20:]]
    for chat in chats:  # each chat's in the order planned
        mine = [m.wa_id for m in rig.transport.sent if m.message.to == chat]
        assert mine == sorted(mine)
    assert rig.found(ReplyFailed) == []


@pytest.mark.anyio
async def test_a_restarted_bot_counts_what_it_sent_just_before(rig: Rig) -> None:
    """A bot restarted in a loop cannot burst: the log's recent sends count."""
    await rig.append(Status(state="connected"))
    await rig.plan(*[f"A{n:02d}" for n in range(20)])
    await rig.sender.send_due()
    rig.clock.advance(30)
    rig.restart()
    await rig.append(Status(state="connected"))
    await rig.plan("B00", chat=BOB)

    wake = await rig.sender.send_due()

    assert len(rig.sent()) == 20
    assert wake == NOW + 60
    rig.clock.now = wake
    await rig.sender.send_due()
    assert rig.sent()[-1] == ("B00", NOW + 60)


@pytest.mark.anyio
async def test_a_stale_reply_waiting_for_the_pace_is_failed_without_a_slot(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, max_sends_per_minute=1)
    try:
        await rig.append(Status(state="connected"))
        await rig.plan("R1", "R2")
        await rig.sender.send_due()
        rig.clock.advance(CATCH_UP_MINUTES * 60)  # R2 is too late now
        await rig.plan("R3", chat=BOB)
        await rig.sender.send_due()

        assert [wa for wa, _ in rig.sent()] == ["R1", "R3"]
        [failed] = rig.found(ReplyFailed)
        assert (failed.reply_id, failed.final) == ("R2", True)
    finally:
        rig.folded.close()


# -- a restriction -------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_463_holds_replies_to_others_and_is_never_retried_in_a_loop(rig: Rig) -> None:
    await rig.append(Status(state="connected"))
    await rig.plan("R1")
    rig.transport.fail_next(TIMELOCK)

    await rig.sender.send_due()
    [restricted] = rig.found(AccountRestricted)
    assert (restricted.active, restricted.code, restricted.until) == (True, 463, None)
    assert restricted.reply_id == "R1"
    assert "463 (reach-out timelock)" in restricted.detail
    [failed] = rig.found(ReplyFailed)
    assert (failed.final, failed.error) == (
        False,
        "restricted: send failed: server returned error 463",
    )

    # Owed replies wait: more planned, minutes pass, nothing goes to anyone but the owner.
    await rig.plan("R2", chat=BOB)
    await rig.plan("N1", chat=OWNER, purpose="alert")
    await rig.until_quiet(upto=NOW + 20 * 60)
    assert [wa for wa, _ in rig.sent()] == ["N1"]
    assert len(rig.found(ReplyFailed)) == 1  # no further attempt


@pytest.mark.anyio
async def test_after_the_hold_one_reply_probes_and_a_success_ends_the_episode(
    rig: Rig,
) -> None:
    await rig.append(Status(state="connected"))
    await rig.plan("R1")
    rig.transport.fail_next(TIMELOCK)
    await rig.sender.send_due()
    await rig.plan("R2", chat=BOB)

    # No end was given: an hour at most, or the connection coming back, ends the hold.
    await rig.append(Status(state="disconnected"), Status(state="connected"))
    rig.transport.fail_next(TIMELOCK)  # still restricted: the probe alone is refused
    await rig.until_quiet(upto=NOW + 60)
    assert len(rig.transport.sent) == 0
    assert len(rig.found(AccountRestricted)) == 2
    assert [f.reply_id for f in rig.found(ReplyFailed)] == ["R1", "R1"]

    rig.clock.advance(outreach.UNKNOWN_END_HOLD - 60)  # R1 and R2 are too late by now
    await rig.plan("R3", chat=BOB)
    await rig.until_quiet(upto=NOW + 2 * 3600)

    assert [wa for wa, _ in rig.sent()] == ["R3"]
    stale = [f.reply_id for f in rig.found(ReplyFailed) if f.final]
    assert sorted(stale) == ["R1", "R2"]
    assert [r.active for r in rig.found(AccountRestricted)] == [True, True, False]
    assert account.newest(rig.folded.view.account) is None


@pytest.mark.anyio
async def test_a_restriction_with_an_end_releases_fresh_replies_when_it_passes(
    rig: Rig,
) -> None:
    await rig.append(Status(state="connected"))
    await rig.append(AccountRestricted(code=463, until=NOW + 600, detail="timelock"))
    await rig.plan("R1")
    await rig.plan("R2", chat=BOB)

    wake = await rig.sender.send_due()
    assert (rig.sent(), wake) == ([], NOW + 600)

    rig.clock.now = wake
    await rig.until_quiet(upto=NOW + 3600)
    # One probe first; once through, the rest follow.
    assert [wa for wa, _ in rig.sent()] == ["R1", "R2"]
    assert [r.active for r in rig.found(AccountRestricted)] == [True, False]


@pytest.mark.anyio
async def test_a_held_reply_that_goes_stale_is_failed_as_stale(rig: Rig) -> None:
    await rig.append(Status(state="connected"))
    await rig.append(AccountRestricted(code=463, until=NOW + 7200))
    await rig.plan("R1")

    wake = await rig.sender.send_due()
    assert wake == NOW + CATCH_UP_MINUTES * 60
    rig.clock.now = wake
    await rig.sender.send_due()

    [failed] = rig.found(ReplyFailed)
    assert (failed.reply_id, failed.final) == ("R1", True)
    assert failed.error.startswith("stale:")
    assert rig.sent() == []


@pytest.mark.anyio
async def test_a_463_to_the_owners_own_chat_restricts_nothing(rig: Rig) -> None:
    await rig.append(Status(state="connected"))
    await rig.plan("N1", chat=OWNER, purpose="alert")
    rig.transport.fail_next(TIMELOCK)

    await rig.until_quiet(upto=NOW + 3600)

    assert [wa for wa, _ in rig.sent()] == ["N1"]
    assert rig.found(AccountRestricted) == []
    assert [s.reply_id for s in rig.found(ReplySent)] == ["N1"]
