"""The console's login sessions: random ids the server holds, so a logout can end one.

A session cookie is a random id, never derived from the token: the server
keeps the ids it handed out (by their SHA-256, so a lookup's timing says
nothing about an id) and forgets one at logout, after which its cookie opens
nothing. They live in the process's memory: a restart of ``run`` or ``web``
ends every session (each browser logs in again). At most ``MAX_SESSIONS``
are kept, the oldest dropped first, so repeated logins cannot grow memory.

The logout form carries a CSRF value, an HMAC of the session id under a key
of this process: another site's page (or another port of the same host, which
the ``SameSite`` cookie does not tell apart) cannot know it, so it cannot end
a session by posting the form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict

MAX_SESSIONS = 1000


def _digest(session: str) -> bytes:
    return hashlib.sha256(session.encode()).digest()


class Sessions:
    """The open sessions of one console process; safe from its threads and event loop."""

    def __init__(self) -> None:
        self._open: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(32)  # the CSRF values' key, this process's alone

    def start(self) -> str:
        """A new session's id, for the cookie of a browser that gave the token."""
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._open[_digest(session)] = None
            while len(self._open) > MAX_SESSIONS:
                self._open.popitem(last=False)
        return session

    def valid(self, session: str) -> bool:
        with self._lock:
            return _digest(session) in self._open

    def end(self, session: str) -> None:
        with self._lock:
            self._open.pop(_digest(session), None)

    def csrf(self, session: str) -> str:
        """The value the logout form of ``session`` carries."""
        return hmac.new(self._key, session.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: str, given: str) -> bool:
        return hmac.compare_digest(self.csrf(session).encode(), given.encode())
