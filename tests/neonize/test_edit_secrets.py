"""An encrypted edit that arrives after a restart is read (issue 18.7).

A phone encrypts an edit with the original message's secret; the secrets of
monitored chats' recent messages are kept in ``STORE/edit-secrets.jsonl``
(0600), never an unmonitored chat's, dropped after the edit window, and
``forget`` removes a chat's. The edit is built with whatsmeow's real key
derivation and goes through neonize's callback entry point into the daemon's
intake, over two transports on one store, as across a restart.
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message, MessageContextInfo

from events.model import MessageEdited
from pipeline.transport import SecretsFile
from tests.e2e.harness import daemon_env, run_cli
from tests.neonize_fakes import ALICE, LID, dispatch, message_ev, secret_edit
from tests.neonize_wired import wired

pytestmark = pytest.mark.anyio
ALICE_JID = f"{ALICE}@s.whatsapp.net"
ALICE_LID = f"{LID}@lid"
STRANGER_LID = "555555555555555@lid"


def original(secret: bytes, *, chat: str = ALICE_LID, msg_id: str = "3EB0ORIG") -> Any:
    message = Message(
        conversation="teh first text", messageContextInfo=MessageContextInfo(messageSecret=secret)
    )
    return message_ev(
        message,
        chat=chat,
        sender=chat.replace("@", ":3@"),
        sender_alt=ALICE_JID if chat == ALICE_LID else "",
        msg_id=msg_id,
    )


def edit_of(secret: bytes) -> Any:
    encrypted = secret_edit(secret, "the first text", sender=ALICE_LID, editor=ALICE_LID)
    return message_ev(encrypted, chat=ALICE_LID, sender=f"{LID}:3@lid", msg_id="3EB0EDIT")


def edits(w: Any) -> list[str | None]:
    return [r.event.text for r in w.log.read() if isinstance(r.event, MessageEdited)]


async def test_an_edit_after_a_restart_is_read_with_the_kept_secret(tmp_path: Path) -> None:
    secret = os.urandom(32)
    async with wired(tmp_path) as w:
        await dispatch(w.client, original(secret))
    kept = tmp_path / "edit-secrets.jsonl"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert secret not in kept.read_bytes()  # base64 in a JSON line, not raw bytes

    async with wired(tmp_path) as w:  # a new process: nothing in memory
        await dispatch(w.client, edit_of(secret))
        assert edits(w) == ["the first text"]


async def test_without_the_file_the_edit_is_recorded_unreadable(tmp_path: Path) -> None:
    """What the kept secret changes: the same restart with the file gone."""
    secret = os.urandom(32)
    async with wired(tmp_path) as w:
        await dispatch(w.client, original(secret))
    (tmp_path / "edit-secrets.jsonl").unlink()

    async with wired(tmp_path) as w:
        await dispatch(w.client, edit_of(secret))
        assert edits(w) == [None]


async def test_an_unmonitored_chats_secret_is_never_written(tmp_path: Path) -> None:
    async with wired(tmp_path) as w:
        await dispatch(w.client, original(os.urandom(32), chat=STRANGER_LID, msg_id="X1"))
        await dispatch(w.client, original(os.urandom(32)))

    lines = (tmp_path / "edit-secrets.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert STRANGER_LID not in lines[0]
    assert '"id":"3EB0ORIG"' in lines[0]


async def test_secrets_older_than_the_edit_window_are_dropped(tmp_path: Path) -> None:
    secret = os.urandom(32)
    hour_ago = time.time() - 3600
    async with wired(tmp_path, secrets=SecretsFile(tmp_path, clock=lambda: hour_ago)) as w:
        await dispatch(w.client, original(secret))

    async with wired(tmp_path) as w:
        await dispatch(w.client, edit_of(secret))
        assert edits(w) == [None]
    assert (tmp_path / "edit-secrets.jsonl").read_bytes() == b""  # rewritten without it


async def test_forget_removes_the_chats_secrets(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    secret = os.urandom(32)
    async with wired(store) as w:
        await dispatch(w.client, original(secret))
    assert (store / "edit-secrets.jsonl").read_text()

    forgot = run_cli(
        ["forget", "--chat", ALICE, "--store", str(store)], cwd=tmp_path, env=daemon_env()
    )

    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.strip().endswith("; deleted 1 edit secret")
    assert (store / "edit-secrets.jsonl").read_text() == ""
    async with wired(store) as w:
        hello = message_ev(
            Message(conversation="hello again"),
            chat=ALICE_LID,
            sender_alt=ALICE_JID,
            msg_id="3EB0NEW",
        )
        await dispatch(w.client, hello)
        await dispatch(w.client, edit_of(secret))
        assert edits(w) == [None]
