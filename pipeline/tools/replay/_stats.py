"""The report's arithmetic: a confidence interval for the win rate, and plain means.

The win rate is wins / (wins + losses): ties and unjudged turns say nothing
about which side is better, so they are left out of it (and counted beside
it). Its 95 % interval is Wilson's score interval, which unlike the textbook
normal interval stays inside [0, 1] and keeps its coverage for the few dozen
turns a replay judges (Brown, Cai & DasGupta 2001).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

import msgspec

Z95 = 1.959963984540054  # the two-sided 95 % quantile of the standard normal
METHOD = "Wilson score interval on wins / (wins + losses), ties excluded"


class WinRate(msgspec.Struct, frozen=True, kw_only=True):
    wins: int
    decided: int  # wins + losses
    rate: float | None  # None when nothing was decided
    ci95: tuple[float, float] | None
    method: str = METHOD

    @property
    def conclusion(self) -> str:
        if self.ci95 is None:
            return "no turn decided"
        low, high = self.ci95
        if low > 0.5:
            return "the new settings are better"
        if high < 0.5:
            return "the new settings are worse"
        return "no clear difference"


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson's score interval for ``successes`` out of ``n``; None for ``n == 0``."""
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n}")
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rate(wins: int, losses: int) -> WinRate:
    decided = wins + losses
    return WinRate(
        wins=wins,
        decided=decided,
        rate=wins / decided if decided else None,
        ci95=wilson(wins, decided),
    )


def mean(values: Iterable[float | None]) -> float | None:
    """The mean of the known values; None when none is known."""
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def change(old: float | None, new: float | None) -> float | None:
    """``new`` relative to ``old`` (-0.25 is a quarter less); None when undefined."""
    if old is None or new is None or old == 0:
        return None
    return new / old - 1
