"""What the transport sends to WhatsApp, as the recording Go fake sees it."""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
from pathlib import Path
from typing import Any

import anyio
import pytest
from neonize.utils.enum import ChatPresence

from events.backends import open_log
from events.model import AccountRestricted, Quoted, ReplyPlanned, ReplySent, TransportStatus
from events.testing import FakeClock
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.daemon import FoldedLog, Sender, Settings
from pipeline.transport import Outgoing, TransportError
from pipeline.transport.neonize import _transport as transport_module
from tests.neonize_fakes import (
    ALICE,
    GROUP,
    LID,
    OWNER,
    SENT_AT,
    SENT_ID,
    WAIT,
    FakeGo,
    Session,
    running,
)

ALICE_JID = f"{ALICE}@s.whatsapp.net"
UNAVAILABLE = ("global", b"unavailable")


async def send_hi(transport: Any) -> None:
    await transport.send(Outgoing(to=ALICE_JID, text="hi"))


@pytest.mark.anyio
async def test_sends_a_plain_conversation_so_digits_after_at_stay_text(
    make_transport: Any,
) -> None:
    text = "Ask @491701111111 about it"
    async with running(*make_transport()) as session:
        await session.connected()
        receipt = await session.transport.send(Outgoing(to=GROUP, text=text))
        await session.transport.send(Outgoing(to=f"{LID}@lid", text="hi", reply_to="M1"))

    (group_jid, message), (lid_jid, _) = session.go.sent
    assert message.conversation == text
    assert not message.HasField("extendedTextMessage")  # where neonize puts mentions
    assert (group_jid.User, group_jid.Server) == ("120363000000000000", "g.us")
    assert (lid_jid.User, lid_jid.Server) == (LID, "lid")
    assert (receipt.wa_id, receipt.sent_at, receipt.to) == (SENT_ID, SENT_AT, None)
    assert session.transport.new_message_id() is None


@pytest.mark.anyio
async def test_a_reply_that_quotes_is_built_by_hand_without_mentions(make_transport: Any) -> None:
    quoted = Quoted(id="3EB0Q", text="what about @491702222222?", sender=f"{LID}@lid")
    async with running(*make_transport()) as session:
        await session.connected()
        await session.transport.send(
            Outgoing(to=GROUP, text="Ask @491702222222", quoted=quoted, reply_to="3EB0Q")
        )

    [(_, message)] = session.go.sent
    extended = message.extendedTextMessage
    assert extended.text == "Ask @491702222222"
    context = extended.contextInfo
    assert (context.stanzaID, context.participant) == ("3EB0Q", f"{LID}@lid")
    assert context.quotedMessage.conversation == "what about @491702222222?"
    assert list(context.mentionedJID) == []


@pytest.mark.anyio
async def test_the_receipt_says_where_whatsapp_delivered_a_phone_addressed_send(
    make_transport: Any,
) -> None:
    transport, go = make_transport()
    go.sent_chat = f"{LID}@lid"  # whatsmeow switched the phone JID to the LID
    async with running(transport, go) as session:
        await session.connected()
        receipt = await transport.send(Outgoing(to=ALICE_JID, text="hi"))

    assert receipt.to == f"{LID}@lid"


@pytest.mark.anyio
async def test_presence_never_leaves_the_owners_phone_silent(make_transport: Any) -> None:
    """unavailable on connect, composing/paused in the chat, unavailable again after."""
    async with running(*make_transport()) as session:
        await session.connected()
        await session.transport.typing(f"{LID}@lid", True)
        await session.transport.typing(f"{LID}@lid", True)  # refreshed while the LLM runs
        await session.transport.typing(f"{LID}@lid", False)

    assert session.go.calls == [
        UNAVAILABLE,
        ("chat", LID, ChatPresence.CHAT_PRESENCE_COMPOSING.value),
        ("chat", LID, ChatPresence.CHAT_PRESENCE_COMPOSING.value),
        ("chat", LID, ChatPresence.CHAT_PRESENCE_PAUSED.value),
        UNAVAILABLE,
    ]


@pytest.mark.anyio
async def test_read_receipts_name_the_messages_and_in_groups_their_sender(
    make_transport: Any,
) -> None:
    async with running(*make_transport()) as session:
        await session.connected()
        await session.transport.mark_read(ALICE_JID, ["M1", "M2"], None)
        await session.transport.mark_read(GROUP, ["G1"], f"{LID}@lid")

    assert session.go.calls[1:] == [
        ("read", ["M1", "M2"], ALICE, ""),
        ("read", ["G1"], "120363000000000000", LID),
    ]


@pytest.mark.anyio
async def test_a_presence_the_library_refuses_costs_nothing(make_transport: Any) -> None:
    transport, go = make_transport()

    async def refuse(*_: Any) -> bytes:
        return b"can't send presence without PushName set"

    go.SendPresence = refuse
    async with running(transport, go) as session:
        await session.connected()
        await transport.typing(ALICE_JID, False)  # no error
        await send_hi(transport)

    assert len(go.sent) == 1


@pytest.mark.anyio
async def test_a_failed_send_is_retryable(make_transport: Any) -> None:
    async with running(*make_transport()) as session:
        await session.connected()
        session.go.send_error = "server returned error 500"

        with pytest.raises(TransportError, match="error 500") as failure:
            await send_hi(session.transport)

    assert failure.value.retryable
    assert failure.value.code == 500


@pytest.mark.anyio
@pytest.mark.parametrize("code", [463, 479])
async def test_a_send_refused_for_a_restriction_is_not_retryable(
    make_transport: Any, code: int
) -> None:
    """whatsmeow's words (send.go: ``%w %d`` of ErrServerReturnedError), as neonize raises
    them: SendMessageError("server returned error 463")."""
    async with running(*make_transport()) as session:
        await session.connected()
        session.go.send_error = f"server returned error {code}"

        with pytest.raises(TransportError) as failure:
            await send_hi(session.transport)

    assert (failure.value.retryable, failure.value.code) == (False, code)
    assert str(failure.value) == f"send failed: server returned error {code}"


@pytest.mark.anyio
async def test_the_sender_holds_after_a_463_and_never_resends(
    make_transport: Any, tmp_path: Path
) -> None:
    """Through the daemon's sender: one refused send, recorded; no retry every 30 s."""
    clock = FakeClock(1_764_070_000.0)
    folded = FoldedLog(open_log(tmp_path / "store", clock=clock))
    config = config_from_dict(
        {
            "whatsapp": {"phone_number": OWNER},
            "monitored_entities": [{"type": "user", "phone": ALICE}],
        }
    )
    loaded = LoadedConfig(config=config, hash="h", path="app.json", secrets=Secrets(api_key=None))
    settings = Settings(loaded)
    try:
        async with running(*make_transport()) as session:
            await session.connected()
            session.go.send_error = "server returned error 463"
            sender = Sender(folded, session.transport, settings, clock=clock)
            await folded.append(
                TransportStatus(state="connected"),
                ReplyPlanned(chat=ALICE_JID, reply_id="R1", purpose="reply", text="hi"),
            )
            for _ in range(5):
                wake = await sender.send_due()
                clock.now = min(wake, clock.now + 600)
        events = [r.event for r in folded.log.read()]
    finally:
        folded.close()

    assert len(session.go.sent) == 1
    [restricted] = [e for e in events if isinstance(e, AccountRestricted)]
    assert (restricted.code, restricted.reply_id) == (463, "R1")
    assert not any(isinstance(e, ReplySent) for e in events)


@pytest.mark.anyio
async def test_a_send_while_offline_fails_retryably(
    make_transport: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport_module, "SEND_WAIT", 0)
    async with running(*make_transport()) as session:
        assert await session.statuses(1) == [("connecting", "")]

        with pytest.raises(TransportError, match="not connected") as failure:
            await send_hi(session.transport)

    assert failure.value.retryable
    assert session.go.sent == []


@pytest.mark.anyio
async def test_a_send_after_intake_stopped_offline_fails_at_once(make_transport: Any) -> None:
    """The daemon's grace period: run() is cancelled, the client still open."""
    transport, go = make_transport()
    session = Session(transport, go)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.run)
            assert await session.statuses(1) == [("connecting", "")]
            tg.cancel_scope.cancel()

        with anyio.fail_after(WAIT), pytest.raises(TransportError, match="not connected"):
            await send_hi(transport)  # nothing would reconnect: no waiting for SEND_WAIT
    finally:
        await transport.aclose()
        session.close()

    assert go.sent == []


def test_the_fake_answers_every_go_call_the_transport_makes() -> None:
    """A Go call the transport makes but the fake lacks would reach the real library."""
    used = {"Neonize", "Stop", "SendMessage", "SendChatPresence", "SendPresence", "MarkRead"}
    assert used <= {name for name in dir(FakeGo) if name[0].isupper()}
