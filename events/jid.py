"""WhatsApp ids in one normal form, so every layer compares the same strings.

A chat or person is ``user@server`` without device or agent suffixes: phone
numbers live on ``s.whatsapp.net``, hidden ids on ``lid``, groups on ``g.us``.
"""

from __future__ import annotations

import functools
import re

PN_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"
GROUP_SERVER = "g.us"
_SERVERS = {PN_SERVER, LID_SERVER, GROUP_SERVER, "broadcast", "newsletter"}
_ALIASES = {"c.us": PN_SERVER}
_PHONE_NOISE = re.compile(r"[\s\-().]")
# ASCII only: \d would also take Arabic-Indic or fullwidth digits, which no JID has.
_DIGITS = re.compile(r"[0-9]{5,20}")
_USER = re.compile(r"[0-9A-Za-z._-]{1,64}")


class InvalidJid(ValueError):
    """Raised with a message fit to show the user as is."""


def phone_digits(phone: str) -> str:
    """``+49 170-111`` -> ``49170111``; raises if anything but digits remain."""
    digits = _PHONE_NOISE.sub("", phone.strip()).removeprefix("+")
    if not _DIGITS.fullmatch(digits):
        raise InvalidJid(f"{phone!r} is not a phone number (digits 0-9 with country code)")
    return digits


# Every inbound message and every send normalizes the same few ids, several times
# each; bounded, since ids come from outside (an invalid one raises, uncached).
@functools.lru_cache(maxsize=4096)
def normalize(value: str) -> str:
    """A JID, ``user:device@server`` or bare phone number in canonical form."""
    text = value.strip()
    if "@" not in text:
        return f"{phone_digits(text)}@{PN_SERVER}"
    user, _, server = text.rpartition("@")
    server = _ALIASES.get(server.lower(), server.lower())
    user = user.split(":", 1)[0]
    if server in (PN_SERVER, LID_SERVER):
        user = user.split(".", 1)[0]
    if server not in _SERVERS or not _USER.fullmatch(user):
        raise InvalidJid(f"{value!r} is not a WhatsApp JID (user@server)")
    if server == PN_SERVER and not _DIGITS.fullmatch(user):
        raise InvalidJid(f"{value!r}: a phone JID needs digits before @{PN_SERVER}")
    return f"{user}@{server}"


def is_group(jid: str) -> bool:
    return jid.endswith("@" + GROUP_SERVER)


def user_part(jid: str) -> str:
    return jid.partition("@")[0]
