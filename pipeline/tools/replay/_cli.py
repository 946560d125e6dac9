"""``python replay.py --chat X``: rebuild a chat's LLM turns, check them or re-run them.

Reads the log read-only and never talks to WhatsApp; re-runs write only an
experiment file and the response cache under ``STORE/replays/``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import anyio
import msgspec

from events.backends import open_reader
from events.codec import CorruptEvent
from events.jid import user_part
from events.model import ConfigLoaded, Recorded
from events.private import private_dir, write_private
from events.protocol import LogError, NoLog
from pipeline.config import ConfigError, LoadedConfig, load_config, parse_config
from pipeline.llm import LlmClient
from pipeline.paths import STORE_HELP, env_file, store_dir
from pipeline.tools._args import BadArgument, latest_config, parse_time, resolve_chat
from pipeline.tools.replay import _output as output
from pipeline.tools.replay._cache import CachedLlm
from pipeline.tools.replay._runner import NewReply, replay
from pipeline.tools.replay._variant import Variant
from pipeline.tools.replay._verify import check
from projections.calls import Call, calls

EXIT_OK, EXIT_DIFFERENT, EXIT_USAGE = 0, 1, 2
DESCRIPTION = (
    "Rebuild a chat's LLM turns from wabot's event log: check that the log explains every"
    " request exactly (--recorded), or send them again with a new prompt, persona, model"
    " or config and compare the answers. The log is opened read-only and nothing is sent"
    " to WhatsApp; re-runs write an experiment file and a response cache under"
    " STORE/replays/."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line and exit 2, as for every other user mistake (no usage dump)."""
        self.exit(EXIT_USAGE, f"replay.py: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python replay.py", description=DESCRIPTION)
    p.add_argument("--chat", required=True, help="JID, phone number or entity name")
    p.add_argument("--recorded", action="store_true", help="no LLM: rebuild each request, compare")
    prompt = p.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", help="new prompt for the chat")
    prompt.add_argument("--prompt-file", type=Path, help="read the new prompt from a file")
    p.add_argument("--persona", help="new persona for the chat")
    p.add_argument("--model", help="new model")
    p.add_argument("--config", type=Path, help="app.json to resolve CHAT with and replay under")
    p.add_argument("--store", type=Path, default=None, help=STORE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--since", type=_time, help="first turn time (ISO or unix seconds)")
    p.add_argument("--until", type=_time, help="last turn time (ISO or unix seconds)")
    p.add_argument("--limit", type=_positive, help="at most N turns (the earliest)")
    p.add_argument(
        "--context",
        choices=("recorded", "replayed"),
        default="recorded",
        help="later turns see the recorded replies (default) or the new ones",
    )
    p.add_argument("--concurrency", type=_positive, default=4, help="LLM calls at once")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except (BadArgument, ConfigError, NoLog, LogError, CorruptEvent, OSError) as exc:
        print(f"replay.py: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_DIFFERENT


def _main(args: argparse.Namespace) -> int:
    changes = [args.prompt, args.prompt_file, args.persona, args.model]
    if args.recorded and (any(c is not None for c in changes) or args.context != "recorded"):
        raise BadArgument("--recorded checks what was sent; it takes no new settings")
    store = store_dir(args.store, env_file(None))
    with open_reader(store) as log:
        config = parse_config(args.config) if args.config else latest_config(log.read(chats=[""]))
        chat = resolve_chat(args.chat, config, log.chats())
        records = list(log.read(chats=[chat, ""]))
    chosen = _select(calls(records, chat), args.since, args.until, args.limit)
    if args.recorded:
        return _check(chat, chosen, as_json=args.json)
    return _rerun(args, store, chat, chosen, records)


def _select(
    found: list[Call], since: float | None, until: float | None, limit: int | None
) -> list[Call]:
    chosen = [
        t for t in found if (since is None or t.ts >= since) and (until is None or t.ts <= until)
    ]
    return chosen[:limit]


def _check(chat: str, chosen: list[Call], *, as_json: bool) -> int:
    checks = [check(t) for t in chosen]
    if as_json:
        print(msgspec.json.encode(output.check_doc(chat, checks)).decode())
    else:
        print(output.check_text(checks))
    return EXIT_OK if all(c.ok for c in checks) else EXIT_DIFFERENT


def _rerun(
    args: argparse.Namespace, store: Path, chat: str, chosen: list[Call], records: list[Recorded]
) -> int:
    loaded = _llm_config(args.config, records)
    prompt = _read_prompt(args.prompt_file) if args.prompt_file else args.prompt
    variant = Variant(
        prompt=prompt,
        persona=args.persona,
        model=args.model,
        config=loaded.config if args.config else None,
        context=args.context,
    )
    new = anyio.run(_run_llm, loaded, variant, chosen, store, args.concurrency)
    described: dict[str, Any] = {
        "prompt": prompt,
        "persona": args.persona,
        "model": args.model,
        "config": str(args.config) if args.config else None,
        "context": args.context,
    }
    doc = output.replay_doc(chat, described, chosen, new)
    path = _save(store / "replays", chat, doc)
    if args.json:
        print(msgspec.json.encode(doc).decode())
    else:
        columns = shutil.get_terminal_size().columns
        if chosen:
            print(output.replay_text(chosen, new, columns))
            print()
        print(f"{output.summary_line(chosen, new)}; experiment saved to {path}")
    return EXIT_DIFFERENT if any(r.error is not None for r in new.values()) else EXIT_OK


def _llm_config(config_path: Path | None, records: list[Recorded]) -> LoadedConfig:
    """Endpoint and key: from ``--config``, else from the app.json the bot last loaded."""
    if config_path is not None:
        return load_config(config_path, env_file=env_file(None))
    last = next((r.event for r in reversed(records) if isinstance(r.event, ConfigLoaded)), None)
    if last is None:
        raise BadArgument("no config in the log: pass --config app.json")
    return load_config(Path(last.path), env_file=env_file(None))


async def _run_llm(
    loaded: LoadedConfig, variant: Variant, chosen: list[Call], store: Path, concurrency: int
) -> dict[str, NewReply]:
    llm = loaded.config.llm
    progress = _Progress(len(chosen))
    async with LlmClient(
        provider=llm.provider,
        base_url=llm.base_url,
        api_key=loaded.secrets.api_key,
        timeout=llm.timeout_seconds,
        max_retries=llm.max_retries,
    ) as client:
        cached = CachedLlm(client, llm, store / "replays" / "cache")
        try:
            return await replay(
                chosen, variant, cached, concurrency=concurrency, on_done=progress.step
            )
        finally:
            progress.clear()


class _Progress:
    """``replaying 3/12`` on stderr, only when a person is watching it."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.shown = sys.stderr.isatty()

    def step(self) -> None:
        self.done += 1
        if self.shown:
            print(f"\rreplaying {self.done}/{self.total}", end="", file=sys.stderr, flush=True)

    def clear(self) -> None:
        if self.shown:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def _save(directory: Path, chat: str, doc: dict[str, Any]) -> Path:
    """One new experiment file per run, named by time and chat; never overwrites."""
    private_dir(directory)
    stem = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{user_part(chat)}"
    data = msgspec.json.format(msgspec.json.encode(doc), indent=2)
    for n in range(1, 1000):
        path = directory / (f"{stem}.json" if n == 1 else f"{stem}-{n}.json")
        try:
            write_private(path, data, exclusive=True)
        except FileExistsError:
            continue
        return path
    raise BadArgument(f"{directory}: too many experiment files named {stem}*")


def _read_prompt(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadArgument(f"{path}: cannot read the prompt ({exc})") from None


def _time(text: str) -> float:
    try:
        return parse_time(text)
    except BadArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value
