"""The daemon's side of issue 18, items 4 and 12, in-process on a real log with an
injected clock: unreadable messages filed like messages, receipts matched to the bot's
sends (also when they overtake the record of the send), and the undelivered alert
falling due by the clock alone."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from events.backends import open_log
from events.model import (
    AnyEvent,
    MessageReceived,
    MessageUndecryptable,
    OwnerAlerted,
    ReceiptState,
    ReplyDelivered,
    ReplyPlanned,
    ReplySent,
    TransportStatus,
)
from events.testing import FakeClock
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.daemon import FoldedLog, Intake, Settings
from pipeline.daemon._alerter import Alerter
from pipeline.daemon._receipts import PARK_SECONDS
from pipeline.daemon._replies import Ids
from pipeline.media import MediaStore
from pipeline.transport import Fact, Inbound

NOW = 1_764_070_000.0
OWNER = "491700000000@s.whatsapp.net"
ALICE = "491701111111@s.whatsapp.net"
ALICE_LID = "123456789012345@lid"
STRANGER = "491709999999@s.whatsapp.net"
LIMIT = 30 * 60


class Rig:
    def __init__(self, path: Path) -> None:
        self.clock = FakeClock(NOW)
        config = config_from_dict(
            {
                "whatsapp": {"phone_number": "491700000000"},
                "monitored_entities": [{"type": "user", "jid": ALICE}, {"type": "self"}],
                "alerts": {"undelivered_minutes": LIMIT / 60},
            }
        )
        loaded = LoadedConfig(
            config=config, hash="h", path="app.json", secrets=Secrets(api_key=None)
        )
        settings = Settings(loaded)
        self.folded = FoldedLog(open_log(path / "store", clock=self.clock))
        self.intake = Intake(self.folded, settings, MediaStore.of(path), clock=self.clock)
        self.alerter = Alerter(self.folded, settings, Ids(new_id, lambda: None), clock=self.clock)

    async def deliver(self, fact: Fact) -> None:
        await self.intake.deliver(Inbound(fact, self.clock()))

    def found(self, kind: type[AnyEvent]) -> list[AnyEvent]:
        return [r.event for r in self.folded.log.read() if isinstance(r.event, kind)]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.folded.close()


def sent(wa_id: str, chat: str = ALICE) -> ReplySent:
    return ReplySent(chat=chat, reply_id=f"r-{wa_id}", wa_id=wa_id, sent_at=NOW)


def receipt(wa_id: str, state: ReceiptState = "delivered", chat: str = ALICE_LID) -> ReplyDelivered:
    return ReplyDelivered(chat=chat, reply_id="", wa_id=wa_id, state=state, at=NOW)


# -- unreadable messages ----------------------------------------------------------


@pytest.mark.anyio
async def test_an_unreadable_message_is_filed_like_a_message_from_the_same_ids(rig: Rig) -> None:
    by_lid = MessageUndecryptable(
        chat=ALICE_LID, msg_id="V1", sender=ALICE_LID, sender_alt=ALICE, reason="view_once"
    )
    await rig.deliver(by_lid)
    await rig.deliver(by_lid)  # redelivered: a no-op
    await rig.deliver(
        MessageUndecryptable(chat=STRANGER, msg_id="X1", sender=STRANGER, reason="unavailable")
    )
    # Readable after all (WhatsApp's retry worked): the message itself is still recorded.
    await rig.deliver(MessageReceived(chat=ALICE, msg_id="V1", sender=ALICE, text="hi"))

    [filed] = rig.found(MessageUndecryptable)
    assert isinstance(filed, MessageUndecryptable)
    assert (filed.chat, filed.via) == (ALICE, ALICE_LID)
    assert (filed.msg_id, filed.reason) == ("V1", "view_once")
    assert len(rig.found(MessageReceived)) == 1
    assert rig.intake.dropped == 1  # the stranger's: counted, never stored


# -- receipts -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_receipt_is_filed_under_the_reply_it_reports_on(rig: Rig) -> None:
    await rig.folded.append(sent("W1"))
    await rig.deliver(receipt("W1"))  # WhatsApp names the chat by LID
    await rig.deliver(receipt("W1"))  # told again

    assert rig.found(ReplyDelivered) == [
        ReplyDelivered(chat=ALICE, reply_id="r-W1", wa_id="W1", state="delivered", at=NOW)
    ]


@pytest.mark.anyio
async def test_a_receipt_that_overtakes_the_record_of_its_send_waits_for_it(rig: Rig) -> None:
    rig.folded.watch()
    async with anyio.create_task_group() as tg:
        tg.start_soon(rig.intake.receipts.run)
        await rig.deliver(receipt("W1", "read"))  # the send is not recorded yet
        await rig.deliver(receipt("NOT-OURS"))
        assert rig.found(ReplyDelivered) == []
        waker = rig.folded.waker()
        await rig.folded.append(sent("W1"))
        with anyio.fail_after(5):
            while not rig.found(ReplyDelivered):
                await waker.wait(1.0)
        tg.cancel_scope.cancel()

    [kept] = rig.found(ReplyDelivered)
    assert isinstance(kept, ReplyDelivered)
    assert (kept.reply_id, kept.state, kept.chat) == ("r-W1", "read", ALICE)
    rig.clock.advance(PARK_SECONDS)
    await rig.intake.receipts.retry()
    assert rig.intake.receipts.dropped == 1  # no send of the bot's: never stored
    assert len(rig.found(ReplyDelivered)) == 1


# -- the undelivered alert --------------------------------------------------------------


@pytest.mark.anyio
async def test_the_undelivered_alert_falls_due_by_the_clock_alone(rig: Rig) -> None:
    await rig.folded.append(sent("W1"))
    await rig.deliver(receipt("W1"))
    rig.clock.advance(60)
    await rig.folded.append(sent("W2"))  # never confirmed

    rig.clock.advance(LIMIT - 1)
    await rig.alerter.send_due()
    assert rig.found(OwnerAlerted) == []
    rig.clock.advance(1)  # no event arrives: only time passes
    await rig.alerter.send_due()
    await rig.alerter.send_due()

    [alerted] = rig.found(OwnerAlerted)
    assert isinstance(alerted, OwnerAlerted)
    assert (alerted.kind, alerted.ok) == ("undelivered", True)
    [note] = rig.found(ReplyPlanned)
    assert isinstance(note, ReplyPlanned)
    assert (note.chat, note.purpose) == (OWNER, "alert")
    assert f"sent to {ALICE} 30 min ago" in note.text


@pytest.mark.anyio
async def test_no_alert_while_the_transport_never_reported_a_receipt(rig: Rig) -> None:
    await rig.folded.append(sent("W1"), sent("W2"))
    rig.clock.advance(10 * LIMIT)
    await rig.alerter.send_due()
    assert rig.found(OwnerAlerted) == []


@pytest.mark.anyio
async def test_receipts_kept_by_whatsapp_during_an_outage_get_their_time_after_it(
    rig: Rig,
) -> None:
    await rig.folded.append(TransportStatus(state="connected"), sent("W1"))
    await rig.deliver(receipt("W1"))
    await rig.folded.append(sent("W2"), TransportStatus(state="disconnected"))
    rig.clock.advance(2 * LIMIT)
    await rig.alerter.send_due()  # down: no receipt could have come
    await rig.folded.append(TransportStatus(state="connected"))
    rig.clock.advance(LIMIT - 1)
    await rig.alerter.send_due()  # back, but WhatsApp may still be handing them over
    assert undelivered(rig) == []
    rig.clock.advance(1)
    await rig.alerter.send_due()
    assert undelivered(rig) == ["undelivered"]
    # The outage itself was its own alert (the webhook's), not this one.
    assert [a.kind for a in rig.found(OwnerAlerted) if isinstance(a, OwnerAlerted)] == [
        "connection_down",
        "undelivered",
    ]


def undelivered(rig: Rig) -> list[str]:
    alerted = rig.found(OwnerAlerted)
    return [a.kind for a in alerted if isinstance(a, OwnerAlerted) and a.kind == "undelivered"]


def new_id() -> str:
    return uuid.uuid4().hex
