"""``python -m pipeline``: the command line of DESIGN.md section 6.

User mistakes end with one line on stderr and exit status 2, never a
traceback; a clean stop exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import anyio

from events.backends import open_log
from events.codec import CorruptEvent
from events.jid import InvalidJid, phone_digits
from events.protocol import LogError
from pipeline.config import ConfigError, LoadedConfig, WebConfig, load_config, web_token
from pipeline.daemon import EXIT_NEEDS_OWNER, AlreadyRunning, Daemon, DaemonLock, Settings
from pipeline.logs import configure_logging
from pipeline.paths import STORE_HELP, env_file, store_dir
from pipeline.tools import BadArgument, compact, forget, run_audit, run_stats, web
from pipeline.tools._args import parse_time
from pipeline.transport import StdioTransport, Transport, TransportError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


# Set on the one re-exec that passes NEONIZE_BOT_TAG on: a second one would loop.
_REEXEC_MARK = "WABOT_BOT_TAG_SET"


DESCRIPTION = (
    "wabot: a WhatsApp assistant that records everything it does in an event log"
    " (STORE/events.db). Run the bot, or read and maintain its log. Exit status: 0 after"
    " a clean stop, 2 for a mistake in the command line or the config (one line on"
    " stderr), 3 when WhatsApp needs you (pair again)."
)


class UsageError(Exception):
    """A mistake on the command line or in the files it names (exit 2)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the bot")
    run.add_argument("--config", type=Path, default=Path("app.json"), help="app.json to use")
    run.add_argument(
        "--env", type=Path, default=None, help=".env file (default: ./.env if present)"
    )
    _store_option(run)
    run.add_argument(
        "--transport",
        choices=("neonize", "stdio"),
        default="neonize",
        help="neonize: WhatsApp (default); stdio: JSON lines on stdin and stdout",
    )
    run.add_argument("--force-qr", action="store_true", help="neonize: pair again with a QR code")
    run.add_argument("--pair-phone", metavar="NUMBER", help="neonize: pair with a phone code")
    audit = commands.add_parser("audit", help="a chat's timeline: messages, decisions, replies")
    audit.add_argument("--chat", required=True, help="JID, phone number or entity name")
    audit.add_argument("--json", action="store_true", help="print one JSON document")
    audit.add_argument("--since", help="from this time (ISO or unix seconds)")
    _store_option(audit)
    audit.add_argument("--config", type=Path, default=None, help="app.json to resolve CHAT with")
    stats = commands.add_parser("stats", help="counts, spend, latency and connection state")
    stats.add_argument("--json", action="store_true", help="print one JSON document")
    _store_option(stats)
    compact = commands.add_parser("compact", help="remove events older than the retention")
    _store_option(compact)
    forget = commands.add_parser("forget", help="remove every event of one chat")
    forget.add_argument("--chat", required=True, help="JID, phone number or entity name")
    _store_option(forget)
    console = commands.add_parser("web", help="a read-only web console, /healthz and /metrics")
    console.add_argument(
        "--listen",
        default=WebConfig().listen,
        metavar="HOST:PORT",
        help="address to serve on (default %(default)s); a non-loopback one needs WABOT_WEB_TOKEN",
    )
    _store_option(console)
    return parser


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, help=STORE_HELP)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "audit":
            store = store_dir(args.store, env_file(None))
            since = parse_time(args.since) if args.since is not None else None
            return run_audit(store, args.chat, config=args.config, since=since, as_json=args.json)
        if args.command == "stats":
            return run_stats(
                store_dir(args.store, env_file(None)), as_json=args.json, now=time.time()
            )
        if args.command == "compact":
            print(compact(store_dir(args.store, env_file(None)), time.time()))
            return EXIT_OK
        if args.command == "forget":
            print(forget(store_dir(args.store, env_file(None)), args.chat))
            return EXIT_OK
        if args.command == "web":
            return _web(args)
    except (
        ConfigError,
        UsageError,
        LogError,
        BadArgument,
        CorruptEvent,
        AlreadyRunning,
        web.WebError,
    ) as exc:
        print(f"wabot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TransportError as exc:
        # The daemon has stopped cleanly; WhatsApp needs the owner (pairing, logout, ban).
        print(f"wabot: {exc}", file=sys.stderr)
        return EXIT_NEEDS_OWNER
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_FAILURE


def _run(args: argparse.Namespace) -> int:
    env = env_file(args.env)
    store = store_dir(args.store, env)
    loaded = load_config(args.config, env_file=env)
    if args.transport == "neonize":
        _bot_tag_for_go(loaded.config.whatsapp.bot_tag)
    lock = DaemonLock(store)
    lock.acquire()
    try:
        _configure_logs(loaded, store)
        # After configure_logging: importing neonize would otherwise install its own log handler.
        console = _console_service(loaded, store)
        transport = _transport(args, loaded, store)
        log = open_log(store, synchronous=loaded.config.store.synchronous)
        settings = Settings(loaded, env_file=env)
        daemon = Daemon(log, settings, transport, store=store, services=console)
        anyio.run(daemon.serve, backend="asyncio")
    finally:
        lock.release()
    return EXIT_OK


def _web(args: argparse.Namespace) -> int:
    env = env_file(None)
    try:
        listen = WebConfig(enabled=True, listen=args.listen)
    except ValueError as exc:
        raise UsageError(f"--listen: {exc}") from None
    token = web_token(listen, env_file=env)
    configure_logging(level="INFO", fmt="auto", log_dir=None, secrets=[token] if token else [])
    web.run_standalone(store_dir(args.store, env), listen, token)
    return EXIT_OK


def _console_service(
    loaded: LoadedConfig, store: Path
) -> list[Callable[[web.DaemonProbe], Awaitable[None]]]:
    """The web console beside the daemon when ``web.enabled``; its port is taken now."""
    if not loaded.config.web.enabled:
        return []
    sock = web.bind(loaded.config.web)
    token = loaded.secrets.web_token

    async def console(probe: web.DaemonProbe) -> None:
        await web.serve(store, sock, token=token, probe=probe)

    return [console]


def _configure_logs(loaded: LoadedConfig, store: Path) -> None:
    logging_cfg = loaded.config.logging
    secrets = (loaded.secrets.api_key, loaded.secrets.web_token)
    try:
        configure_logging(
            level=logging_cfg.level,
            fmt=logging_cfg.format,
            log_dir=store / "logs",
            secrets=[s for s in secrets if s],
        )
    except OSError as exc:
        raise UsageError(f"{store}: cannot write logs ({exc.strerror})") from None


def _transport(args: argparse.Namespace, loaded: LoadedConfig, store: Path) -> Transport:
    whatsapp = loaded.config.whatsapp
    if args.transport == "stdio":
        if args.force_qr or args.pair_phone:
            raise UsageError("--force-qr and --pair-phone need --transport neonize")
        return StdioTransport(whatsapp.phone_number)
    try:
        pair_phone = phone_digits(args.pair_phone) if args.pair_phone else None
    except InvalidJid as exc:
        raise UsageError(f"--pair-phone: {exc}") from None
    try:
        from pipeline.transport import neonize  # noqa: PLC0415  (loads the Go library)
    except ImportError as exc:
        if "libmagic" not in str(exc):
            raise
        raise UsageError(
            "the WhatsApp library needs the system library libmagic "
            "(Debian/Ubuntu: apt install libmagic1)"
        ) from None
    return neonize.from_config(whatsapp, store, force_qr=args.force_qr, pair_phone=pair_phone)


def _bot_tag_for_go(bot_tag: bool) -> None:
    """Start again with ``NEONIZE_BOT_TAG`` as configured, if the process was not.

    The Go library reads its environment as the process started (setting
    ``os.environ`` now would not reach it) and tags every 1:1 send to a phone
    JID as a bot unless the variable says off. So the process replaces itself
    with the same command line and the variable set, before neonize loads.
    """
    wanted = "on" if bot_tag else "off"
    if os.environ.get("NEONIZE_BOT_TAG") == wanted:
        return
    if os.environ.get(_REEXEC_MARK) == wanted:
        raise UsageError("cannot pass NEONIZE_BOT_TAG to the WhatsApp library; set it yourself")
    env = {**os.environ, "NEONIZE_BOT_TAG": wanted, _REEXEC_MARK: wanted}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
