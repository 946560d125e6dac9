"""The sender through a WhatsApp outage, in-process on a real log (issue 9, item 12).

Replies owed while the connection is down wait for it, go out when it is back
if they are still fresh, and are failed as stale (with the reason) if not;
one chat whose sends hang does not hold the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import msgspec
import pytest

from events.backends import open_log
from events.model import (
    AccountRestricted,
    AnyEvent,
    ReminderFired,
    ReplyFailed,
    ReplyPlanned,
    ReplyPurpose,
    ReplySent,
)
from events.model import TransportStatus as Status
from events.testing import FakeClock
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.daemon import FoldedLog, Sender, Settings, _sender
from pipeline.transport import MemoryTransport, TransportError

NOW = 1_764_070_000.0
OWNER = "491700000000@s.whatsapp.net"
ALICE = "491701111111@s.whatsapp.net"
BOB = "491702222222@s.whatsapp.net"
CATCH_UP_MINUTES = 30


class Rig:
    def __init__(self, path: Path, *, read_receipts: bool = False) -> None:
        self.clock = FakeClock(NOW)
        config = config_from_dict(
            {
                "whatsapp": {"phone_number": "491700000000", "read_receipts": read_receipts},
                "monitored_entities": [
                    {"type": "user", "jid": ALICE},
                    {"type": "user", "jid": BOB},
                    {"type": "self"},
                ],
                "polling": {"catch_up_minutes": CATCH_UP_MINUTES},
            }
        )
        loaded = LoadedConfig(
            config=config, hash="h", path="app.json", secrets=Secrets(api_key=None)
        )
        self.folded = FoldedLog(open_log(path, clock=self.clock))
        self.transport = MemoryTransport(clock=self.clock)
        self.sender = Sender(self.folded, self.transport, Settings(loaded), clock=self.clock)

    async def append(self, *events: AnyEvent) -> None:
        await self.folded.append(*events)

    def plan(
        self, reply_id: str, chat: str = ALICE, purpose: ReplyPurpose = "reply"
    ) -> ReplyPlanned:
        return ReplyPlanned(
            chat=chat,
            reply_id=reply_id,
            purpose=purpose,
            text=f"text of {reply_id}",
            wa_id=reply_id,
        )

    def found(self, kind: type[AnyEvent]) -> list[AnyEvent]:
        return [r.event for r in self.folded.log.read() if isinstance(r.event, kind)]

    def sent_ids(self) -> list[str]:
        return [s.wa_id for s in self.transport.sent]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.folded.close()


@pytest.mark.anyio
async def test_replies_owed_while_disconnected_go_out_when_the_connection_returns(
    rig: Rig,
) -> None:
    await rig.append(Status(state="connected"), Status(state="disconnected"))
    await rig.append(rig.plan("R1", ALICE), rig.plan("R2", BOB))

    await rig.sender.send_due()
    assert rig.sent_ids() == []  # nothing tried while down: no failure counted either

    rig.clock.advance((CATCH_UP_MINUTES - 1) * 60)  # a long outage, the replies still fresh
    await rig.append(Status(state="connected"))
    await rig.sender.send_due()

    assert sorted(rig.sent_ids()) == ["R1", "R2"]
    assert len(rig.found(ReplySent)) == 2
    assert rig.found(ReplyFailed) == []


@pytest.mark.anyio
async def test_replies_gone_stale_in_the_outage_are_failed_with_the_reason(rig: Rig) -> None:
    await rig.append(Status(state="disconnected"))
    await rig.append(rig.plan("R1", ALICE), rig.plan("V1", OWNER, purpose="vitality"))

    rig.clock.advance(CATCH_UP_MINUTES * 60 + 1)
    await rig.append(Status(state="connected"))
    await rig.sender.send_due()

    assert rig.sent_ids() == ["V1"]  # the owner's own notices go out late rather than never
    [failed] = rig.found(ReplyFailed)
    assert isinstance(failed, ReplyFailed)
    assert (failed.reply_id, failed.final) == ("R1", True)
    assert failed.error.startswith("stale:")
    assert f"catch_up_minutes ({CATCH_UP_MINUTES:g})" in failed.error


@pytest.mark.anyio
async def test_a_reminder_an_outage_kept_past_catch_up_goes_out_as_missed(rig: Rig) -> None:
    """Fired on time while WhatsApp was down: never sent late as if on time, nor lost."""
    await rig.append(Status(state="disconnected"))
    alices = ReminderFired(chat=ALICE, reminder_id="RA", reply_id="M1")
    await rig.append(alices, rig.plan("M1", ALICE, purpose="reminder"))
    rig.clock.advance(20 * 60)
    bobs = ReminderFired(chat=BOB, reminder_id="RB", reply_id="M2")
    await rig.append(bobs, rig.plan("M2", BOB, purpose="reminder"))
    rig.clock.advance((CATCH_UP_MINUTES - 20) * 60 + 1)  # Alice's is past catch_up, Bob's not
    await rig.append(Status(state="connected"))
    await rig.sender.send_due()
    await rig.sender.send_due()  # the line planned in place of Alice's

    sent = {m.chat: m.text for m in rig.transport.sent}
    assert sent == {
        BOB: "text of M2",
        ALICE: "Missed reminder (due 2025-11-25 12:26 CET, while I was offline): text of M1",
    }
    [failed] = rig.found(ReplyFailed)
    assert isinstance(failed, ReplyFailed)
    assert (failed.reply_id, failed.final) == ("M1", True)
    assert failed.error.startswith("stale:")
    assert len(rig.found(ReplySent)) == 2


@pytest.mark.anyio
async def test_a_reminder_held_by_a_restriction_says_so_not_that_the_bot_was_offline(
    rig: Rig,
) -> None:
    """Connected and running all along, but WhatsApp's 463 timelock held the reminder past
    catch_up: the missed line says the account was restricted, and waits out the hold."""
    await rig.append(Status(state="connected"))
    await rig.append(AccountRestricted(code=463, until=NOW + 2 * 3600))
    fired = ReminderFired(chat=ALICE, reminder_id="RA", reply_id="M1")
    await rig.append(fired, rig.plan("M1", ALICE, purpose="reminder"))
    rig.clock.advance(CATCH_UP_MINUTES * 60 + 1)
    await rig.sender.send_due()
    assert rig.sent_ids() == []  # failed as stale; its missed line is held in turn

    rig.clock.now = NOW + 2 * 3600 + 1
    await rig.sender.send_due()
    [line] = [m.text for m in rig.transport.sent]
    assert line == (
        "Missed reminder (due 2025-11-25 12:26 CET, while WhatsApp held my messages:"
        " the account was restricted): text of M1"
    )
    assert "offline" not in line


@pytest.mark.anyio
async def test_an_owner_commands_answer_is_an_answer_failed_stale_and_never_held(
    rig: Rig,
) -> None:
    """An answer to /status an outage kept past catch_up_minutes is news no more; while
    the account is restricted it still goes to the owner's chat."""
    await rig.append(Status(state="disconnected"), rig.plan("C1", OWNER, purpose="command"))
    rig.clock.advance(CATCH_UP_MINUTES * 60 + 1)
    await rig.append(Status(state="connected"))
    await rig.sender.send_due()
    [failed] = rig.found(ReplyFailed)
    assert isinstance(failed, ReplyFailed)
    assert (failed.reply_id, failed.final) == ("C1", True)

    await rig.append(AccountRestricted(code=463, until=rig.clock.now + 3600))
    await rig.append(rig.plan("R1", ALICE), rig.plan("C2", OWNER, purpose="command"))
    await rig.sender.send_due()
    assert rig.sent_ids() == ["C2"]  # Alice's reply is held, the owner's answer is not


@pytest.mark.anyio
async def test_a_fresh_reply_is_retried_past_any_count_of_failures(rig: Rig) -> None:
    await rig.append(Status(state="connected"), rig.plan("R1"))
    offline = TransportError("not connected to WhatsApp", retryable=True)
    rig.transport.fail_next(*[offline] * 8)

    for _ in range(9):
        wake = await rig.sender.send_due()
        rig.clock.now = max(rig.clock.now, wake)

    assert rig.sent_ids() == ["R1"]
    failures = rig.found(ReplyFailed)
    assert len(failures) == 8
    assert not any(isinstance(f, ReplyFailed) and f.final for f in failures)


@pytest.mark.anyio
async def test_the_owners_notices_give_up_after_a_few_failures(rig: Rig) -> None:
    await rig.append(Status(state="connected"), rig.plan("S1", OWNER, purpose="startup"))
    rig.transport.fail_next(*[TransportError("send failed", retryable=True)] * 5)

    for _ in range(6):
        wake = await rig.sender.send_due()
        rig.clock.now = max(rig.clock.now, min(wake, rig.clock.now + 3600))

    assert rig.sent_ids() == []
    finals = [f for f in rig.found(ReplyFailed) if isinstance(f, ReplyFailed) and f.final]
    assert len(finals) == 1


@pytest.mark.anyio
async def test_a_chat_whose_sends_hang_does_not_hold_the_others(rig: Rig) -> None:
    await rig.append(Status(state="connected"), rig.plan("R1", ALICE), rig.plan("R2", BOB))
    gate = rig.transport.stall(ALICE)

    async with anyio.create_task_group() as tg:
        tg.start_soon(rig.sender.send_due)
        with anyio.fail_after(5):
            first = await rig.transport.next_sent()
        assert first.wa_id == "R2"  # Bob's, planned after Alice's
        gate.set()
        with anyio.fail_after(5):
            second = await rig.transport.next_sent()

    assert second.wa_id == "R1"


@pytest.mark.anyio
async def test_one_chats_messages_keep_their_order_through_a_failure(rig: Rig) -> None:
    await rig.append(Status(state="connected"), rig.plan("P1"), rig.plan("P2"))
    rig.transport.fail_next(TransportError("send failed", retryable=True))

    wake = await rig.sender.send_due()
    assert rig.sent_ids() == []  # P2 waits behind P1
    rig.clock.now = wake
    await rig.sender.send_due()

    assert rig.sent_ids() == ["P1", "P2"]


@pytest.mark.parametrize("fault", ["never returns", "fails"])
@pytest.mark.anyio
async def test_marking_the_answered_message_read_never_holds_the_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    monkeypatch.setattr(_sender, "_READ_DEADLINE", 0.05)
    rig = Rig(tmp_path, read_receipts=True)
    read: list[str] = []

    async def mark_read(chat: str, ids: list[str], sender: str | None) -> None:
        read.extend(ids)
        if fault == "fails":
            raise TransportError("read receipt refused", retryable=True)
        await anyio.Event().wait()  # a call WhatsApp never answers

    monkeypatch.setattr(rig.transport, "mark_read", mark_read)
    answer = msgspec.structs.replace(rig.plan("R1"), trigger_ids=["M1"])
    await rig.append(Status(state="connected"), answer, rig.plan("R2"))
    with anyio.fail_after(5):
        await rig.sender.send_due()
    assert read == ["M1"]
    assert rig.sent_ids() == ["R1", "R2"]
    assert [e.wa_id for e in rig.found(ReplySent) if isinstance(e, ReplySent)] == ["R1", "R2"]
    rig.folded.close()
