"""Who may see the console, and the headers every answer carries.

With ``WABOT_WEB_TOKEN`` set, every request needs it: as ``Authorization:
Bearer TOKEN`` (scripts, Prometheus) or as the session cookie that a login sets
(``/login``, or ``?token=`` on any page, which then redirects to the page
without it). The cookie holds a random session id the server keeps
(``_sessions``), not the token, so ``/logout`` can end it; the token is
compared in constant time. Without a token the server listens on loopback
only, and answers only requests addressed to a loopback name, so a web page
elsewhere cannot read it through DNS rebinding.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.config import is_loopback
from pipeline.logs import get_logger
from pipeline.tools.web._sessions import Sessions

log = get_logger("wabot.web")

COOKIE = "wabot_session"
LOGIN = "/login"
STATIC = "/static/"  # the stylesheet, which the login page needs too
# No script may run, nothing may load from elsewhere, no page may frame the console.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
# Machines ask these; a person's browser is sent to the login page instead.
_MACHINE_PATHS = ("/healthz", "/metrics")


def same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def refused(scope: Scope, via: str) -> None:
    """Log a wrong token (never the token): each refusal once, however it was given."""
    log.warning("web_login_refused", via=via, client=client_of(scope))


def login_cookie(response: Response, sessions: Sessions, *, secure: bool) -> None:
    """A new session, its id in the cookie (HttpOnly: no page can read it)."""
    response.set_cookie(
        COOKIE, sessions.start(), httponly=True, samesite="strict", secure=secure, path="/"
    )


def session_of(headers: Headers, sessions: Sessions) -> str | None:
    """The open session the request's cookie names; None: none (or one that ended)."""
    cookie = _cookie(headers.get("cookie", ""), COOKIE)
    return cookie if cookie is not None and sessions.valid(cookie) else None


class Guard:
    """ASGI middleware: the token (or the loopback host check) and the security headers."""

    def __init__(self, app: ASGIApp, *, token: str | None, sessions: Sessions) -> None:
        self.app = app
        self.token = token
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        refused = self._refusal(scope)
        if refused is not None:
            await refused(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        if self.token is None:
            host = _host_name(headers.get("host", ""))
            if not is_loopback(host):
                return PlainTextResponse(
                    "This console answers only to localhost addresses; "
                    "set WABOT_WEB_TOKEN to reach it by another name.\n",
                    status_code=421,
                )
            return None
        path: str = scope["path"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if "token" in query and path != LOGIN:
            return self._token_login(scope, path, query)
        if path == LOGIN or path.startswith(STATIC) or self._authorized(headers):
            return None
        if _bearer(headers) is not None:
            refused(scope, "bearer")
        if path in _MACHINE_PATHS or "text/html" not in headers.get("accept", ""):
            return PlainTextResponse(
                "unauthorized: send Authorization: Bearer $WABOT_WEB_TOKEN\n",
                status_code=401,
                headers={"www-authenticate": 'Bearer realm="wabot"'},
            )
        return RedirectResponse(LOGIN, status_code=303)

    def _authorized(self, headers: Headers) -> bool:
        assert self.token is not None
        given = _bearer(headers)
        if given is not None and same(given, self.token):
            return True
        return session_of(headers, self.sessions) is not None

    def _token_login(self, scope: Scope, path: str, query: dict[str, str]) -> Response:
        assert self.token is not None
        if not same(query.pop("token"), self.token):
            refused(scope, "url")
            return PlainTextResponse("wrong token\n", status_code=401)
        # "//host" would send the browser elsewhere: keep the redirect on this server.
        target = "/" + path.lstrip("/") + (f"?{urlencode(query)}" if query else "")
        response = RedirectResponse(target, status_code=303)
        login_cookie(response, self.sessions, secure=scope.get("scheme") == "https")
        return response


def _host_name(host: str) -> str:
    """The name in a Host header, without the port (``[::1]:8765`` -> ``::1``)."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bearer(headers: Headers) -> str | None:
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def client_of(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}" if client else "unknown"
