"""The stdio transport over real OS pipes: docs/stdio.md."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import pytest
import structlog
from structlog.typing import EventDict, WrappedLogger

from events.model import (
    AccountRestricted,
    MessageEdited,
    MessageReceived,
    MessageUndecryptable,
    ReceiptState,
    ReplyDelivered,
    TimerChanged,
    TransportStatus,
)
from pipeline.config import MediaConfig
from pipeline.transport import Inbound, Outgoing, StdioTransport, TransportError
from pipeline.transport import _stdio as stdio_module

ALICE = "491701111111@s.whatsapp.net"
NOW = 1_764_000_000.0
REPO = Path(__file__).resolve().parent.parent


class StdinPipe:
    """A real pipe: the transport reads one end, the test writes lines into the other."""

    def __init__(self) -> None:
        read_fd, self._write_fd = os.pipe()
        self.reader = os.fdopen(read_fd, "rb")
        self._open = True

    def write(self, *lines: str | dict[str, Any]) -> None:
        text = "".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines)
        self.write_bytes(text.encode())

    def write_bytes(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._write_fd, view) :]

    async def write_large(self, data: bytes) -> None:
        """From a worker thread: the reader hands lines over through the event loop."""
        await anyio.to_thread.run_sync(self.write_bytes, data)

    def close(self) -> None:
        if self._open:
            os.close(self._write_fd)
            self._open = False


class Received(NamedTuple):
    event: MessageReceived
    received_at: float


class Harness:
    """Runs a transport in a task group and collects what it delivers."""

    def __init__(self, transport: StdioTransport) -> None:
        self.transport = transport
        self.statuses: list[TransportStatus | AccountRestricted] = []
        self._send, self._receive = anyio.create_memory_object_stream[Inbound](100)
        self.finished = False

    async def run(self) -> None:
        await self.transport.run(self._deliver, self._status)
        self.finished = True

    async def _deliver(self, inbound: Inbound) -> bool:
        await self._send.send(inbound)
        return True

    async def _status(self, status: TransportStatus | AccountRestricted) -> None:
        self.statuses.append(status)

    async def next_inbound(self) -> Received:
        """The next message delivered (edits and revokes have their own tests)."""
        with anyio.fail_after(5):
            inbound = await self._receive.receive()
        assert isinstance(inbound.event, MessageReceived), inbound
        return Received(inbound.event, inbound.received_at)

    async def next_fact(self) -> Inbound:
        with anyio.fail_after(5):
            return await self._receive.receive()

    def close(self) -> None:
        self._send.close()
        self._receive.close()


@asynccontextmanager
async def running(transport: StdioTransport) -> AsyncIterator[Harness]:
    """The transport's ``run`` in a task group, cancelled when the block ends."""
    harness = Harness(transport)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(harness.run)
            yield harness
            tg.cancel_scope.cancel()
    finally:
        harness.close()


@pytest.fixture
def stdin() -> Iterator[StdinPipe]:
    pipe = StdinPipe()
    yield pipe
    pipe.close()
    pipe.reader.close()


MakeTransport = Callable[..., StdioTransport]


@pytest.fixture
async def make_transport(stdin: StdinPipe) -> AsyncIterator[MakeTransport]:
    made: list[StdioTransport] = []

    def make(stdout: Any = None) -> StdioTransport:
        out = io.BytesIO() if stdout is None else stdout
        made.append(
            StdioTransport("+49 170 0000000", stdin=stdin.reader, stdout=out, clock=lambda: NOW)
        )
        return made[-1]

    yield make
    for transport in made:
        await transport.aclose()


def warnings_in(logs: list[EventDict]) -> list[str]:
    return [e["event"] for e in logs if e["log_level"] == "warning"]


@pytest.mark.anyio
async def test_minimal_line_gets_the_documented_defaults(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    async with running(make_transport()) as harness:
        stdin.write({"chat": ALICE, "text": "hi"})
        inbound = await harness.next_inbound()

    event = inbound.event
    assert re.fullmatch(r"[0-9A-F]{32}", event.msg_id)
    assert (event.chat, event.sender, event.text) == (ALICE, ALICE, "hi")
    assert (event.from_me, event.is_group, event.kind) == (False, False, "text")
    assert (event.push_name, event.sender_alt, event.quoted_id) == (None, None, None)
    assert event.sent_at == inbound.received_at == NOW
    assert harness.statuses == [TransportStatus(state="connected", detail="stdio")]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("timestamp", "sent_at"), [(1764070000, 1764070000.0), (1764070000123, 1764070000.123)]
)
async def test_full_line_is_normalised(
    stdin: StdinPipe, make_transport: MakeTransport, timestamp: int, sent_at: float
) -> None:
    line = {
        "type": "message",
        "id": "M1",
        "chat": "120363000000000001@g.us",
        "sender": "491702222222:5@s.whatsapp.net",
        "text": "look",
        "from_me": False,
        "timestamp": timestamp,
        "push_name": "Bob",
        "sender_alt": "1234567890@lid",
        "kind": "image",
        "quoted_id": "Q9",
        "mentions": ["+49 170 1111111"],
    }
    async with running(make_transport()) as harness:
        stdin.write(line)
        event = (await harness.next_inbound()).event

    assert event.msg_id == "M1"
    assert event.is_group
    assert event.sender == "491702222222@s.whatsapp.net"
    assert event.sender_alt == "1234567890@lid"
    assert (event.kind, event.quoted_id, event.push_name) == ("image", "Q9", "Bob")
    assert event.mentions == [ALICE]
    assert event.sent_at == pytest.approx(sent_at)


@pytest.mark.anyio
async def test_from_me_without_sender_is_sent_by_the_owner(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    async with running(make_transport()) as harness:
        stdin.write({"chat": ALICE, "text": "typed on my phone", "from_me": True})
        event = (await harness.next_inbound()).event

    assert event.from_me
    assert event.sender == "491700000000@s.whatsapp.net"


@pytest.mark.anyio
async def test_bad_lines_are_reported_once_and_skipped(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with running(make_transport()) as harness:
            stdin.write(
                '{"chat": "broken',
                "[1, 2]",
                '{"text": "no chat"}',
                '{"chat": "alice@example.com", "text": "private words"}',
                '{"chat": "491701111111", "text": 5}',
                '{"chat": "491701111111", "text": "x", "from_me": "yes"}',
                '{"type": "reaction", "id": "M0"}',
                "   ",
                '{"chat": "491701111111", "text": "still here"}',
            )
            inbound = await harness.next_inbound()

    assert inbound.event.text == "still here"
    warnings = warnings_in(logs)
    assert [w.split(":", 1)[0] for w in warnings] == [f"stdin line {n}" for n in range(1, 8)]
    assert "invalid JSON" in warnings[0]
    assert "Expected `object`, got `array`" in warnings[1]
    assert "missing required field `chat`" in warnings[2]
    assert "not a WhatsApp JID" in warnings[3]
    assert "`$.text`" in warnings[4]
    assert "`$.from_me`" in warnings[5]
    assert "unsupported type 'reaction'" in warnings[6]
    assert all("\n" not in w for w in warnings)
    assert not any("private words" in w for w in warnings)


@pytest.mark.anyio
async def test_warnings_quote_no_content_of_the_line(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    """A bad line may come from a chat that is not monitored: nothing of it is written."""
    with structlog.testing.capture_logs() as logs:
        async with running(make_transport()) as harness:
            stdin.write(
                {"chat": ALICE, "text": "x", "kind": "zq secret kind"},
                {"chat": ALICE, "text": "x", "sender": "zq secret sender"},
                {"chat": ALICE, "text": "x", "mentions": [ALICE, "zq secret mention"]},
                {"chat": "zq secret chat", "text": "x"},
                {"type": "t" * 1000},
                {"chat": ALICE, "text": "x", "id": "i" * 257},
                {"type": "edit", "chat": "zq secret chat", "id": "M1", "text": "x"},
                {"type": "status", "state": "connected", "me_lid": "zq secret lid"},
                {"chat": ALICE, "text": "x", "quoted": {"id": "Q", "sender": "zq secret"}},
                {"type": "revoke", "chat": ALICE, "id": "r" * 257},
                {"chat": ALICE, "text": "still here"},
            )
            await harness.next_inbound()

    assert warnings_in(logs) == [
        "stdin line 1: invalid message (invalid value - at `$.kind`), skipped",
        "stdin line 2: sender is not a WhatsApp JID, skipped",
        "stdin line 3: mentions[1] is not a WhatsApp JID, skipped",
        "stdin line 4: chat is not a WhatsApp JID, skipped",
        f"stdin line 5: unsupported type '{'t' * 32}…', skipped",
        "stdin line 6: invalid message (Expected `str` of length <= 256 - at `$.id`), skipped",
        "stdin line 7: chat is not a WhatsApp JID, skipped",
        "stdin line 8: me_lid is not a WhatsApp JID, skipped",
        "stdin line 9: quoted.sender is not a WhatsApp JID, skipped",
        "stdin line 10: invalid revoke (Expected `str` of length <= 256 - at `$.id`), skipped",
    ]


@pytest.mark.anyio
async def test_the_third_rounds_lines_are_checked_like_the_rest(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    """``expiration``, ``undecryptable`` and an unreadable edit (docs/stdio.md)."""
    with structlog.testing.capture_logs() as logs:
        async with running(make_transport()) as harness:
            stdin.write(
                {"chat": ALICE, "text": "x", "expiration": -1},
                {"type": "undecryptable", "chat": ALICE, "id": "U1", "reason": "zq secret"},
                {"type": "undecryptable", "chat": ALICE, "id": "U2", "sender": "zq secret"},
                {"type": "undecryptable", "chat": ALICE, "id": "U3", "reason": "view_once"},
                {"type": "edit", "chat": ALICE, "id": "M1", "text": None, "edit_id": "E1"},
            )
            withheld = (await harness.next_fact()).event
            edit = (await harness.next_fact()).event

    assert warnings_in(logs) == [
        "stdin line 1: invalid message (Expected `int` >= 0 - at `$.expiration`), skipped",
        "stdin line 2: invalid undecryptable (invalid value - at `$.reason`), skipped",
        "stdin line 3: invalid undecryptable (Object missing required field `reason`), skipped",
    ]
    assert withheld == MessageUndecryptable(
        chat=ALICE, msg_id="U3", sender=ALICE, reason="view_once", sent_at=NOW
    )
    assert edit == MessageEdited(chat=ALICE, msg_id="M1", text=None, edit_id="E1")


@pytest.mark.anyio
async def test_an_edit_line_says_who_sent_it(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    """``sender``, ``sender_alt``, ``from_me`` become the editor (docs/stdio.md); a line
    without them leaves it unsaid, and a sender that is no JID skips the line."""
    group = "120363000000000000@g.us"
    with structlog.testing.capture_logs() as logs:
        async with running(make_transport()) as harness:
            stdin.write(
                {"type": "edit", "chat": group, "id": "M1", "text": "a", "sender": "zq"},
                {
                    "type": "edit",
                    "chat": group,
                    "id": "M1",
                    "text": "b",
                    "sender": "555555555555555:2@lid",
                    "sender_alt": "491702222222@s.whatsapp.net",
                },
                {"type": "edit", "chat": ALICE, "id": "M2", "text": "c", "from_me": True},
                {"type": "edit", "chat": ALICE, "id": "M3", "text": "d"},
            )
            edits = [(await harness.next_fact()).event for _ in range(3)]

    assert warnings_in(logs) == ["stdin line 1: sender is not a WhatsApp JID, skipped"]
    assert [
        (e.text, e.editor, e.editor_alt, e.from_me) for e in edits if isinstance(e, MessageEdited)
    ] == [
        ("b", "555555555555555@lid", "491702222222@s.whatsapp.net", False),
        ("c", "491700000000@s.whatsapp.net", None, True),
        ("d", None, None, False),
    ]


FULL_LINE: dict[str, Any] = {
    "type": "message",
    "id": "M1",
    "chat": ALICE,
    "sender": ALICE,
    "text": "hello",
    "push_name": "Alice",
    "sender_alt": "1234567890@lid",
    "kind": "text",
    "quoted_id": "Q1",
    "mentions": [ALICE],
}
BAD_BYTES = b"a\xff\xfeb"


def with_invalid_utf8(field: str, chat: str) -> bytes:
    """``FULL_LINE`` for ``chat`` with invalid UTF-8 inside the string of ``field``."""
    line = {**FULL_LINE, "chat": chat}
    line[field] = ["@@"] if field == "mentions" else "@@"
    return json.dumps(line).encode().replace(b"@@", BAD_BYTES) + b"\n"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.anyio
@pytest.mark.parametrize("chat", [ALICE, "491709999999@s.whatsapp.net"], ids=["known", "stranger"])
async def test_invalid_utf8_in_any_field_is_one_warning(
    stdin: StdinPipe, make_transport: MakeTransport, chat: str
) -> None:
    fields = [f for f in FULL_LINE if f != "type"] + ["type"]
    with structlog.testing.capture_logs() as logs:
        async with running(make_transport()) as harness:
            for field in fields:
                stdin.write_bytes(with_invalid_utf8(field, chat))
            stdin.write({"chat": ALICE, "text": "still here"})
            inbound = await harness.next_inbound()

    assert inbound.event.text == "still here"
    assert warnings_in(logs) == [
        f"stdin line {n}: invalid JSON (not UTF-8 text), skipped" for n in range(1, len(fields) + 1)
    ]


@pytest.mark.anyio
async def test_deeply_nested_json_anywhere_is_one_warning(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    deep = nested(10_000)
    lines = [
        deep,
        '{"a": ' + deep + "}",
        '{"type": ' + deep + "}",
        f'{{"chat": "{ALICE}", "text": "x", "mentions": {deep}}}',
        f'{{"chat": "{ALICE}", "text": "x", "extra": {{"y": {deep}}}}}',
    ]
    with structlog.testing.capture_logs() as logs:
        async with running(make_transport()) as harness:
            await stdin.write_large("".join(line + "\n" for line in lines).encode())
            stdin.write({"chat": ALICE, "text": "still here"})
            inbound = await harness.next_inbound()

    assert inbound.event.text == "still here"
    warnings = warnings_in(logs)
    assert [w.split(":", 1)[0] for w in warnings] == [f"stdin line {n}" for n in range(1, 6)]
    assert warnings[0] == "stdin line 1: invalid line (Expected `object`, got `array`), skipped"
    too_deep = "invalid JSON (nested too deeply), skipped"
    assert [w.split(": ", 1)[1] for w in warnings[1:]] == [
        too_deep,
        "invalid line (Expected `str`, got `array` - at `$.type`), skipped",
        too_deep,
        too_deep,
    ]


@pytest.mark.anyio
async def test_a_line_longer_than_the_limit_is_skipped_unread(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    limit = stdio_module.MAX_LINE_BYTES
    long_text = "x" * (limit - 100)
    at_limit = json.dumps({"chat": ALICE, "text": long_text}).encode()
    too_long = json.dumps({"chat": ALICE, "text": long_text + "y" * 200}).encode()
    assert len(at_limit) <= limit < len(too_long)
    with structlog.testing.capture_logs() as logs:
        async with running(make_transport()) as harness:
            await stdin.write_large(too_long + b"\n" + at_limit + b"\n")
            stdin.write({"chat": ALICE, "text": "after"})
            first = await harness.next_inbound()
            second = await harness.next_inbound()
            stdin.write_bytes(too_long)  # the last line, without its newline
            stdin.close()
            with anyio.fail_after(5):
                while len(warnings_in(logs)) < 2:
                    await anyio.sleep(0.01)

    assert (len(first.event.text), second.event.text) == (len(long_text), "after")
    assert warnings_in(logs) == [
        f"stdin line {n}: longer than {limit // 2**20} MiB, skipped" for n in (1, 4)
    ]


@pytest.mark.anyio
async def test_end_of_input_keeps_run_alive_until_cancelled(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    stdin_closed = anyio.Event()

    def on_stdin_closed(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        if event_dict["event"].startswith("stdin closed"):
            stdin_closed.set()
        return event_dict

    stdout = io.BytesIO()
    with structlog.testing.capture_logs(processors=[on_stdin_closed]):
        async with running(make_transport(stdout)) as harness:
            stdin.write({"chat": ALICE, "text": "last words"})
            stdin.close()
            assert (await harness.next_inbound()).event.text == "last words"
            with anyio.fail_after(5):
                await stdin_closed.wait()
            await anyio.wait_all_tasks_blocked()
            assert not harness.finished
            await harness.transport.send(
                Outgoing(to=ALICE, text="bye", wa_id="W1", purpose="debug")
            )

    assert not harness.finished
    assert json.loads(stdout.getvalue())["id"] == "W1"


@pytest.mark.anyio
async def test_send_writes_exactly_one_flushed_line(make_transport: MakeTransport) -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)  # an unflushed line fails the read instead of hanging
    with os.fdopen(write_fd, "wb") as stdout:
        transport = make_transport(stdout)
        receipt = await transport.send(
            Outgoing(to=ALICE, text="grüß dich\nzweite Zeile", wa_id="WB1", reply_to="M1")
        )
        first = os.read(read_fd, 65536)
        await transport.send(Outgoing(to=ALICE, text="morning", purpose="vitality"))
        second = os.read(read_fd, 65536)
    os.close(read_fd)

    assert receipt == ("WB1", NOW, None)
    assert first.count(b"\n") == 1
    assert first.endswith(b"\n")
    assert list(json.loads(first).items()) == [
        ("type", "sent"),
        ("id", "WB1"),
        ("chat", ALICE),
        ("text", "grüß dich\nzweite Zeile"),
        ("reply_to", "M1"),
        ("purpose", "reply"),
        ("quoted", None),
    ]
    sent = json.loads(second)
    assert re.fullmatch(r"WB[0-9A-F]{20}", sent["id"])
    assert sent["reply_to"] is None
    assert sent["purpose"] == "vitality"


@pytest.mark.anyio
async def test_send_to_a_closed_stdout_is_a_final_transport_error(
    make_transport: MakeTransport,
) -> None:
    stdout = io.BytesIO()
    stdout.close()
    transport = make_transport(stdout)
    with pytest.raises(TransportError, match="cannot write to stdout") as info:
        await transport.send(Outgoing(to=ALICE, text="x"))
    assert not info.value.retryable


@pytest.mark.anyio
async def test_send_after_aclose_fails(make_transport: MakeTransport) -> None:
    transport = make_transport()
    await transport.aclose()
    with pytest.raises(TransportError, match="closed"):
        await transport.send(Outgoing(to=ALICE, text="x"))


@pytest.mark.anyio
async def test_ids_and_owner(make_transport: MakeTransport) -> None:
    transport = make_transport()
    ids = {transport.new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"WB[0-9A-F]{20}", i) for i in ids)
    assert transport.owner_jid == "491700000000@s.whatsapp.net"


def test_importing_the_stdio_transport_does_not_import_neonize() -> None:
    code = "import sys, pipeline.transport; print('neonize' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.anyio
async def test_a_send_fails_retryably_while_the_last_status_line_said_disconnected(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    out = io.BytesIO()
    transport = make_transport(out)
    message = Outgoing(to=ALICE, text="hi", wa_id="W1")
    async with running(transport) as harness:
        stdin.write({"type": "status", "state": "disconnected"}, {"chat": ALICE, "text": "a"})
        await harness.next_inbound()  # the status line before it has been read
        with pytest.raises(TransportError, match="not connected") as info:
            await transport.send(message)
        assert info.value.retryable
        stdin.write({"type": "status", "state": "connected"}, {"chat": ALICE, "text": "b"})
        await harness.next_inbound()
        await transport.send(message)

    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == ["W1"]


# -- undecryptable, receipt, expiration (docs/stdio.md) ---------------------------


@pytest.mark.anyio
async def test_an_undecryptable_line_is_a_fact_with_no_content(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    line = {"type": "undecryptable", "chat": "491701111111", "id": "M9", "reason": "view_once"}
    async with running(make_transport()) as harness:
        stdin.write(
            line,
            {**line, "id": "M10", "from_me": True, "timestamp": 1764070000123, "detail": "x"},
        )
        first, second = (await harness.next_fact()).event, (await harness.next_fact()).event

    assert first == MessageUndecryptable(
        chat=ALICE, msg_id="M9", sender=ALICE, reason="view_once", sent_at=NOW
    )
    assert isinstance(second, MessageUndecryptable)
    assert (second.from_me, second.sender) == (True, "491700000000@s.whatsapp.net")
    assert second.sent_at == pytest.approx(1764070000.123)
    assert second.detail == "x"


@pytest.mark.anyio
async def test_a_receipt_line_is_one_fact_per_named_message(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    async with running(make_transport()) as harness:
        stdin.write(
            {"type": "receipt", "chat": ALICE, "ids": ["WB1", "WB2", "WB1"], "state": "read"},
            {"type": "receipt", "chat": ALICE, "ids": ["WB3"], "state": "delivered",
             "timestamp": 1764070000},
        )  # fmt: skip
        facts = [(await harness.next_fact()).event for _ in range(3)]

    def receipt(wa_id: str, state: ReceiptState, at: float) -> ReplyDelivered:
        return ReplyDelivered(chat=ALICE, reply_id="", wa_id=wa_id, state=state, at=at)

    assert facts == [
        receipt("WB1", "read", NOW),
        receipt("WB2", "read", NOW),
        receipt("WB3", "delivered", 1764070000.0),
    ]


@pytest.mark.anyio
async def test_bad_third_round_lines_are_one_warning_each(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with running(make_transport()) as harness:
            stdin.write(
                {"type": "undecryptable", "chat": ALICE, "id": "M9", "reason": "secret"},
                {"type": "undecryptable", "chat": ALICE, "reason": "view_once"},
                {"type": "receipt", "chat": ALICE, "ids": [], "state": "read"},
                {"type": "receipt", "chat": ALICE, "ids": ["WB1"], "state": "seen"},
                {"chat": ALICE, "text": "x", "expiration": -1},
                {"chat": ALICE, "text": "still here", "expiration": 86400},
            )
            inbound = await harness.next_inbound()

    assert (inbound.event.text, inbound.event.expiration) == ("still here", 86400)
    warnings = warnings_in(logs)
    assert [w.split(":", 1)[0] for w in warnings] == [f"stdin line {n}" for n in range(1, 6)]
    assert "invalid undecryptable (invalid value" in warnings[0]
    assert "missing required field `id`" in warnings[1]
    assert "`$.ids`" in warnings[2]
    assert "invalid receipt (invalid value" in warnings[3]
    assert "`$.expiration`" in warnings[4]


@pytest.mark.anyio
async def test_a_timer_line_sets_or_switches_off_the_chats_timer(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    """docs/stdio.md, ``timer``: a TimerChanged, 0 included; a timer out of range is
    one warning and the line is skipped."""
    with structlog.testing.capture_logs() as logs:
        async with running(make_transport()) as harness:
            stdin.write(
                {"type": "timer", "chat": ALICE, "id": "T1", "expiration": 0},
                {"type": "timer", "chat": ALICE, "id": "T2", "expiration": -1},
                {"type": "timer", "chat": ALICE, "id": "T3", "expiration": 86400},
            )
            changes = [(await harness.next_fact()).event for _ in range(2)]

    assert changes == [
        TimerChanged(chat=ALICE, msg_id="T1", expiration=0),
        TimerChanged(chat=ALICE, msg_id="T3", expiration=86400),
    ]
    [warning] = warnings_in(logs)
    assert warning.startswith("stdin line 2: invalid timer (")
    assert "`$.expiration`" in warning


@pytest.mark.anyio
@pytest.mark.parametrize(("expiration", "shown"), [(604800, 604800), (0, None), (None, None)])
async def test_a_sent_line_carries_the_chats_timer_only_when_it_is_on(
    make_transport: MakeTransport, expiration: int | None, shown: int | None
) -> None:
    stdout = io.BytesIO()
    transport = make_transport(stdout)
    await transport.send(Outgoing(to=ALICE, text="hi", wa_id="WB1", expiration=expiration))

    sent = json.loads(stdout.getvalue())
    assert sent.get("expiration") == shown
    assert ("expiration" in sent) == (shown is not None)


@pytest.mark.anyio
async def test_a_restricted_status_line_reports_the_restriction(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    """docs/stdio.md, ``status``: the account restricted, not the connection lost."""
    out = io.BytesIO()
    transport = make_transport(out)
    async with running(transport) as harness:
        stdin.write(
            {"type": "status", "state": "restricted", "until": 1_765_000_000_000, "code": 463,
             "detail": "reach-out timelock"},
            {"type": "status", "state": "restricted", "until": None},
            {"type": "status", "state": "connected", "detail": "back", "until": 5, "code": 1},
            {"chat": ALICE, "text": "a"},
        )  # fmt: skip
        await harness.next_inbound()
        await transport.send(Outgoing(to=ALICE, text="hi", wa_id="W1"))  # still connected

    assert harness.statuses[1:] == [
        AccountRestricted(code=463, until=1_765_000_000.0, detail="reach-out timelock"),
        AccountRestricted(),
        TransportStatus(state="connected", detail="back"),  # the other states as before
    ]
    assert json.loads(out.getvalue())["id"] == "W1"


def test_the_readme_states_the_line_limit_the_transport_keeps() -> None:
    """README promises what is read past; the limit must carry a default-size attachment."""
    limit = stdio_module.MAX_LINE_BYTES
    readme = " ".join((REPO / "README.md").read_text().split())
    stated = {int(n) for n in re.findall(r"more than (\d+) MiB \(read past", readme)}
    assert stated == {limit // 2**20}
    default_attachment = MediaConfig().max_bytes  # as base64 in media.data
    line = json.dumps({"chat": ALICE, "media": {"kind": "image", "data": ""}})
    assert len(line) + 4 * -(-default_attachment // 3) <= limit


@pytest.mark.anyio
async def test_lines_that_come_in_one_read_keep_their_order_and_numbers(
    stdin: StdinPipe, make_transport: MakeTransport
) -> None:
    lines = [{"chat": ALICE, "text": f"m{n}"} for n in range(200)]
    with structlog.testing.capture_logs() as logs:
        async with running(make_transport()) as harness:
            stdin.write(*lines[:100], "not json", "", *lines[100:])  # one write, one read
            texts = [(await harness.next_inbound()).event.text for _ in lines]
    assert texts == [f"m{n}" for n in range(200)]
    assert [w.split(":")[0] for w in warnings_in(logs)] == ["stdin line 101"]


@pytest.mark.anyio
async def test_a_full_stdout_stalls_no_other_task_and_loses_no_line(
    make_transport: MakeTransport,
) -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_fd, b"x" * 4096)  # stdout's reader stopped draining
    os.set_blocking(write_fd, True)
    with os.fdopen(write_fd, "wb") as stdout:
        transport = make_transport(stdout)
        sent: list[str] = []

        async def send(text: str) -> None:
            sent.append((await transport.send(Outgoing(to=ALICE, text=text)))[0])

        async with anyio.create_task_group() as tg:
            tg.start_soon(send, "first")
            tg.start_soon(transport.typing, ALICE, True)
            await anyio.wait_all_tasks_blocked()
            assert sent == []  # both wait on stdout in threads, and this task goes on
            drained = await anyio.to_thread.run_sync(_drain, read_fd, 2)
    os.close(read_fd)
    out = [json.loads(line) for line in drained.lstrip(b"x").splitlines()]
    # Two tasks wrote at once: each line whole, in whichever order their threads ran.
    assert sorted((o["type"], o.get("text") or "") for o in out) == [
        ("presence", ""),
        ("sent", "first"),
    ]
    assert len(sent) == 1


def _drain(fd: int, lines: int) -> bytes:
    """Read ``fd`` until ``lines`` newlines came."""
    data = b""
    while data.count(b"\n") < lines:
        data += os.read(fd, 65536)
    return data


@pytest.mark.anyio
@pytest.mark.parametrize("size", [10, 4096, 100_000])
async def test_a_line_of_any_size_is_written_whole(
    make_transport: MakeTransport, size: int
) -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as stdout:
        transport = make_transport(stdout)
        async with anyio.create_task_group() as tg:
            tg.start_soon(transport.send, Outgoing(to=ALICE, text="y" * size))
            drained = await anyio.to_thread.run_sync(_drain, read_fd, 1)
    os.close(read_fd)
    assert json.loads(drained)["text"] == "y" * size
