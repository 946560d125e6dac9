"""``python -m pipeline``: the command line (docs/cli.md).

User mistakes end with one line on stderr and exit status 2, never a
traceback; a clean stop exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import anyio

from events.backends import open_log
from events.codec import CorruptEvent
from events.jid import InvalidJid, phone_digits, user_part
from events.protocol import LogError
from pipeline.config import (
    ConfigError,
    LoadedConfig,
    WebConfig,
    dsn_passwords,
    load_config,
    web_token,
)
from pipeline.daemon import EXIT_NEEDS_OWNER, AlreadyRunning, Daemon, Settings, daemon_lock
from pipeline.entry import run_main
from pipeline.logs import configure_logging
from pipeline.media import MediaStore
from pipeline.paths import LOG_URL_HELP, STORE_HELP, env_file, log_url, store_dir
from pipeline.tools import (
    BadArgument,
    Where,
    compact,
    forget,
    migrate,
    run_audit,
    run_stats,
    run_stats_all,
    web,
    where_from_args,
)
from pipeline.tools._args import EXIT_USAGE, OneLineParser, parse_time
from pipeline.transport import StdioTransport, Transport, TransportError

EXIT_OK = 0
EXIT_FAILURE = 1


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


def _prog() -> str:
    """How the user called us: the ``wabot`` script, or ``python -m pipeline``."""
    return "wabot" if Path(sys.argv[0]).name == "wabot" else "python -m pipeline"


class _Parser(OneLineParser):
    program = "wabot"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=_prog(), description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the bot")
    run.add_argument("--config", type=Path, default=Path("app.json"), help="app.json to use")
    run.add_argument(
        "--env", type=Path, default=None, help=".env file (default: ./.env if present)"
    )
    _store_option(run)
    _log_url_option(run)
    run.add_argument(
        "--transport",
        choices=("neonize", "stdio"),
        default="neonize",
        help="neonize: WhatsApp (default); stdio: JSON lines on stdin and stdout",
    )
    run.add_argument("--force-qr", action="store_true", help="neonize: pair again with a QR code")
    run.add_argument("--pair-phone", metavar="NUMBER", help="neonize: pair with a phone code")
    run.add_argument(
        "--capture-inbound",
        type=Path,
        metavar="DIR",
        help="neonize: save each raw WhatsApp event of a monitored chat in DIR (private files),"
        " to report a message the bot got wrong",
    )
    audit = commands.add_parser("audit", help="a chat's timeline: messages, decisions, replies")
    audit.add_argument("--chat", required=True, help="JID, phone number or entity name")
    audit.add_argument("--json", action="store_true", help="print one JSON document")
    audit.add_argument("--since", help="from this time (ISO or unix seconds)")
    _store_option(audit)
    audit.add_argument("--config", type=Path, default=None, help="app.json to resolve CHAT with")
    _log_options(audit)
    stats = commands.add_parser("stats", help="counts, spend, latency and connection state")
    stats.add_argument("--json", action="store_true", help="print one JSON document")
    _store_option(stats)
    _log_options(stats)
    stats.add_argument("--all", action="store_true", help="one line per WhatsApp number")
    compact = commands.add_parser("compact", help="remove events older than the retention")
    _store_option(compact)
    _log_options(compact)
    forget = commands.add_parser("forget", help="remove every event of one chat")
    forget.add_argument("--chat", required=True, help="JID, phone number or entity name")
    _store_option(forget)
    _log_options(forget)
    move = commands.add_parser("migrate", help="copy the log into PostgreSQL, or back")
    way = move.add_mutually_exclusive_group(required=True)
    way.add_argument("--to", metavar="URL", help="postgresql://… to copy STORE/events.db into")
    way.add_argument("--from", dest="source", metavar="URL", help="postgresql://… to copy from")
    _store_option(move)
    move.add_argument("--number", help="the log's number (default: the store's owner)")
    inbound = commands.add_parser(
        "inbound", help="what captured WhatsApp events become: one JSON line each"
    )
    inbound.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="a captured event (run --capture-inbound)",
    )
    inbound.add_argument(
        "--undecryptable",
        action="store_true",
        help="the files hold undecryptable-message events, not message events",
    )
    inbound.add_argument("--me-pn", metavar="DIGITS", help="your phone number, with country code")
    inbound.add_argument("--me-lid", metavar="LID", help="your LID (…@lid), as `stats` shows it")
    console = commands.add_parser("web", help="a read-only web console, /healthz and /metrics")
    console.add_argument(
        "--listen",
        default=WebConfig().listen,
        metavar="HOST:PORT",
        help="address to serve on (default %(default)s); a non-loopback one needs WABOT_WEB_TOKEN",
    )
    _store_option(console)
    _log_options(console)
    return parser


def _log_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-url",
        metavar="URL",
        help=LOG_URL_HELP,
    )


def _log_options(parser: argparse.ArgumentParser) -> None:
    _log_url_option(parser)
    parser.add_argument("--number", help="the WhatsApp number whose log to use (PostgreSQL)")


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, help=STORE_HELP)


def entry() -> NoReturn:
    """The ``wabot`` command, and ``python -m pipeline``."""
    run_main(main)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "inbound":
            return _inbound(args)
        if args.command == "migrate":
            store = store_dir(args.store, env_file(None))
            print(migrate(store, to=args.to, source=args.source, number=args.number))
            return EXIT_OK
        where = where_from_args(
            args.store, args.log_url, args.number, getattr(args, "config", None)
        )
        if args.command == "audit":
            since = parse_time(args.since) if args.since is not None else None
            return run_audit(where, args.chat, config=args.config, since=since, as_json=args.json)
        if args.command == "stats":
            stats = run_stats_all if args.all else run_stats
            return stats(where, as_json=args.json, now=time.time())
        if args.command in ("compact", "forget"):
            print(_maintain(args, where))
            return EXIT_OK
        if args.command == "web":
            return _web(args, where)
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
    url = log_url(args.log_url, env, loaded.config.store.url)
    number = user_part(loaded.config.owner_jid)  # a PostgreSQL database keeps a log per number
    if args.transport == "neonize":
        _bot_tag_for_go(loaded.config.whatsapp.bot_tag)
    lock = daemon_lock(store, url, number)
    if url is not None:  # a standby waits for the lease and says so in the logs
        _configure_logs(loaded, store, url)
    lock.acquire()
    clean = False
    try:
        if url is None:  # only the store's holder writes there
            _configure_logs(loaded, store)
        # After configure_logging: importing neonize would otherwise install its own log handler.
        console = _console_service(loaded, Where(store, url, number))
        transport = _transport(args, loaded, store)
        # On PostgreSQL an append waits out a database that went away (retry_for=None).
        log = open_log(
            store, url=url, name=number, synchronous=loaded.config.store.synchronous, retry_for=None
        )
        settings = Settings(loaded, env_file=env)
        media = MediaStore.of(store, number if url is not None else None)  # a log's own files
        daemon = Daemon(log, settings, transport, store=store, services=console, media=media)
        anyio.run(daemon.serve, backend="asyncio")
        clean = True  # stopped, its transport closed: a standby need not wait for it
    finally:
        lock.release(clean=clean)
    return EXIT_OK


def _maintain(args: argparse.Namespace, where: Where) -> str:
    """``compact`` or ``forget``: a file of the store they cannot write (a full disk, as
    the log's own writes) is one line. What went is recorded; run again, it finishes."""
    try:
        if args.command == "compact":
            return compact(where, time.time())
        return forget(where, args.chat)
    except OSError as exc:
        raise LogError(f"{exc.filename or where.store}: {exc.strerror or exc}") from None


def _inbound(args: argparse.Namespace) -> int:
    with _whatsapp_library():
        from pipeline.tools import _inbound as inbound  # noqa: PLC0415  (loads the Go library)
    me = inbound.owner_ids(args.me_pn, args.me_lid)
    return inbound.run_inbound(
        args.files, undecryptable=args.undecryptable, me=me, out=sys.stdout.buffer, err=sys.stderr
    )


def _web(args: argparse.Namespace, where: Where) -> int:
    env = env_file(None)
    try:
        listen = WebConfig(enabled=True, listen=args.listen)
    except ValueError as exc:
        raise UsageError(f"--listen: {exc}") from None
    token = web_token(listen, env_file=env)
    secrets = [s for s in (token, *dsn_passwords(where.url)) if s]
    configure_logging(level="INFO", fmt="auto", log_dir=None, secrets=secrets)
    web.run_standalone(where, listen, token)
    return EXIT_OK


def _console_service(
    loaded: LoadedConfig, store: Where
) -> list[Callable[[web.DaemonProbe], Awaitable[None]]]:
    """The web console beside the daemon when ``web.enabled``; its port is taken now."""
    if not loaded.config.web.enabled:
        return []
    sock = web.bind(loaded.config.web)
    token = loaded.secrets.web_token

    async def console(probe: web.DaemonProbe) -> None:
        await web.serve(store, sock, token=token, probe=probe)

    return [console]


def _configure_logs(loaded: LoadedConfig, store: Path, url: str | None = None) -> None:
    logging_cfg = loaded.config.logging
    secrets = loaded.secret_values()
    try:
        configure_logging(
            level=logging_cfg.level,
            fmt=logging_cfg.format,
            log_dir=store / "logs",
            secrets=[s for s in (*secrets, *dsn_passwords(url)) if s],
        )
    except OSError as exc:
        raise UsageError(f"{store}: cannot write logs ({exc.strerror})") from None


def _transport(args: argparse.Namespace, loaded: LoadedConfig, store: Path) -> Transport:
    whatsapp = loaded.config.whatsapp
    if args.transport == "stdio":
        if args.force_qr or args.pair_phone:
            raise UsageError("--force-qr and --pair-phone need --transport neonize")
        if args.capture_inbound:
            # stdin lines are already the stdio shape, and the writer of them has them.
            raise UsageError("--capture-inbound needs --transport neonize")
        return StdioTransport(whatsapp.phone_number)
    try:
        pair_phone = phone_digits(args.pair_phone) if args.pair_phone else None
    except InvalidJid as exc:
        raise UsageError(f"--pair-phone: {exc}") from None
    with _whatsapp_library():
        from pipeline.transport import neonize  # noqa: PLC0415  (loads the Go library)
    return neonize.from_config(
        whatsapp,
        store,
        force_qr=args.force_qr,
        pair_phone=pair_phone,
        capture=args.capture_inbound,
    )


@contextlib.contextmanager
def _whatsapp_library() -> Iterator[None]:
    """Around an import that loads neonize's Go library (only when a command needs it)."""
    try:
        yield
    except ImportError as exc:
        if "libmagic" not in str(exc):
            raise
        raise UsageError(
            "the WhatsApp library needs the system library libmagic "
            "(Debian/Ubuntu: apt install libmagic1)"
        ) from None


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
