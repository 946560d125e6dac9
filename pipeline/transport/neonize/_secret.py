"""Edits that phones encrypt with the original message's secret, decrypted here.

Current WhatsApp clients send an edit in a LID chat as a ``secretEncryptedMessage``
whose payload is AES-GCM under a key derived (HKDF-SHA256) from the original
message's ``messageContextInfo.messageSecret``, the original id, its sender
and the editor (whatsmeow's msgsecret.go; whatsmeow itself leaves this to
clients and neonize exposes nothing for it). Edits are allowed for about 20
minutes, so the secrets of recent messages are kept that long: in memory, and
for the messages the daemon recorded (monitored chats only) in the store's
secrets file too, so an edit after a restart is read. An edit of a message
never seen (or seen over 30 minutes ago) is recorded as unreadable.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pipeline.logs import get_logger
from pipeline.transport._secrets_file import KEEP_SECONDS, SecretsFile

_log = get_logger(__name__)

USE_CASE = b"Message Edit"
KEEP_COUNT = 5000


class _Original(NamedTuple):
    secret: bytes
    senders: tuple[str, ...]  # the original sender's ids (as sent, and its other form)
    seen_at: float


def edit_key(secret: bytes, orig_id: str, orig_sender: str, editor: str) -> bytes:
    """The AES key of an edit, as whatsmeow's generateMsgSecretKey derives it."""
    info = orig_id.encode() + orig_sender.encode() + editor.encode() + USE_CASE
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


class Secrets:
    """Message secrets of recent messages, to decrypt their edits.

    ``kept``: the store's file, read now and written for every secret remembered.
    """

    def __init__(
        self, kept: SecretsFile | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._kept = kept
        self._by_id: OrderedDict[str, _Original] = OrderedDict()
        for secret in kept.load() if kept is not None else ():
            self._by_id[secret.id] = _Original(secret.secret, secret.senders, secret.at)
        self._forget_old()

    def remember(
        self, msg_id: str, secret: bytes, senders: tuple[str | None, ...], chat: str
    ) -> None:
        """Keep the secret of a message the daemon recorded."""
        if not secret:
            return
        forms = tuple(s for s in senders if s)
        self._by_id[msg_id] = _Original(secret, forms, self._clock())
        self._by_id.move_to_end(msg_id)
        self._forget_old()
        if self._kept is not None:
            try:
                self._kept.add(msg_id, chat, forms, secret)
            except OSError as exc:  # the edit is then unreadable after a restart, no worse
                _log.warning("edit_secret_not_kept", error=exc.strerror or str(exc))

    def decrypt(self, msg_id: str, editor: str, iv: bytes, payload: bytes) -> bytes | None:
        """The edit's plaintext, or None when the original is unknown or nothing fits."""
        original = self._by_id.get(msg_id)
        if original is None:
            return None
        editors = [editor, *(s for s in original.senders if s != editor)]
        for sender in original.senders:
            for who in editors:
                key = edit_key(original.secret, msg_id, sender, who)
                try:
                    return AESGCM(key).decrypt(iv, payload, None)
                except InvalidTag:
                    continue
                except ValueError:  # an IV of a length AES-GCM does not take: not an edit
                    return None
        return None

    def _forget_old(self) -> None:
        cutoff = self._clock() - KEEP_SECONDS
        while self._by_id and (
            len(self._by_id) > KEEP_COUNT or next(iter(self._by_id.values())).seen_at < cutoff
        ):
            self._by_id.popitem(last=False)
