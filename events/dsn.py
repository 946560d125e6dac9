"""A URL's password: found, hidden in URLs and in messages that may quote the URL.

Any URL with ``user:PASSWORD@`` or ``?password=``: a database's, an LLM or
audio endpoint behind an authenticating proxy, the WhatsApp proxy. Pure text
work (no URL parser, which raises on some malformed URLs and whose rebuilt URL
may differ from what the user wrote), and no psycopg import, so the config can
use it too. libpq quotes a DSN it cannot parse in its error message, password
and all: every message about a connection goes through ``hide`` before anyone
sees it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

# scheme://user:PASSWORD@… (a password holding "@", "/" or "?" must be %-encoded in a URL)
_IN_USER = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@?#\[]*:)(?P<secret>[^@/?#]*)(?=@)")
# …?password=PASSWORD&… in a URL, or password=PASSWORD in a key=value DSN
_IN_PARAMS = re.compile(r"(?P<head>(?:^|[?&\s])password\s*=\s*)(?P<secret>[^&#\s]*)", re.IGNORECASE)


def passwords(url: str | None) -> list[str]:
    """The passwords ``url`` carries, as written and %-decoded."""
    if not url:
        return []
    found = [m["secret"] for m in (_IN_USER.search(url), *_IN_PARAMS.finditer(url)) if m]
    return sorted({form for secret in found if secret for form in (secret, unquote(secret))})


def redacted(url: str) -> str:
    """``url`` with each password replaced by ``***``, everything else as written."""
    url = _IN_USER.sub(lambda m: m["head"] + "***", url, count=1)
    return _IN_PARAMS.sub(lambda m: m["head"] + "***", url)


def hide(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error message) without any password of ``url`` in it."""
    for secret in sorted(passwords(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
