"""Where log lines go and what they may contain.

structlog and stdlib logging (neonize, httpx) share the same handlers: stderr
(a console renderer on a TTY, JSON lines otherwise) and rotating JSON files in
the store's log directory. Nothing is ever logged to stdout, which belongs to
the stdio transport.

Conventions:
- Chat message text (inbound or outbound) is logged only at DEBUG, as a
  ``text`` field; INFO and above name chats and ids, never contents.
- Secret values passed to ``configure_logging`` are replaced by ``***`` in
  every string of every line, tracebacks included, with the word they are
  glued into; values under ``MIN_SECRET_LENGTH`` characters are no secrets.
- Nothing of a chat that is not monitored is logged, at any level: the
  daemon logs a message only once it knows the chat is monitored, and
  WhatsApp's own loggers stay at WARNING with chat ids masked.
- Log files are the owner's alone (0600, also after each rollover).
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from events.owner_only import open_private, private_dir, tighten

LOG_FILE = "wabot.log"
_FILE_BYTES = 5 * 1024 * 1024
_FILE_BACKUPS = 5
_HANDLER_NAME = "wabot"
_FORMATS = ("auto", "json", "console")
# Libraries that log every request (httpx: each URL) or chatter at INFO.
_QUIET_LOGGERS = ("httpx", "httpcore")
# WhatsApp's own (neonize reads its Go side's level from "neonize.utils.log"):
# below WARNING they trace every chat, monitored or not, so they never go
# there, and chat ids in the lines they do write are masked.
_WHATSAPP_LOGGERS = ("neonize", "neonize.utils.log", "whatsmeow", "Whatsmeow")
_WHATSAPP_ID = re.compile(
    r"[\w.:+-]*@(?:s\.whatsapp\.net|c\.us|lid|g\.us|broadcast|newsletter)\b|\+?\d{7,}"
)
# neonize warns at connect that ffmpeg is missing; it needs ffmpeg only to send
# audio, video and stickers, which wabot never does.
_SILENCED_LOGGERS = ("neonize.utils.ffmpeg",)


# A value shorter than this is no secret: hosted providers' keys run to 40 characters and
# more, the console token to at least 16, and 8 is the shortest password NIST (SP 800-63B)
# lets anyone choose. Below it are the placeholders a local server ignores ("ollama",
# "none", "x"), words that also name hosts, paths and log events: masking them garbles
# every line and hides nothing. A database URL's password is hidden by its place in the
# URL (events.dsn.redacted) whatever its length.
MIN_SECRET_LENGTH = 8
MASK = "***"


class SecretRedactor:
    """A processor that replaces each secret in any string field with ``***``.

    A secret is hidden together with the word it is glued into (letters and digits
    either side: a %-escape, a backslash escape, a missing space), so no part of it
    shows; values shorter than ``MIN_SECRET_LENGTH`` are not secrets and stay.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        kept = {s for s in secrets if len(s.strip()) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is hidden whole.
        alternatives = "|".join(re.escape(s) for s in sorted(kept, key=len, reverse=True))
        self._pattern = re.compile(alternatives) if alternatives else None

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        if self._pattern is None:
            return event_dict
        return {key: self._redact(value) for key, value in event_dict.items()}

    def text(self, text: str) -> str:
        """``text`` with every secret, and the word around it, masked."""
        if self._pattern is None:
            return text
        kept: list[str] = []
        done = 0
        for found in self._pattern.finditer(text):
            start, end = found.span()
            if start < done:  # inside a word already masked
                continue
            # Linear: each character is passed over once, however long the word.
            while start > done and text[start - 1].isalnum():
                start -= 1
            while end < len(text) and text[end].isalnum():
                end += 1
            kept += (text[done:start], MASK)
            done = end
        return "".join(kept) + text[done:] if kept else text

    def _redact(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self._redact(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set):
            return [self._redact(v) for v in value]
        return value


def redact(text: str, *secrets: str | None) -> str:
    """``text`` as a log line would show it: each secret of ``secrets`` masked."""
    return SecretRedactor(s for s in secrets if s).text(text)


def configure_logging(
    *,
    level: str = "INFO",
    fmt: str = "auto",
    log_dir: Path | None,
    secrets: Iterable[str] = (),
) -> None:
    """Send all logging to stderr and ``log_dir/wabot.log``; safe to call again.

    Call it before importing neonize, whose import otherwise installs its own
    root handler. Raises ValueError for an unknown ``level`` or ``fmt``.
    """
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r} (use DEBUG, INFO, WARNING or ERROR)")
    if fmt not in _FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (use {', '.join(_FORMATS)})")

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    redact_secrets = SecretRedactor(secrets)
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    stderr_renderer: Processor = (
        structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        if console
        else structlog.processors.JSONRenderer()
    )
    handlers: list[logging.Handler] = [
        _handler(logging.StreamHandler(sys.stderr), shared, redact_secrets, stderr_renderer)
    ]
    if log_dir is not None:
        private_dir(log_dir)
        tighten(*(log_dir / f"{LOG_FILE}.{n}" for n in range(1, _FILE_BACKUPS + 1)))
        rotating = _PrivateRotatingFileHandler(
            log_dir / LOG_FILE, maxBytes=_FILE_BYTES, backupCount=_FILE_BACKUPS, encoding="utf-8"
        )
        handlers.append(
            _handler(rotating, shared, redact_secrets, structlog.processors.JSONRenderer())
        )

    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(numeric)
    quiet = numeric if numeric == logging.DEBUG else max(numeric, logging.WARNING)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    for name in _WHATSAPP_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    for name in _SILENCED_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.ERROR))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Each log file it opens, the first and every one after a rollover, is 0600."""

    def _open(self) -> io.TextIOWrapper:
        fd = open_private(Path(self.baseFilename), os.O_WRONLY | os.O_APPEND)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger over the stdlib logger ``name``.

    It wraps stdlib logging even before ``configure_logging`` runs, so an early
    line falls back to stdlib's stderr handler instead of structlog's default
    of printing to stdout.
    """
    logger: structlog.stdlib.BoundLogger = structlog.wrap_logger(
        logging.getLogger(name), wrapper_class=structlog.stdlib.BoundLogger
    )
    return logger


def _hide_whatsapp_ids(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Mask JIDs and phone numbers in WhatsApp's own lines: they may be any chat's."""
    event = event_dict.get("event")
    if isinstance(event, str) and str(event_dict.get("logger")).startswith(_WHATSAPP_LOGGERS):
        event_dict["event"] = _WHATSAPP_ID.sub("<id>", event)
    return event_dict


def _handler(
    handler: logging.Handler,
    shared: list[Processor],
    redact_secrets: SecretRedactor,
    renderer: Processor,
) -> logging.Handler:
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _hide_whatsapp_ids],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # Tracebacks become strings first, so redaction covers them too.
                structlog.processors.format_exc_info,
                redact_secrets,
                renderer,
            ],
        )
    )
    return handler
