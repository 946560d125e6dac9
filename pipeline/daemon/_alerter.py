"""Alerts for the owner, out of band: a JSON POST to ``alerts.webhook``, and the owner's chat.

What is owed comes from the ``alerts`` projection, so an alert is given once
per episode across restarts; ``undelivered`` falls due with time, so every
pass asks the clock too. The webhook (ntfy, Slack, a Matrix hook, any
HTTP endpoint) is tried a few times, following up to ``_REDIRECTS`` redirects
with the same POST; where WhatsApp still works (the budget, the LLM) the
owner's own chat gets the alert too. Either way the outcome is recorded as
``OwnerAlerted``, which settles the alert. One the webhook did not take is
posted again later, by the clock (``alerts.retries``: backoff, for a day at
most, until the episode ends), each try recorded; the owner's chat is not
told twice. A connection down for ``alerts.connection_down_minutes`` is owed
by the clock too: the alerter wakes when it falls due, whatever else happens
meanwhile.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import anyio
import httpx

from events.model import AlertKind, AnyEvent, OwnerAlerted
from pipeline.daemon._dispatch import Dispatcher, backoff
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._replies import Ids, owner_note
from pipeline.daemon._settings import Settings
from pipeline.logs import get_logger
from projections import alerts, configs, connection, deliveries

log = get_logger("wabot.alerts")

ATTEMPTS = 3
_BACKOFF = (1.0, 4.0)
_TIMEOUT = 10.0
# Redirects followed with the same POST (httpx's own would turn a 301 or 302 into a
# GET, which a webhook may answer 200 without taking anything); 303 says "not here".
_REDIRECTS = 3
_REPOST = frozenset({301, 302, 307, 308})
# WhatsApp itself is the trouble: the owner's chat cannot carry these.
_WHATSAPP_DOWN = frozenset({"logged_out", "replaced", "outdated", "banned", "connection_down"})
_TITLES = {
    "logged_out": "WhatsApp logged the bot out",
    "replaced": "another client took over the bot's WhatsApp session",
    "outdated": "WhatsApp says the bot's client is outdated",
    "banned": "WhatsApp banned or locked the bot's number",
    "budget": "the daily LLM budget is spent",
    "llm_failing": "the LLM keeps failing",
    "transcription_failing": "voice notes cannot be transcribed",
    "undelivered": "a reply did not reach the recipient's phone",
    "restricted": "WhatsApp restricted the account from messaging others",
    "connection_down": "the bot cannot reach WhatsApp",
}


class Alerter:
    def __init__(
        self,
        folded: FoldedLog,
        settings: Settings,
        ids: Ids,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.folded = folded
        self.settings = settings
        self.ids = ids  # the owner's note's
        self.clock = clock
        self._sleep = sleep
        # asyncio's Lock: taken at every pass (several a message), and anyio's yields
        # to the loop even when free.
        self._lock = asyncio.Lock()
        # What makes an alert owed, settled or due: nothing else wakes the alerter.
        reads = (
            alerts.PROJECTION,
            deliveries.PROJECTION,
            connection.PROJECTION,
            configs.PROJECTION,
        )
        self._dispatch = Dispatcher(
            folded, settings, log, "alert_pass_failed", clock=clock, reads=reads
        )

    async def run(self) -> None:
        await self._dispatch.repeat(self.send_due)

    async def send_due(self) -> float:
        """Give every owed alert the config asks for; record each outcome. Returns when
        an alert the clock owes falls due next (inf: none)."""
        async with self._lock:
            config = self.settings.app.alerts
            view, now = self.folded.view, self.clock()
            owed = alerts.owed(view.alerts)
            # Owed by the clock: nothing arrives to say a receipt did not, or that
            # the connection is still down.
            late = alerts.undelivered(
                view.alerts,
                view.deliveries,
                now,
                config.undelivered_minutes,
                self.settings.app.owner_jid,
                connection.up_since(view.connection),
            )
            if late is not None:
                owed["undelivered"] = late
            down = alerts.connection_down(view.alerts, now, config.connection_down_minutes)
            if down is not None:
                owed.setdefault("connection_down", down)
            for kind, detail in owed.items():
                if kind in config.on:
                    quotes_chat = alerts.quoted_chat(view.alerts, kind)
                    note = kind not in _WHATSAPP_DOWN
                    await self._alert(kind, detail, quotes_chat, config.webhook, note=note)
            retry_at = await self._retry_due(config.webhook, config.on)
            due = alerts.down_due_at(self.folded.view.alerts, config.connection_down_minutes)
            # Past due and still owed: the config does not ask for it.
            down_at = math.inf if due is None or due <= self.clock() else due
            return min(down_at, retry_at)

    async def _retry_due(self, webhook: str | None, on: tuple[AlertKind, ...]) -> float:
        """POST again each alert the webhook did not take whose retry is due; returns
        when the next one falls due (inf: none)."""
        if webhook is None:
            return math.inf
        now = self.clock()
        for kind, at in alerts.retries(self.folded.view.alerts).items():
            retry = alerts.retrying(self.folded.view.alerts, kind)
            if kind in on and at <= now and retry is not None:
                # The owner's note went with the first try: only the webhook is retried.
                await self._alert(kind, retry.detail, retry.quotes_chat, webhook, retry=True)
        due = [at for kind, at in alerts.retries(self.folded.view.alerts).items() if kind in on]
        return min(due, default=math.inf)

    async def _alert(
        self,
        kind: AlertKind,
        detail: str,
        quotes_chat: str | None,
        webhook: str | None,
        *,
        note: bool = False,
        retry: bool = False,
    ) -> None:
        """POST the alert to ``webhook`` (if any), write the owner a ``note`` (if asked),
        and record how it went."""
        text = f"wabot alert: {_TITLES[kind]} — {detail}"
        error = "" if webhook is None else await self._post(webhook, kind, detail, text)
        events: list[AnyEvent] = []
        if note:
            owner = self.settings.app.owner_jid
            events.append(owner_note(owner, "alert", text, self.ids, quotes_chat=quotes_chat))
        ok = (webhook is not None and not error) or (webhook is None and note)
        alerted = OwnerAlerted(
            kind=kind, ok=ok, detail=detail, error=error, quotes_chat=quotes_chat
        )
        events.append(alerted)
        await self.folded.append(*events)
        said = {"retry": True} if retry else {}
        log.warning("owner_alerted", kind=kind, ok=ok, error=error or None, **said)

    async def _post(self, url: str, kind: AlertKind, detail: str, text: str) -> str:
        """POST the alert; the last error in one line, or "" once it was taken."""
        body = {
            "source": "wabot",
            "kind": kind,
            "detail": detail,
            "text": text,  # what Slack-style hooks show
            "at": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
        }
        error = ""
        # A client of its own per alert: alerts are rare, and the LLM's pool is not ours.
        async with httpx.AsyncClient() as http:
            for attempt in range(ATTEMPTS):
                if attempt:
                    await self._sleep(backoff(_BACKOFF, attempt))
                try:
                    error = await _post_following(http, url, body)
                except Exception as exc:  # whatever it is, the alert was not taken
                    # Not only httpx's errors: a URL httpx refuses, a port the socket
                    # cannot take (in an ExceptionGroup). None may cost the owner's note.
                    error = _one_line(exc)
                if not error:
                    return ""
        return error or "not delivered"


async def _post_following(http: httpx.AsyncClient, url: str, body: dict[str, str]) -> str:
    """POST ``body`` to ``url``, again to where a redirect points (``_REDIRECTS`` at
    most, never from https to http); "" once taken, else why not."""
    target = httpx.URL(url)
    for _ in range(_REDIRECTS + 1):
        response = await http.post(target, json=body, timeout=_TIMEOUT)
        if response.is_success:
            return ""
        status = response.status_code
        location = response.headers.get("location")
        if status not in _REPOST or not location:
            return f"HTTP {status}"
        moved = target.join(location)
        if moved.scheme not in ("http", "https") or (
            target.scheme == "https" and moved.scheme == "http"
        ):
            return f"HTTP {status} (a redirect to {moved.scheme}: not followed)"
        target = moved
    return f"HTTP {status} (more than {_REDIRECTS} redirects)"


def _one_line(exc: BaseException) -> str:
    """``Type: message`` of the first error a group holds, on one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return " ".join(f"{type(exc).__name__}: {exc}".split()).strip(": ")
