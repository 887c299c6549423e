"""The statistics the report states: Wilson score intervals for a rate, and the exact McNemar
test for two candidates judged on the same tickets. Pure functions, no dependencies."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the normal quantile for a two-sided 95 % interval


@dataclass(frozen=True, slots=True)
class Rate:
    """k successes out of n, with a 95 % Wilson interval; value is None when n is 0."""

    k: int
    n: int

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.k, self.n) if self.n else None

    def text(self) -> str:
        """`35% [18-57%] n=20`, or `- n=0`."""
        if not self.n:
            return "- n=0"
        low, high = wilson(self.k, self.n)
        return f"{self.k / self.n:.0%} [{low * 100:.0f}-{high:.0%}] n={self.n}"


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for k successes in n trials. Unlike the normal
    approximation it stays inside [0, 1] and is not empty at k = 0 or k = n, which is where
    twenty tickets put most calibration rates."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # At k = 0 and k = n the bound is exactly 0 or 1; rounding would leave a crumb.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: b tickets where only the
    first candidate had the property, c where only the second did. Under the null each
    discordant pair falls either way with probability 1/2, so this is a binomial test."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts cannot be negative")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / (1 << n)
    return min(1.0, 2 * tail)
