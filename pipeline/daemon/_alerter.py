"""Alerts for the owner, out of band: a JSON POST to ``alerts.webhook``, and the owner's chat.

What is owed comes from the ``alerts`` projection, so an alert is given once
per episode across restarts. The webhook (ntfy, Slack, a Matrix hook, any
HTTP endpoint) is tried a few times; where WhatsApp still works (the budget,
the LLM) the owner's own chat gets the alert too. Either way the outcome is
recorded as ``OwnerAlerted``, which settles the alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import anyio
import httpx

from events.model import AlertKind, AnyEvent, OwnerAlerted, ReplyPlanned
from pipeline.daemon._failures import Failures
from pipeline.daemon._live import Live
from pipeline.daemon._settings import Settings
from pipeline.logs import get_logger
from projections import alerts

log = get_logger("wabot.alerts")

ATTEMPTS = 3
_BACKOFF = (1.0, 4.0)
_TIMEOUT = 10.0
# WhatsApp itself is the trouble: the owner's chat cannot carry these.
_WHATSAPP_DOWN = frozenset({"logged_out", "replaced", "outdated", "banned"})
_TITLES = {
    "logged_out": "WhatsApp logged the bot out",
    "replaced": "another client took over the bot's WhatsApp session",
    "outdated": "WhatsApp says the bot's client is outdated",
    "banned": "WhatsApp banned the bot's number for a while",
    "budget": "the daily LLM budget is spent",
    "llm_failing": "the LLM keeps failing",
    "transcription_failing": "voice notes cannot be transcribed",
}


class Alerter:
    def __init__(
        self,
        live: Live,
        settings: Settings,
        new_wa_id: Callable[[], str | None],
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.live = live
        self.settings = settings
        self.new_wa_id = new_wa_id
        self.clock = clock
        self._sleep = sleep
        self._waker = live.waker()
        self._lock = anyio.Lock()
        self._failures = Failures(log, "alert_pass_failed")

    async def run(self) -> None:
        while True:
            with self._failures.guard():
                await self.send_due()
            await self._waker.wait(self.settings.app.polling.interval_seconds)

    async def send_due(self) -> None:
        """Give every owed alert the config asks for; record each outcome."""
        async with self._lock:
            self.live.catch_up()
            config = self.settings.app.alerts
            owed = self.live.view.alerts
            for kind, detail in alerts.owed(owed).items():
                if kind in config.on:
                    await self._alert(kind, detail, alerts.quoted_chat(owed, kind))

    async def _alert(self, kind: AlertKind, detail: str, quotes_chat: str | None) -> None:
        text = f"wabot alert: {_TITLES[kind]} — {detail}"
        webhook = self.settings.app.alerts.webhook
        error = "" if webhook is None else await self._post(webhook, kind, detail, text)
        events: list[AnyEvent] = []
        if kind not in _WHATSAPP_DOWN:
            owner = self.settings.app.owner_jid
            events.append(
                ReplyPlanned(
                    chat=owner,
                    reply_id=uuid.uuid4().hex,
                    purpose="alert",
                    text=text,
                    wa_id=self.new_wa_id(),
                    quotes_chat=quotes_chat,
                )
            )
        ok = (webhook is not None and not error) or (webhook is None and bool(events))
        alerted = OwnerAlerted(
            kind=kind, ok=ok, detail=detail, error=error, quotes_chat=quotes_chat
        )
        events.append(alerted)
        await self.live.append(*events)
        log.warning("owner_alerted", kind=kind, ok=ok, error=error or None)

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
                    await self._sleep(_BACKOFF[min(attempt - 1, len(_BACKOFF) - 1)])
                try:
                    response = await http.post(url, json=body, timeout=_TIMEOUT)
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}".strip(": ")
                    continue
                if response.is_success:
                    return ""
                error = f"HTTP {response.status_code}"
        return error or "not delivered"
