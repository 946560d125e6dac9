"""One-line configuration errors: ``FILE: FIELD: what is wrong``.

msgspec reports ``Expected `float`, got `str` - at `$.llm.temperature```; the
owner should read ``app.json: llm.temperature: expected number, got str``.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, NamedTuple

import msgspec
import msgspec.inspect as mi

from pipeline.config._sections import FieldError

_AT = re.compile(r"(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.DOTALL)
_KEY = re.compile(r"Object (?P<what>contains unknown|missing required) field `(?P<key>[^`]*)`")
_BYTE = re.compile(r"JSON is malformed: (?P<what>.*) \(byte (?P<pos>\d+)\)")
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_WHOLE = re.compile(r"(\d)\.0\b")  # msgspec prints bounds as floats: "> 0.0"
_TYPE_WORDS = {"`float`": "number", "`int`": "integer"}
_SHOWN = 20  # digits of a huge number shown in an error


class ConfigError(Exception):
    """A mistake in app.json or the environment, worded for the owner in one line."""

    def __init__(self, source: str, message: str, field: str = "") -> None:
        self.source = source
        self.field = field
        parts = [source, field, message] if field else [source, message]
        super().__init__(" ".join(": ".join(parts).split("\n")))


def from_decode_error(source: str, data: bytes, exc: Exception) -> ConfigError:
    """Where the JSON text breaks, as line and column (msgspec gives a byte offset)."""
    if isinstance(exc, UnicodeDecodeError):
        return ConfigError(source, "invalid JSON (not UTF-8 text)")
    if isinstance(exc, RecursionError):
        return ConfigError(source, "invalid JSON (nested too deeply)")
    if isinstance(exc, msgspec.ValidationError):
        # Raised while decoding only for a number no float or int can hold: 1e400.
        return _out_of_range(source, data)
    if match := _BYTE.fullmatch(str(exc)):
        pos, what = int(match["pos"]), match["what"]
    else:  # msgspec's only other decode error: "Input data was truncated"
        pos, what = len(data), "unexpected end of file"
    line_start = data.rfind(b"\n", 0, pos) + 1
    line = data.count(b"\n", 0, pos) + 1
    column = len(data[line_start:pos].decode("utf-8", "replace")) + 1
    return ConfigError(source, f"line {line}, column {column}: invalid JSON ({what})")


class _Unrepresentable(NamedTuple):
    text: str


def _out_of_range(source: str, data: bytes) -> ConfigError:
    """Name the field of the first number msgspec cannot hold (its own message says ``$[...]``)."""

    def number(text: str) -> Any:
        try:
            return msgspec.json.decode(text)
        except msgspec.ValidationError:
            return _Unrepresentable(text)

    try:
        tree = json.loads(data, parse_int=number, parse_float=number)
        path, found = _first_unrepresentable(tree)
    except (ValueError, RecursionError, LookupError):  # e.g. a duplicate key hid it
        return ConfigError(source, "invalid JSON (a number is out of range)")
    shown = found.text if len(found.text) <= _SHOWN else found.text[:_SHOWN] + "…"
    return ConfigError(source, f"number out of range, got {shown}", path.lstrip("."))


def _first_unrepresentable(node: Any, path: str = "") -> tuple[str, _Unrepresentable]:
    if isinstance(node, _Unrepresentable):
        return path, node
    steps: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        steps = [(f".{key}", value) for key, value in node.items()]
    elif isinstance(node, list):
        steps = [(f"[{index}]", value) for index, value in enumerate(node)]
    for step, value in steps:
        with contextlib.suppress(LookupError):
            return _first_unrepresentable(value, path + step)
    raise LookupError(path)


def from_validation_error(
    source: str, raw: Any, exc: msgspec.ValidationError, schema: type
) -> ConfigError:
    """Rewrite msgspec's message and ``$.a[1].b`` path; ``raw`` was converted to ``schema``."""
    match = _AT.fullmatch(str(exc))
    assert match is not None  # the pattern accepts any text
    message, path = match["message"], match["path"] or ""
    cause = exc.__cause__
    if isinstance(cause, FieldError):
        return ConfigError(source, str(cause), _join(path, cause.field))
    if key := _KEY.fullmatch(message):
        text = "unknown key" if key["what"] == "contains unknown" else "required key is missing"
        return ConfigError(source, text, _join(path, key["key"]))
    for word, plain in _TYPE_WORDS.items():
        message = message.replace(word, plain)
    message = message.replace("`", "").replace("Invalid enum value", "invalid value")
    message = message[:1].lower() + message[1:]
    if message.startswith("invalid value") and (choices := _choices(schema, raw, path)):
        message += f" (expected one of: {', '.join(choices)})"
    if message.startswith("expected") and ", got" not in message:
        # A range check: show the value, since msgspec does not.
        shown = msgspec.json.encode(_lookup(raw, path)).decode()
        message = _WHOLE.sub(r"\1", message) + f", got {shown}"
    return ConfigError(source, message, _join(path, ""))


def _join(path: str, field: str) -> str:
    return (f"{path}.{field}" if field else path).lstrip(".")


def _choices(schema: type, raw: Any, path: str) -> list[str]:
    """The values allowed at ``path``: a Literal's, or the tags of a tagged union."""
    node: mi.Type = mi.type_info(schema)
    for name, index in _SEGMENT.findall(path):
        if isinstance(node, mi.UnionType):  # the entity union: follow the tag in raw
            structs = [t for t in node.types if isinstance(t, mi.StructType)]
            if name in {t.tag_field for t in structs}:
                return [str(t.tag) for t in structs]
            node = next(t for t in structs if t.tag == raw[structs[0].tag_field])
        if index and isinstance(node, mi.VarTupleType):
            node, raw = node.item_type, raw[int(index)]
        elif name and isinstance(node, mi.StructType):
            node, raw = next(f.type for f in node.fields if f.encode_name == name), raw[name]
    return [str(v) for v in node.values] if isinstance(node, mi.LiteralType) else []


def _lookup(raw: Any, path: str) -> Any:
    for name, index in _SEGMENT.findall(path):
        raw = raw[int(index)] if index else raw[name]
    return raw
