"""A model's arguments, checked against the tool's JSON schema before the handler runs.

Models write arguments as a JSON string and get them wrong: not JSON, not an
object, a key missing, a number where a string belongs. Each is a one-line
error the model gets back as the call's result, never an exception. The
schemas here use a small subset of JSON schema (an object of typed properties,
``required``, ``additionalProperties: false``, ``maxLength``), which this checks
completely.
"""

from __future__ import annotations

import json
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def parse(arguments: str, schema: dict[str, Any]) -> dict[str, Any] | str:
    """The arguments as a dict, or why they do not fit ``schema`` (one line)."""
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError as exc:
        return f"the arguments are not JSON ({exc.msg})"
    if not isinstance(value, dict):
        return "the arguments must be a JSON object"
    properties: dict[str, Any] = schema.get("properties", {})
    missing = [key for key in schema.get("required", []) if key not in value]
    if missing:
        return f"missing argument {missing[0]!r}"
    if schema.get("additionalProperties") is False:
        unknown = sorted(set(value) - set(properties))
        if unknown:
            return f"unknown argument {unknown[0]!r}"
    for key, item in value.items():
        problem = _check(key, item, properties.get(key, {}))
        if problem is not None:
            return problem
    return value


def _check(key: str, value: Any, schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if kind is None:
        return None
    fits = isinstance(value, _TYPES[kind]) and not (kind != "boolean" and isinstance(value, bool))
    if not fits:
        return f"argument {key!r} must be a {kind}"
    limit = schema.get("maxLength")
    if limit is not None and len(value) > limit:
        return f"argument {key!r} is longer than {limit} characters"
    return None
