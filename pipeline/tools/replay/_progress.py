"""A progress bar on stderr, drawn only when a person is watching it."""

from __future__ import annotations

import sys
from typing import TextIO

_WIDTH = 24


class Progress:
    """``replaying [#########...............] 9/24``, redrawn in place."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = sys.stderr if stream is None else stream
        self.shown = self.stream.isatty() and total > 0

    def step(self) -> None:
        self.done += 1
        if self.shown:
            print(f"\r{self.line()}", end="", file=self.stream, flush=True)

    def line(self) -> str:
        filled = _WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (_WIDTH - filled)
        return f"{self.label} [{bar}] {self.done}/{self.total}"

    def clear(self) -> None:
        if self.shown:
            print("\r\033[K", end="", file=self.stream, flush=True)
