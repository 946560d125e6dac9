"""The neonize transport wired to the daemon's real intake and a real SQLite log.

Events come in as from neonize's Go thread (``dispatch``, through its callback
entry point); what the daemon records goes to ``STORE/events.db``. Used by the
durability tests, in-process and in a child process that is killed with -9
(run as ``python -m tests.neonize_wired STORE COUNT``: it acknowledges each
message on stdout the moment the Go callback returns, as whatsmeow would).
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import io
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import neonize.aioze.events as neonize_events
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

from events.backends import open_log
from events.model import AccountRestricted, MessageReceived, TransportStatus
from events.protocol import LogWriter
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.daemon import FoldedLog, Intake, Settings
from pipeline.media import MediaStore
from pipeline.transport import SecretsFile
from pipeline.transport.neonize import NeonizeTransport
from tests.neonize_fakes import ALICE, OWNER, FakeGo, execute, message_ev

WAIT = 10.0


def loaded(*entities: dict[str, Any]) -> LoadedConfig:
    monitored = entities or ({"type": "user", "phone": ALICE, "name": "Alice"},)
    config = config_from_dict(
        {"whatsapp": {"phone_number": OWNER}, "monitored_entities": list(monitored)}
    )
    return LoadedConfig(config=config, hash="h", path="app.json", secrets=Secrets())


@dataclass
class Wired:
    transport: NeonizeTransport
    go: FakeGo
    log: LogWriter
    folded: FoldedLog
    intake: Intake

    @property
    def client(self) -> Any:
        return self.transport._client

    def received(self) -> list[str]:
        """The ids of the messages in the log, in log order."""
        return [r.event.msg_id for r in self.log.read() if isinstance(r.event, MessageReceived)]


@asynccontextmanager
async def wired(
    store: Path,
    *,
    config: LoadedConfig | None = None,
    wrap_log: Callable[[LogWriter], LogWriter] | None = None,
    **transport: Any,
) -> AsyncIterator[Wired]:
    """The transport running into intake, the gate open (a first status recorded)."""
    neonize_events.event_global_loop = None
    log = open_log(store)
    transport.setdefault("secrets", SecretsFile(store))
    made = NeonizeTransport(
        OWNER,
        session_db=str(store / "wa.db"),
        qr_png=store / "qr.png",
        terminal=io.StringIO(),
        backoff=(0.0,),
        **transport,
    )
    go = FakeGo()
    made._client._NewAClient__client = go
    folded = FoldedLog(wrap_log(log) if wrap_log is not None else log)
    intake = Intake(folded, Settings(config or loaded()), MediaStore.of(store))
    started = anyio.Event()

    async def status(event: TransportStatus | AccountRestricted) -> None:
        await intake.status(event)
        started.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(intake.run)
            tg.start_soon(made.run, intake.deliver, status)
            with anyio.fail_after(WAIT):
                await started.wait()
            yield Wired(made, go, log, folded, intake)
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await made.aclose()
        log.close()
        neonize_events.event_global_loop = None


def text(msg_id: str, words: str = "hello") -> Any:
    return message_ev(Message(conversation=words), msg_id=msg_id)


async def _acknowledge_forever(store: Path, count: int) -> None:
    async with wired(store) as w:

        def feed() -> None:
            for n in range(count):
                execute(w.client, text(f"M{n}"))  # as neonize's Go dispatch goroutine calls it
                # Returned: whatsmeow acknowledges now, and WhatsApp never resends.
                sys.stdout.write(f"acked M{n}\n")
                sys.stdout.flush()

        await anyio.to_thread.run_sync(feed)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(_acknowledge_forever, Path(sys.argv[1]), int(sys.argv[2]), backend="asyncio")
