"""What changed between two stored configs, as short key paths (``audit``, the console)."""

from __future__ import annotations

from typing import Any

_SHOWN = 60


def changes(old: Any, new: Any, path: str = "") -> list[str]:
    """``path: old -> new`` lines for every leaf that differs (lists compared by index)."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines: list[str] = []
        for key in [*new, *(k for k in old if k not in new)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in old:
                lines.append(f"{where}: added {_short(new[key])}")
            elif key not in new:
                lines.append(f"{where}: removed")
            else:
                lines += changes(old[key], new[key], where)
        return lines
    if isinstance(old, list) and isinstance(new, list):
        lines = []
        for i in range(max(len(old), len(new))):
            where = f"{path}[{i}]"
            if i >= len(old):
                lines.append(f"{where}: added {_short(new[i])}")
            elif i >= len(new):
                lines.append(f"{where}: removed")
            else:
                lines += changes(old[i], new[i], where)
        return lines
    return [] if old == new else [f"{path}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
