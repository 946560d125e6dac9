"""The console's routes: HTML pages, ``/healthz``, ``/metrics``, the login and the logout.

Every route answers GET (and HEAD) only, except the POSTs of the login and
logout forms: no endpoint changes anything in the log. The logout ends the
browser's session on the server (``_sessions``), CSRF value checked. Pages
are built and rendered in worker threads of the console's own small limiter,
so a slow page never holds up the daemon's event loop or its appends (which
use anyio's default thread pool).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import anyio
import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from events.codec import CorruptEvent
from events.protocol import LogError
from pipeline.config import UnknownChat
from pipeline.logs import get_logger
from pipeline.tools._args import iso
from pipeline.tools.audit import effect_line
from pipeline.tools.web import _charts as charts
from pipeline.tools.web import _overview as overview
from pipeline.tools.web import _replays as replays
from pipeline.tools.web import _timeline as timeline
from pipeline.tools.web._console import Console, Snapshot
from pipeline.tools.web._format import ms, usd, when
from pipeline.tools.web._guard import (
    COOKIE,
    LOGIN,
    Guard,
    client_of,
    login_cookie,
    refused,
    same,
    session_of,
)
from pipeline.tools.web._metrics import CONTENT_TYPE, metrics_text
from pipeline.tools.web._sessions import Sessions
from projections import facts, reminders

log = get_logger("wabot.web")
HERE = Path(__file__).parent
TIMELINE_TURNS = 200  # turns on a chat's page unless ?all=1 (or ?at=SEQ of an older one)
_MAX_FORM_BODY = 4096
_WORKERS = 2


def chat_url(chat: str) -> str:
    return "/chats/" + quote(chat, safe="@.")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    @pass_context
    def local_time(ctx: Context, ts: float | None) -> str:
        return when(ts, ctx["zone"])

    @pass_context
    def chat_name(ctx: Context, chat: str) -> str:
        names: dict[str, str] = ctx["chat_names"]
        return names.get(chat) or chat

    env.filters.update(
        when=local_time, usd=usd, ms=ms, iso=iso, chat_url=chat_url, chat_name=chat_name
    )
    env.filters["effect"] = effect_line
    # A name (a push name is anyone's choice) between FSI and PDI where no <bdi> can go (a
    # <title>): its right-to-left override or Hebrew ends with it, not in what follows.
    env.filters["isolate"] = lambda text: f"\u2068{text}\u2069"
    env.filters["short"] = lambda text: text[:8] if text else ""
    env.filters["web_link"] = lambda url: urlsplit(url).scheme in ("http", "https")
    return env


class Pages:
    """Builds each page from a snapshot, in a worker thread."""

    def __init__(
        self, console: Console, token: str | None, sessions: Sessions | None = None
    ) -> None:
        self.console = console
        self.token = token
        self.sessions = Sessions() if sessions is None else sessions
        self.env = _environment()
        self.css = (HERE / "static" / "console.css").read_bytes()
        self.limiter = anyio.CapacityLimiter(_WORKERS)
        self.csrf: str | None = None  # the logout form's value; None: no session, no form

    def of(self, request: Request) -> Pages:
        """These pages as ``request``'s session sees them: with its logout form, if any."""
        session = session_of(request.headers, self.sessions) if self.token else None
        if session is None:
            return self
        bound = copy.copy(self)  # shares the console, templates and limiter
        bound.csrf = self.sessions.csrf(session)
        return bound

    async def run(self, build: Callable[..., Response], *args: Any) -> Response:
        try:
            return await anyio.to_thread.run_sync(build, *args, limiter=self.limiter)
        except (LogError, CorruptEvent) as exc:
            # The log went away or holds what this version cannot read: say so, in one line.
            log.warning("web_log_unreadable", error=str(exc))
            return PlainTextResponse(f"cannot read the log: {exc}\n", status_code=500)

    def render(self, snap: Snapshot, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        health = snap.health()
        common = {
            "zone": snap.zone,
            "health": health,
            "place": snap.place,
            "seq": snap.states.seq,
            "query": "",
            "chat_names": snap.names,
            "csrf": self.csrf,
        }
        html = self.env.get_template(name).render({**common, **context})
        return HTMLResponse(html, status_code=status)

    # -- pages ------------------------------------------------------------

    def chats(self) -> Response:
        with self.console.current() as snap:
            return self.render(snap, "chats.html", rows=overview.chat_rows(snap))

    def chat(self, chat: str, show_all: bool, at: int | None = None) -> Response:
        records = self.console.records(chat)
        with self.console.current() as snap:
            row = overview.chat_row(snap, chat)
            if row is None:
                return self._unknown_chat(snap, chat)
            limit = None if show_all else TIMELINE_TURNS
            view = timeline.build(records, chat, limit=limit, at=at)
            states = snap.states
            pending = reminders.of_chat(states.reminders, {chat})
            kept = facts.of_chat(states.facts, states.aliases, chat)
            return self.render(
                snap, "chat.html", row=row, timeline=view, reminders=pending, facts=kept
            )

    def turn(self, chat: str, seq: int) -> Response:
        records = self.console.records(chat)
        with self.console.current() as snap:
            row = overview.chat_row(snap, chat)
            view = timeline.build(records, chat)
            index = timeline.find_turn(view, seq)
            if row is None or index is None:
                return self.render(
                    snap, "error.html", 404, message=f"no turn at seq {seq} in {chat}"
                )
            turns = view.turns
            return self.render(
                snap,
                "turn.html",
                row=row,
                view=turns[index],
                previous=turns[index - 1].turn.seq if index > 0 else None,
                next=turns[index + 1].turn.seq if index + 1 < len(turns) else None,
                raw=[
                    (type(r.event).__name__, r.seq, timeline.raw_json(r))
                    for r in turns[index].related
                ],
            )

    def dashboard(self) -> Response:
        with self.console.current() as snap:
            board = overview.dashboard(snap)
            days = [p.day for p in board.days]
            drawn = {
                "messages": charts.bars(
                    "Messages in per day", days, [p.totals.messages_in for p in board.days]
                ),
                "replies": charts.bars(
                    "Replies out per day", days, [p.totals.replies_out for p in board.days]
                ),
                "spend": charts.bars(
                    "Spend per day", days, [p.totals.spend_usd for p in board.days], usd
                ),
                "latency": charts.lines(
                    "LLM latency per day",
                    days,
                    {"p50": [p.p50_ms for p in board.days], "p95": [p.p95_ms for p in board.days]},
                    ms,
                ),
                "failures": charts.hbars("Failures by reason", board.failures),
                "decisions": charts.hbars("Messages by decision", board.decisions),
            }
            return self.render(snap, "dashboard.html", board=board, charts=drawn)

    def search(self, query: str) -> Response:
        with self.console.current() as snap:
            hits = overview.search(snap, query)
            return self.render(
                snap, "search.html", query=query, hits=hits, too_short=len(query.strip()) < 2
            )

    def replay_list(self) -> Response:
        found = replays.experiments(self.console.store)
        with self.console.current() as snap:
            return self.render(snap, "replays.html", files=found, store=str(snap.store))

    def replay(self, name: str) -> Response:
        found = replays.experiment(self.console.store, name)
        with self.console.current() as snap:
            if found is None:
                return self.render(snap, "error.html", 404, message=f"no experiment {name!r}")
            return self.render(snap, "replay.html", file=found, diff=replays.word_diff)

    def healthz(self) -> Response:
        with self.console.current() as snap:
            health = snap.health()
        lines = [f"{'ok' if health.ok else 'unhealthy'}: {health.reason}"]
        lines += [f"{c.name}: {'ok' if c.ok else 'FAIL'}: {c.text}" for c in health.checks]
        return PlainTextResponse("\n".join(lines) + "\n", status_code=200 if health.ok else 503)

    def metrics(self) -> Response:
        size = self.console.log.size_bytes()
        with self.console.current() as snap:
            body = metrics_text(snap, size)
        return Response(body, media_type=CONTENT_TYPE)

    def login(self, given: str | None, scope: Scope) -> Response:
        if self.token is None:
            return RedirectResponse("/", status_code=303)
        with self.console.current() as snap:
            if given is None:
                return self.render(snap, "login.html", wrong=False)
            if not same(given, self.token):
                refused(scope, "form" if scope["method"] == "POST" else "url")
                return self.render(snap, "login.html", 401, wrong=True)
        response = RedirectResponse("/", status_code=303)
        login_cookie(response, self.sessions, secure=scope.get("scheme") == "https")
        return response

    def logout(self, session: str | None, given: str, scope: Scope) -> Response:
        """End ``session`` (its cookie opens nothing after) if the form's CSRF value is its."""
        if session is not None:
            if not self.sessions.csrf_ok(session, given):
                log.warning("web_logout_refused", client=client_of(scope))
                return PlainTextResponse("forbidden: not this session's form\n", status_code=403)
            self.sessions.end(session)
            log.info("web_logout", client=client_of(scope))
        response = RedirectResponse(LOGIN if self.token else "/", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    def _unknown_chat(self, snap: Snapshot, arg: str) -> Response:
        """A name or phone number for a known chat redirects to it; anything else is a 404."""
        if snap.config is not None:
            try:
                jid = snap.config.resolve_chat(arg)
            except UnknownChat:
                jid = None
            if jid is not None and jid != arg and overview.chat_row(snap, jid) is not None:
                return RedirectResponse(chat_url(jid), status_code=307)
        return self.render(snap, "error.html", 404, message=f"no chat {arg!r} in the log")


async def _form(request: Request) -> dict[str, str] | None:
    """A posted form's fields; None: a body too large for a login or logout form."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BODY:
            return None
    return dict(parse_qsl(body.decode("utf-8", "replace")))


def create_app(console: Console, *, token: str | None) -> Starlette:
    """The ASGI app over ``console``; ``token`` (WABOT_WEB_TOKEN) guards every route."""
    sessions = Sessions()
    pages = Pages(console, token, sessions)

    async def chats(request: Request) -> Response:
        view = pages.of(request)
        return await view.run(view.chats)

    async def chat(request: Request) -> Response:
        show_all = request.query_params.get("all") == "1"
        at = request.query_params.get("at", "")  # a search hit's seq: show its turn too
        # At most 18 digits: a seq (SQLite's int64), and never more than Python will read.
        seq = int(at) if at.isascii() and at.isdigit() and len(at) <= 18 else None
        view = pages.of(request)
        return await view.run(view.chat, request.path_params["chat"], show_all, seq)

    async def turn(request: Request) -> Response:
        p = request.path_params
        view = pages.of(request)
        return await view.run(view.turn, p["chat"], p["seq"])

    async def dashboard(request: Request) -> Response:
        view = pages.of(request)
        return await view.run(view.dashboard)

    async def search(request: Request) -> Response:
        view = pages.of(request)
        return await view.run(view.search, request.query_params.get("q", ""))

    async def replay_list(request: Request) -> Response:
        view = pages.of(request)
        return await view.run(view.replay_list)

    async def replay(request: Request) -> Response:
        view = pages.of(request)
        return await view.run(view.replay, request.path_params["name"])

    async def healthz(request: Request) -> Response:
        return await pages.run(pages.healthz)

    async def metrics(request: Request) -> Response:
        return await pages.run(pages.metrics)

    async def login(request: Request) -> Response:
        given = request.query_params.get("token")
        if request.method == "POST":
            form = await _form(request)
            if form is None:
                return PlainTextResponse("too large\n", status_code=413)
            given = form.get("token", "")
        return await pages.run(pages.login, given, request.scope)

    async def logout(request: Request) -> Response:
        form = await _form(request)
        if form is None:
            return PlainTextResponse("too large\n", status_code=413)
        session = session_of(request.headers, sessions)
        return pages.logout(session, form.get("csrf", ""), request.scope)

    async def css(request: Request) -> Response:
        return Response(pages.css, media_type="text/css", headers={"cache-control": "max-age=300"})

    routes = [
        Route("/", chats),
        Route("/chats/{chat}", chat),
        Route("/chats/{chat}/turns/{seq:int}", turn),
        Route("/dashboard", dashboard),
        Route("/search", search),
        Route("/replays", replay_list),
        Route("/replays/{name}", replay),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/static/console.css", css),
    ]
    guard = Middleware(Guard, token=token, sessions=sessions)
    return Starlette(routes=routes, middleware=[guard])
