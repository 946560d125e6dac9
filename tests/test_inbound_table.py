"""The README's table of inbound shapes, walked row by row through ``python -m pipeline inbound``.

Each row's shapes (``tests/inbound_shapes.py``) are written as captured
events and run through the real command; its line must be what the row's
middle column says. A row without shapes, shapes without a row, a message
field or drop reason the conversion knows but the table does not name: each
fails here.
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa

from pipeline.transport.neonize import _content, _convert, _wrappers
from pipeline.transport.neonize._media import PARTS
from tests.inbound_shapes import SHAPES, Case

ROOT = Path(__file__).resolve().parent.parent
_HEADER = "| inbound | `inbound` | what the bot does |"
_SPAN = re.compile(r"`([^`]*)`")


class Row:
    def __init__(self, line: str) -> None:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 3, line
        self.shape, outcome, self.does = cells
        spans = _SPAN.findall(outcome)
        self.type = spans[0]
        self.detail = spans[1] if len(spans) > 1 else None
        self.names = set(_SPAN.findall(self.shape))

    def expect(self, line: dict[str, Any]) -> None:
        assert line["type"] == self.type, (self.shape, line)
        if self.detail is None:
            return
        field = {"message": "kind", "dropped": "reason", "undecryptable": "reason"}[self.type]
        got = str(line[field])
        if self.detail.endswith("…"):
            assert got.startswith(self.detail[:-1]), (self.shape, line)
        else:
            assert got == self.detail, (self.shape, line)


@cache
def table() -> dict[str, Row]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(_HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(Row(line))
    return {row.shape: row for row in rows}


def run_inbound(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "inbound", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def _walked(tmp: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """The line of each case's last event, by (row, case number): two runs of the tool."""
    files: dict[bool, list[Path]] = {False: [], True: []}
    last: dict[tuple[str, int], tuple[bool, int]] = {}
    for shape, cases in SHAPES.items():
        for number, case in enumerate(cases):
            batch = files[case.undecryptable]
            for event in case.events:
                path = tmp / f"{len(files[False]) + len(files[True]):03d}.pb"
                path.write_bytes(event.SerializeToString())
                batch.append(path)
            last[shape, number] = (case.undecryptable, len(batch) - 1)
    printed: dict[bool, list[dict[str, Any]]] = {}
    for undecryptable, paths in files.items():
        done = run_inbound(*(["--undecryptable"] if undecryptable else []), *paths)
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        printed[undecryptable] = [json.loads(line) for line in done.stdout.splitlines()]
        assert len(printed[undecryptable]) == len(paths)
    return {key: printed[kind][index] for key, (kind, index) in last.items()}


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], dict[str, Any]]:
    return _walked(tmp_path_factory.mktemp("captured"))


def test_every_row_has_shapes_and_every_shape_a_row() -> None:
    assert sorted(set(table()) - set(SHAPES)) == []  # rows without a test
    assert sorted(set(SHAPES) - set(table())) == []  # shapes the table does not list


@pytest.mark.parametrize(
    ("shape", "number", "case"),
    [(shape, n, case) for shape, cases in SHAPES.items() for n, case in enumerate(cases)],
    ids=lambda value: value[:48] if isinstance(value, str) else None,
)
def test_each_shape_becomes_what_its_row_says(
    walked: dict[tuple[str, int], dict[str, Any]], shape: str, number: int, case: Case
) -> None:
    line = walked[shape, number]
    table()[shape].expect(line)
    if case.check is not None:
        case.check(line)


def test_every_field_the_conversion_knows_is_named_in_the_table() -> None:
    named = set().union(*(row.names for row in table().values()))
    handled = {
        "conversation",
        "extendedTextMessage",
        "protocolMessage",
        "secretEncryptedMessage",
        *(field for field, _ in PARTS),
        *_wrappers.WRAPPERS,
        *_content.READABLE,
        *_convert.DROPPED,
        *_convert._KEYS,
        *(wa.ProtocolMessage.Type.Name(t) for t in _convert._PROTOCOL),
        "REVOKE",
        "MESSAGE_EDIT",
    }
    assert sorted(handled - named) == []


def test_every_drop_reason_the_conversion_gives_is_in_the_table() -> None:
    """Reasons are read from the code: literals, the tables of reasons, f-string prefixes."""
    source = (ROOT / "pipeline/transport/neonize/_convert.py").read_text()
    literals = set(re.findall(r'Dropped\("([^"]+)"\)', source))
    prefixes = {p + "…" for p in re.findall(r'Dropped\(f"([^"{]*)\{', source)}
    prefixes |= {p + "…" for p in re.findall(r'or f"([^"{]*)\{', source)}
    reasons = (
        literals | prefixes | set(_convert.DROPPED.values()) | set(_convert._PROTOCOL.values())
    )
    reasons |= {"status", "broadcast_list", "newsletter"}  # _not_a_chat
    listed = {row.detail for row in table().values() if row.type == "dropped" and row.detail}
    covered = {
        r
        for r in reasons
        if r in listed or any(r.startswith(p[:-1]) for p in listed if p[-1] == "…")
    }
    assert sorted(reasons - covered) == []
    assert {"protocol_…", "secret_…", "unsupported: …"} <= reasons


def test_every_future_proof_field_is_opened_or_dropped() -> None:
    """A newer neonize may bring wrappers: each must be decided on, not silently dropped."""
    future = {
        f.name
        for f in wa.Message.DESCRIPTOR.fields
        if f.message_type is not None and f.message_type.name == "FutureProofMessage"
    }
    opened = _wrappers.WRAPPERS - {"deviceSentMessage"}  # a DeviceSentMessage, not one of them
    assert sorted(future - opened - _wrappers.INERT - set(_convert.DROPPED)) == []
    assert sorted((opened | _wrappers.INERT) - future) == []
