"""Log configuration: where lines go, their format, and that secrets never appear."""

from __future__ import annotations

import json
import logging
import logging.handlers
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from pipeline.logs import LOG_FILE, configure_logging, get_logger
from tests.e2e.harness import loose_modes

REPO = Path(__file__).resolve().parent.parent
SECRET = "pplx-TOPSECRET0123456789"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo configure_logging so other tests see the logging they started with."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if h.get_name() == "wabot"]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    for name in ("httpx", "httpcore", "neonize", "neonize.utils.log", "whatsmeow", "Whatsmeow"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    structlog.reset_defaults()


def reject_key() -> None:
    raise RuntimeError(f"rejected key {SECRET}")


def file_lines(log_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (log_dir / LOG_FILE).read_text().splitlines()]


def test_json_lines_in_the_log_dir_and_on_stderr_never_stdout(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    log_dir = tmp_path / "store" / "logs"
    configure_logging(level="INFO", fmt="auto", log_dir=log_dir)

    get_logger("pipeline.agent").info("reply sent", chat="491701111111@s.whatsapp.net", n=2)

    [line] = file_lines(log_dir)
    assert line["event"] == "reply sent"
    assert (line["level"], line["logger"], line["n"]) == ("info", "pipeline.agent", 2)
    assert line["timestamp"].endswith("Z")
    out, err = capfd.readouterr()
    assert out == ""
    assert json.loads(err)["event"] == "reply sent"  # stderr is not a TTY here


def test_secrets_are_redacted_in_message_fields_and_tracebacks(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging(log_dir=tmp_path, secrets=[SECRET, ""])
    log = get_logger("pipeline.llm")

    log.warning(f"calling with {SECRET}", headers={"authorization": [f"Bearer {SECRET}"]})
    try:
        reject_key()
    except RuntimeError:
        log.exception("call failed")
    logging.getLogger("httpx").error("POST https://x/?key=%s", SECRET)

    warning, failure, foreign = file_lines(tmp_path)
    assert warning["event"] == "calling with ***"
    assert warning["headers"] == {"authorization": ["Bearer ***"]}
    assert "RuntimeError: rejected key ***" in failure["exception"]
    assert foreign["event"] == "POST https://x/?key=***"
    assert foreign["logger"] == "httpx"
    out, err = capfd.readouterr()
    assert out == ""
    assert SECRET not in err
    assert SECRET not in (tmp_path / LOG_FILE).read_text()


def test_values_too_short_to_be_secrets_are_left_alone(tmp_path: Path) -> None:
    """LLM_API_KEY=ollama (or "x") for a local server is no secret: masking it garbles
    host names, paths and event names while hiding nothing."""
    configure_logging(log_dir=tmp_path, secrets=["ollama", "e", "sk-1234"])
    log = get_logger("pipeline.llm")

    log.warning("llm_unreachable", error="cannot reach http://ollama:11434/v1", store="/srv/ollama")

    [line] = file_lines(tmp_path)
    assert line["event"] == "llm_unreachable"
    assert line["error"] == "cannot reach http://ollama:11434/v1"
    assert line["store"] == "/srv/ollama"
    assert line["level"] == "warning"


def test_a_secret_is_hidden_with_the_whole_word_it_is_part_of(tmp_path: Path) -> None:
    """Glued to other letters or digits (a %-escape, a backslash escape, a missing space)
    the secret still goes, and so does the rest of that word, so no part of it shows."""
    configure_logging(log_dir=tmp_path, secrets=[SECRET])
    log = get_logger("pipeline.llm")

    log.warning("calling", url=f"https://x/?next=%3D{SECRET}%26", glued=f"Bearer{SECRET}xyz ok")
    log.warning("body", raw=repr(f"\n{SECRET}\t"))

    first, second = file_lines(tmp_path)
    assert first["url"] == "https://x/?next=%***%26"
    assert first["glued"] == "*** ok"
    assert second["raw"] == "'\\***\\t'"  # the "n" of "\\n" went with it


def test_libraries_are_quiet_below_warning_unless_debug(tmp_path: Path) -> None:
    configure_logging(level="INFO", fmt="json", log_dir=tmp_path)
    logging.getLogger("httpx").info("HTTP Request: POST https://api.example/v1")
    logging.getLogger("whatsmeow.Client").info("connected")
    get_logger("pipeline.agent").debug("message text", text="hello")
    logging.getLogger("Whatsmeow.Database").warning("db slow")
    assert [line["event"] for line in file_lines(tmp_path)] == ["db slow"]

    configure_logging(level="DEBUG", fmt="json", log_dir=tmp_path)
    logging.getLogger("httpx").info("HTTP Request: POST https://api.example/v1")
    get_logger("pipeline.agent").debug("message text", text="hello")
    assert [line["event"] for line in file_lines(tmp_path)][1:] == [
        "HTTP Request: POST https://api.example/v1",
        "message text",
    ]


def test_whatsapp_never_traces_chats_and_its_warnings_name_none(tmp_path: Path) -> None:
    """Below WARNING whatsmeow logs every stanza of every chat, monitored or not."""
    configure_logging(level="DEBUG", fmt="json", log_dir=tmp_path)
    logging.getLogger("whatsmeow.Client").debug("<message from=491709999999@s.whatsapp.net>")
    logging.getLogger("Whatsmeow.Client").info("receipt from 271828182845904:3@lid")
    logging.getLogger("whatsmeow.Client").warning(
        "Failed to decrypt message from 491709999999:12@s.whatsapp.net in "
        "120363555555555555@g.us (+491708888888): bad MAC"
    )

    [line] = file_lines(tmp_path)
    assert line["event"] == "Failed to decrypt message from <id> in <id> (<id>): bad MAC"
    # neonize hands this logger's own level to its Go side.
    assert logging.getLogger("neonize.utils.log").level == logging.WARNING


def test_log_files_are_private_after_every_rollover(tmp_path: Path, loose_umask: int) -> None:
    old = tmp_path / f"{LOG_FILE}.1"
    old.write_text("{}\n")
    old.chmod(0o644)  # left by an older version
    configure_logging(log_dir=tmp_path / "logs")
    configure_logging(log_dir=tmp_path)
    log = get_logger("pipeline")
    log.info("before")
    [rotating] = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.RotatingFileHandler)
    ]
    rotating.doRollover()
    log.info("after")

    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([LOG_FILE, f"{LOG_FILE}.1", f"{LOG_FILE}.2", "logs"])
    assert loose_modes(tmp_path)[1:] == []


def test_calling_twice_replaces_the_handlers(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging(log_dir=tmp_path)
    configure_logging(log_dir=tmp_path, fmt="console")

    get_logger("pipeline.scheduler").info("vitality due")

    assert [line["event"] for line in file_lines(tmp_path)] == ["vitality due"]
    out, err = capfd.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert "vitality due" in line
    assert not line.startswith("{")  # console format, while the file stays JSON


def test_without_a_log_dir_only_stderr_is_used(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_dir=None)
    get_logger("pipeline").warning("no store")
    out, err = capfd.readouterr()
    assert (out, json.loads(err)["event"]) == ("", "no store")


@pytest.mark.parametrize(("level", "fmt"), [("LOUD", "auto"), ("INFO", "xml")])
def test_unknown_level_or_format_is_one_clear_error(level: str, fmt: str) -> None:
    with pytest.raises(ValueError, match="unknown log"):
        configure_logging(level=level, fmt=fmt, log_dir=None)


def test_loggers_used_before_configuration_never_print_to_stdout() -> None:
    code = "from pipeline.logs import get_logger; get_logger('early').warning('too early')"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout == ""
    assert "too early" in result.stderr
