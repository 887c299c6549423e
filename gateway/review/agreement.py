"""Agreement between two reviewers who marked the same outputs: Cohen's kappa, the share of
agreement beyond what two reviewers marking at their own rates would reach by chance."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any


@dataclass(frozen=True, slots=True)
class Agreement:
    first: str
    second: str
    n: int  # outputs both marked
    agreed: int
    kappa: float | None  # None when there is nothing to measure (n = 0)


def cohen_kappa(pairs: Iterable[tuple[Hashable, Hashable]]) -> float | None:
    """kappa = (p_o - p_e) / (1 - p_e) over (first's category, second's category) pairs.

    When both reviewers used one and the same category throughout, chance agreement is 1 and
    the formula is 0/0; they agreed perfectly, so that is 1.0. None for no pairs."""
    pairs = list(pairs)
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    firsts = Counter(a for a, _ in pairs)
    seconds = Counter(b for _, b in pairs)
    expected = sum(firsts[c] * seconds[c] for c in firsts) / (n * n)
    if expected == 1:
        return 1.0
    return (observed - expected) / (1 - expected)


def agreements(marks: Mapping[Any, Mapping[str, str]]) -> list[Agreement]:
    """Kappa for each two reviewers, over the outputs both marked: `marks` maps an output to
    {reviewer: category}."""
    reviewers = sorted({r for by in marks.values() for r in by})
    found = []
    for first, second in combinations(reviewers, 2):
        pairs = [(by[first], by[second]) for by in marks.values() if first in by and second in by]
        if pairs:
            agreed = sum(a == b for a, b in pairs)
            found.append(Agreement(first, second, len(pairs), agreed, cohen_kappa(pairs)))
    return found
