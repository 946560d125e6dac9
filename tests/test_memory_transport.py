"""The in-memory transport other tests drive the daemon with."""

from __future__ import annotations

from functools import partial

import anyio
import pytest

from events.model import AccountRestricted, MessageReceived, TransportStatus
from pipeline.transport import Inbound, MemoryTransport, Outgoing, TransportError

GROUP = "120363000000000001@g.us"


@pytest.mark.anyio
async def test_push_waits_for_run_and_delivers_a_normalised_message() -> None:
    transport = MemoryTransport(clock=lambda: 50.0)
    statuses: list[TransportStatus | AccountRestricted] = []
    send, receive = anyio.create_memory_object_stream[Inbound](10)

    async def status(event: TransportStatus | AccountRestricted) -> None:
        statuses.append(event)

    async def deliver(inbound: Inbound) -> bool:
        await send.send(inbound)
        return True

    with send, receive, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(transport.push, GROUP, "early", sender="+49 170 1111111"))
            tg.start_soon(transport.run, deliver, status)
            early = await receive.receive()
            pushed = await transport.push(GROUP, "later", msg_id="M2", sender="491701111111:3@lid")
            later = await receive.receive()
            tg.cancel_scope.cancel()

    assert isinstance(early.event, MessageReceived)
    assert isinstance(later.event, MessageReceived)
    assert early.event.text == "early"
    assert early.event.sender == "491701111111@s.whatsapp.net"
    assert early.event.is_group
    assert early.event.sent_at == early.received_at == 50.0
    assert pushed == later
    assert (later.event.msg_id, later.event.sender) == ("M2", "491701111111@lid")
    assert statuses == [TransportStatus(state="connected", detail="memory")]


@pytest.mark.anyio
async def test_sends_are_recorded_and_awaitable_in_order() -> None:
    transport = MemoryTransport()
    async with anyio.create_task_group() as tg:
        # Runs only once next_sent() is already waiting.
        tg.start_soon(transport.send, Outgoing(to=GROUP, text="one", wa_id="W1", reply_to="M1"))
        with anyio.fail_after(5):
            first = await transport.next_sent()
        await transport.send(Outgoing(to=GROUP, text="two", purpose="vitality"))
        second = await transport.next_sent()

    assert (first.text, first.wa_id, first.message.reply_to) == ("one", "W1", "M1")
    assert second.text == "two"
    assert second.wa_id.startswith("MEM")
    assert transport.sent == [first, second]


@pytest.mark.anyio
async def test_scripted_failures_come_before_success() -> None:
    transport = MemoryTransport()
    transport.fail_next(TransportError("offline", retryable=True))
    with pytest.raises(TransportError, match="offline") as info:
        await transport.send(Outgoing(to=GROUP, text="x", wa_id="W1"))
    assert info.value.retryable
    receipt = await transport.send(Outgoing(to=GROUP, text="x", wa_id="W1"))
    assert receipt.wa_id == "W1"
    assert [s.wa_id for s in transport.sent] == ["W1"]
