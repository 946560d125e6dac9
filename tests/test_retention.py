"""A rotation, however short the retention, keeps what the schedule, the owner's
identity and each person's ids need, and nothing kept comes back to life."""

from pathlib import Path

from events.backends import open_log
from events.model import (
    MessageReceived,
    MessageSkipped,
    ReplyPlanned,
    ReplyPurpose,
    ReplySent,
    TransportStatus,
)
from events.protocol import LogWriter
from events.testing import FakeClock
from events.units import DAY
from projections import aliases, retention
from projections.runner import Runner

OWNER = "491700000000@s.whatsapp.net"
ALICE = "491701111111@s.whatsapp.net"
ALICE_LID = "123456789012345@lid"
OWNER_LID = "987654321098765@lid"


def _rotate(log: LogWriter, now: float, days: float) -> None:
    states = Runner.start(log).states
    selection = retention.rotation(states.retention, days, now, aliases.teachers(states.aliases))
    log.compact("rotation", selection)


def _sent(purpose: ReplyPurpose, reply_id: str) -> tuple[ReplyPlanned, ReplySent]:
    return (
        ReplyPlanned(chat=OWNER, reply_id=reply_id, purpose=purpose, text="hello"),
        ReplySent(chat=OWNER, reply_id=reply_id, wa_id=f"W{reply_id}", sent_at=0),
    )


def test_a_rotation_of_seconds_keeps_the_newest_of_what_is_still_needed(tmp_path: Path) -> None:
    clock = FakeClock()
    log = open_log(tmp_path, clock=clock)
    log.append(*_sent("vitality", "V1"))
    log.append(TransportStatus(state="connected", me_pn=OWNER, me_lid=OWNER_LID))
    clock.advance(DAY)
    log.append(*_sent("startup", "S1"))
    log.append(*_sent("vitality", "V2"))
    log.append(TransportStatus(state="disconnected"))
    before = Runner.start(log).states
    clock.advance(DAY)

    _rotate(log, clock.now, 0.0001)

    after = Runner.start(log).states
    assert after.schedule.last_vitality == before.schedule.last_vitality > 0
    assert after.schedule.last_startup == before.schedule.last_startup > 0
    assert after.outbox.planned == {}  # what was sent stays sent
    assert (after.identity.me_pn, after.identity.me_lid) == (OWNER, OWNER_LID)
    assert after.connection.state == "disconnected"
    left = [r.event for r in log.read() if isinstance(r.event, ReplyPlanned)]
    assert [e.reply_id for e in left] == ["S1", "V2"]  # the older check-in went


def test_the_message_that_ties_a_persons_ids_is_kept_and_stays_decided(tmp_path: Path) -> None:
    clock = FakeClock()
    log = open_log(tmp_path, clock=clock)
    tie = MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE_LID, text="hi", via=ALICE_LID)
    log.append(tie, MessageSkipped(chat=ALICE, msg_id="M1", reason="takeover"))
    log.append(MessageReceived(chat=ALICE, msg_id="M2", sender=ALICE, text="plain"))
    clock.advance(DAY)

    _rotate(log, clock.now, 0.0001)

    after = Runner.start(log).states
    assert aliases.canonical(after.aliases, ALICE_LID) == ALICE
    assert [r.event for r in log.read() if isinstance(r.event, MessageReceived)] == [tie]
    # Its decision went with the rotation: it must not be answered again.
    assert after.queue.chats == {}
