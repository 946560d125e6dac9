"""``python replay.py``: rebuild a chat's LLM turns, check them or re-run them with new
settings; across chats (``--all``), sampled and judged by an LLM (``--judge``).

Reads the log read-only and never talks to WhatsApp; re-runs write only an
experiment file (and its HTML report) and the response cache under
``STORE/replays/``. ``python replay.py apply EXPERIMENT`` writes an
experiment's prompt, persona and model into app.json.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
import msgspec

from events.codec import CorruptEvent
from events.jid import user_part
from events.model import ConfigLoaded, Recorded
from events.protocol import LogError, LogReader, NoLog
from pipeline.config import AppConfig, ConfigError, LoadedConfig, load_config, parse_config
from pipeline.paths import LOG_URL_HELP, STORE_HELP, env_file
from pipeline.tools._args import (
    EXIT_USAGE,
    BadArgument,
    OneLineParser,
    latest_config,
    parse_time,
    resolve_chat,
)
from pipeline.tools._where import open_tool_reader, where_from_args
from pipeline.tools.replay import _output as output
from pipeline.tools.replay._apply import Conflict, apply, config_at, find_experiment
from pipeline.tools.replay._cache import cached_llm
from pipeline.tools.replay._evaluate import select
from pipeline.tools.replay._experiment import History, described, evaluate, variant_of
from pipeline.tools.replay._files import reserve, write_private
from pipeline.tools.replay._progress import Progress
from pipeline.tools.replay._runner import NewReply, replay
from pipeline.tools.replay._variant import Variant
from pipeline.tools.replay._verify import check
from projections.calls import Call, calls
from projections.runner import Runner

EXIT_OK, EXIT_DIFFERENT = 0, 1
APPLY_USAGE = "python replay.py apply EXPERIMENT [--config app.json] [--store DIR]"
DESCRIPTION = (
    "Rebuild chats' LLM turns from wabot's event log: check that the log explains every"
    " request exactly (--recorded), or send them again with a new prompt, persona, model"
    " or config and compare the answers, optionally judged by an LLM (--judge). The log"
    " is opened read-only and nothing is sent to WhatsApp; re-runs write an experiment"
    " file, its report and a response cache under STORE/replays/."
)


class _Parser(OneLineParser):
    program = "replay.py"


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python replay.py", description=DESCRIPTION, epilog=f"usage: {APPLY_USAGE}")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--chat", action="append", help="JID, phone number or entity name (repeatable)"
    )
    which.add_argument("--all", action="store_true", help="every monitored chat with LLM turns")
    p.add_argument("--recorded", action="store_true", help="no LLM: rebuild each request, compare")
    prompt = p.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", help="new prompt for the chat")
    prompt.add_argument("--prompt-file", type=Path, help="read the new prompt from a file")
    p.add_argument("--persona", help="new persona for the chat")
    p.add_argument("--model", help="new model")
    p.add_argument("--config", type=Path, help="app.json to resolve CHAT with and replay under")
    p.add_argument("--store", type=Path, default=None, help=STORE_HELP)
    _log_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--since", type=_time, help="first turn time (ISO or unix seconds)")
    p.add_argument("--until", type=_time, help="last turn time (ISO or unix seconds)")
    p.add_argument("--limit", type=_positive, help="at most N turns (the earliest)")
    p.add_argument("--sample", type=_positive, help="N turns picked at random (see --seed)")
    p.add_argument("--seed", type=int, default=0, help="the --sample seed (default 0)")
    p.add_argument(
        "--context",
        choices=("recorded", "replayed"),
        default="recorded",
        help="later turns see the recorded replies (default) or the new ones",
    )
    p.add_argument("--concurrency", type=_positive, default=4, help="LLM calls at once")
    judge = p.add_argument_group("judging")
    judge.add_argument("--judge", action="store_true", help="an LLM compares old and new replies")
    judge.add_argument("--judge-model", help="the judge's model (default: llm.model in force)")
    judge.add_argument("--rubric", type=Path, help="file with the judge's criteria")
    return p


def _apply_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python replay.py apply", description=_apply_doc())
    p.add_argument("experiment", help="experiment file, or its name under STORE/replays/")
    p.add_argument("--config", type=Path, help="app.json to write (default: the bot's)")
    p.add_argument("--store", type=Path, default=None, help=STORE_HELP)
    _log_options(p)
    return p


def _log_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-url", metavar="URL", help=LOG_URL_HELP)
    p.add_argument("--number", help="the WhatsApp number whose log to replay (PostgreSQL)")


def _apply_doc() -> str:
    return "Write an experiment's prompt, persona and model into app.json, atomically."


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    applying = words[:1] == ["apply"]
    args = (_apply_parser() if applying else _parser()).parse_args(words[1:] if applying else words)
    try:
        return _apply(args) if applying else _main(args)
    except Conflict as exc:
        print(f"replay.py: {exc}", file=sys.stderr)
        return EXIT_DIFFERENT
    except BrokenPipeError:
        raise  # the reader of stdout went away: no mistake to report (pipeline.entry)
    except (BadArgument, ConfigError, NoLog, LogError, CorruptEvent, OSError) as exc:
        print(f"replay.py: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_DIFFERENT


def _main(args: argparse.Namespace) -> int:
    _check_args(args)
    where = where_from_args(args.store, args.log_url, args.number, args.config)
    store = where.store
    with open_tool_reader(where) as log:
        config = parse_config(args.config) if args.config else latest_config(log.read(chats=[""]))
        chats = _chats(args, config, log)
        histories = [
            History(chat, _name(config, chat), list(log.read(chats=[chat, ""]))) for chat in chats
        ]
    if args.all or len(chats) > 1 or args.judge or args.sample is not None:
        if args.recorded:
            return _check_all(histories, args)
        return evaluate(args, store, histories, _llm_config(args.config, histories[0].records))
    chat, records = histories[0].chat, histories[0].records
    chosen = select(calls(records, chat), _ts, args.since, args.until, args.limit)
    if args.recorded:
        return _check(chat, chosen, as_json=args.json)
    return _rerun(args, store, chat, chosen, records)


def _check_args(args: argparse.Namespace) -> None:
    if not args.chat and not args.all:
        raise BadArgument("give --chat CHAT (once or more) or --all")
    changes = [args.prompt, args.prompt_file, args.persona, args.model]
    if args.recorded and (any(c is not None for c in changes) or args.context != "recorded"):
        raise BadArgument("--recorded checks what was sent; it takes no new settings")
    if args.recorded and args.judge:
        raise BadArgument("--recorded makes no LLM call; --judge needs a re-run")
    if (args.judge_model or args.rubric) and not args.judge:
        raise BadArgument("--judge-model and --rubric go with --judge")


def _chats(args: argparse.Namespace, config: AppConfig | None, log: LogReader) -> list[str]:
    known = set(log.chats())
    if not args.all:
        states = Runner.start(log).states  # which chat a person's other ids name
        return list(dict.fromkeys(resolve_chat(c, config, known, states) for c in args.chat))
    if config is None:
        raise BadArgument("--all needs a config: no --config and no config in the log")
    found = [jid for e in config.monitored_entities if (jid := config.entity_jid(e)) in known]
    if not found:
        raise BadArgument("no monitored chat has events in the log")
    return found


def _name(config: AppConfig | None, chat: str) -> str:
    entity = config.find_entity(chat) if config is not None else None
    return entity.name if entity is not None and entity.name else user_part(chat)


def _ts(call: Call) -> float:
    return call.ts


def _check(chat: str, chosen: list[Call], *, as_json: bool) -> int:
    checks = [check(t) for t in chosen]
    if as_json:
        print(msgspec.json.encode(output.check_doc(chat, checks)).decode())
    else:
        print(output.check_text(checks))
    return EXIT_OK if all(c.ok for c in checks) else EXIT_DIFFERENT


def _check_all(histories: list[History], args: argparse.Namespace) -> int:
    """``--recorded`` over several chats: one check per chat, one exit status."""
    docs, texts, ok = [], [], True
    for h in histories:
        chosen = select(calls(h.records, h.chat), _ts, args.since, args.until, args.limit)
        checks = [check(t) for t in chosen]
        ok = ok and all(c.ok for c in checks)
        docs.append(output.check_doc(h.chat, checks))
        texts.append(f"{h.name} ({h.chat}):\n{output.check_text(checks)}")
    if args.json:
        print(msgspec.json.encode({"mode": "recorded", "ok": ok, "chats": docs}).decode())
    else:
        print("\n\n".join(texts))
    return EXIT_OK if ok else EXIT_DIFFERENT


def _rerun(
    args: argparse.Namespace, store: Path, chat: str, chosen: list[Call], records: list[Recorded]
) -> int:
    loaded = _llm_config(args.config, records)
    prompt, variant = variant_of(args, loaded)
    new = anyio.run(_run_llm, loaded, variant, chosen, store, args.concurrency)
    doc = output.replay_doc(chat, described(args, prompt), chosen, new)
    path = reserve(store / "replays", user_part(chat))
    write_private(path, msgspec.json.format(msgspec.json.encode(doc), indent=2))
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
    return load_config(config_path or bot_config_path(records), env_file=env_file(None))


def bot_config_path(records: list[Recorded]) -> Path:
    """The app.json the bot last loaded, as its ``ConfigLoaded`` names it."""
    last = next((r.event for r in reversed(records) if isinstance(r.event, ConfigLoaded)), None)
    if last is None:
        raise BadArgument("no config in the log: pass --config app.json")
    return Path(last.path)


async def _run_llm(
    loaded: LoadedConfig, variant: Variant, chosen: list[Call], store: Path, concurrency: int
) -> dict[str, NewReply]:
    progress = Progress("replaying", len(chosen))
    async with cached_llm(loaded, store) as llm:
        try:
            return await replay(
                chosen, variant, llm, concurrency=concurrency, on_done=progress.step
            )
        finally:
            progress.clear()


def _apply(args: argparse.Namespace) -> int:
    where = where_from_args(args.store, args.log_url, args.number, args.config)
    store = where.store
    experiment = find_experiment(args.experiment, store / "replays")
    with open_tool_reader(where) as log:
        records = list(log.read(chats=[""]))
    if args.config is not None:
        target = args.config
    elif experiment.config is not None:
        target = Path(experiment.config)
    else:
        target = bot_config_path(records)
    changed = apply(experiment, target, config_at(records, experiment.ran_at))
    if not changed:
        print(f"{target} already has the settings of experiment {experiment.name}; nothing written")
        return EXIT_OK
    interval = parse_config(target).polling.interval_seconds
    print(
        f"applied experiment {experiment.name} to {target}: {', '.join(changed)}; "
        f"a running bot loads it within {interval:g} s"
    )
    return EXIT_OK


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
