"""The contracts as the code defines them, and as ``docs/`` writes them down.

The code side walks msgspec's type information (the app.json structs, the
stdio line structs, the events), so a key or field added anywhere is found
without editing a list here. The docs side reads the markdown tables of
``docs/``: a table whose header starts with the given word (``key``,
``field``, ``option``, ...) lists one name per row, in backticks, in its first
cell. ``tests/test_docs.py`` compares the two.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import msgspec.inspect as mi

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

_HEADING = re.compile(r"^(#{1,6}) +(.*?) *$")
_CELL = re.compile(r"(?<!\\)\|")
_NAME = re.compile(r"`([^`]+)`")


REQUIRED = object()


class Leaf(NamedTuple):
    """A field that holds a value (not a struct of more fields), by its dotted path."""

    path: str
    field: mi.Field
    owner: mi.StructType  # the struct the field belongs to (its defaults, its class)


class Shape(NamedTuple):
    """Every path of a struct: the leaves, and the struct-valued fields above them."""

    leaves: list[Leaf]
    parents: set[str]

    @property
    def paths(self) -> set[str]:
        return {leaf.path for leaf in self.leaves}


def shape(node: mi.Type, prefix: str = "") -> Shape:
    """The dotted paths of ``node`` (``quoted.id``, ``messages[].role``, ``a[].type``).

    A tagged union of structs (app.json's entities) contributes its tag field
    and the fields of every member.
    """
    leaves: list[Leaf] = []
    parents: set[str] = set()
    structs = _structs(node)
    tags = {s.tag_field for s in structs if s.tag_field is not None and len(structs) > 1}
    for tag in tags:
        tag_field = mi.Field(tag, tag, mi.LiteralType(tuple(s.tag for s in structs)))
        leaves.append(Leaf(_join(prefix, tag), tag_field, structs[0]))
    for struct in structs:
        for f in struct.fields:
            path = _join(prefix, f.encode_name)
            inner, many = _inner(f.type)
            if _structs(inner):
                parents.add(path)
                sub = shape(inner, path + ("[]" if many else ""))
                leaves += sub.leaves
                parents |= sub.parents
            else:
                leaves.append(Leaf(path, f, struct))
    return Shape(_unique(leaves), parents)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _structs(node: mi.Type) -> list[mi.StructType]:
    """The structs ``node`` is, ignoring ``None`` in a union."""
    if isinstance(node, mi.StructType):
        return [node]
    if isinstance(node, mi.UnionType):
        return [t for t in node.types if isinstance(t, mi.StructType)]
    return []


def _inner(node: mi.Type) -> tuple[mi.Type, bool]:
    """``node`` without ``None``; for a list or tuple of structs, the item type."""
    if isinstance(node, mi.UnionType):
        rest = [t for t in node.types if not isinstance(t, mi.NoneType)]
        if len(rest) == 1:
            node = rest[0]
    if isinstance(node, mi.ListType | mi.VarTupleType) and _structs(node.item_type):
        return node.item_type, True
    return node, False


def _unique(leaves: list[Leaf]) -> list[Leaf]:
    """One leaf per path; for a path of several union members, each member's leaf is kept."""
    seen: set[tuple[str, type]] = set()
    kept = []
    for leaf in leaves:
        if (leaf.path, leaf.owner.cls) not in seen:
            seen.add((leaf.path, leaf.owner.cls))
            kept.append(leaf)
    return kept


def of(cls: type[msgspec.Struct]) -> Shape:
    return shape(mi.type_info(cls))


# -- docs/ ------------------------------------------------------------------------


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def sections(text: str) -> dict[str, str]:
    """The body of each heading (up to the next heading of any level), by its text."""
    found: dict[str, str] = {}
    title, body = "", list[str]()
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            found[title] = "\n".join(body)
            title, body = match[2], []
        else:
            body.append(line)
    found[title] = "\n".join(body)
    return found


class Row(NamedTuple):
    names: list[str]  # the backticked names of the first cell
    cells: list[str]  # every cell, stripped
    header: list[str]


def rows(text: str, first: str) -> Iterator[Row]:
    """The rows of every table in ``text`` whose header's first cell is ``first``."""
    header: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in _CELL.split(stripped.strip("|"))]
        if header is None:
            header = cells
        elif set(stripped) <= set("|-: "):
            continue
        elif header[0].casefold() == first.casefold():
            yield Row(_NAME.findall(cells[0]), cells, header)


def documented(text: str, first: str) -> set[str]:
    """Every name listed in the first cell of the ``first`` tables of ``text``."""
    return {name for row in rows(text, first) for name in row.names}


def backticked(cell: str) -> list[str]:
    return _NAME.findall(cell)


def json_default(leaf: Leaf) -> Any:
    """The default of a leaf as a JSON value, or ``REQUIRED``.

    A default computed when the struct is built (``llm.temperature``) is read
    from a default instance of its struct.
    """
    f = leaf.field
    if f.required:
        return REQUIRED
    if f.default is not msgspec.NODEFAULT:
        value = f.default
    elif f.default_factory is not msgspec.NODEFAULT:
        value = f.default_factory()
    else:  # UNSET, settled by __post_init__
        value = getattr(leaf.owner.cls(), f.name)
    return msgspec.json.decode(msgspec.json.encode(value))
