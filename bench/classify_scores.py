"""Scores for the classifier's benchmark: per-label precision, recall and F1, macro-F1, and
each label's predicted rate beside its true rate, over any group of labelled replies.

A source scores only the labels it gives: XSTest's annotators marked refusal and compliance,
not doubt, so on its replies a predicted flag counts as an answer.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

LABELS = ("abstain", "flag", "answer")


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


@dataclass(frozen=True)
class Table:
    """One group's scores: `labels` are those its truth holds (macro-F1 is over them)."""

    n: int
    by_label: dict[str, Scores]
    labels: tuple[str, ...]
    macro_f1: float
    gaps: dict[str, float]  # predicted minus true share of each label, in points

    @property
    def worst_gap(self) -> float:
        return max((abs(g) for g in self.gaps.values()), default=0.0)


def score(label: str, truth: Sequence[str], predicted: Sequence[str]) -> Scores:
    hit = sum(t == p == label for t, p in zip(truth, predicted, strict=True))
    support, guessed = truth.count(label), predicted.count(label)
    precision = hit / guessed if guessed else 0.0
    recall = hit / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, support, guessed)


def table(truth: Sequence[str], predicted: Sequence[str]) -> Table:
    n = len(truth)
    by_label = {label: score(label, truth, predicted) for label in LABELS}
    labels = tuple(label for label in LABELS if by_label[label].support)
    macro = statistics.fmean(by_label[label].f1 for label in labels) if labels else 0.0
    gaps = {
        label: 100 * (s.predicted - s.support) / n if n else 0.0 for label, s in by_label.items()
    }
    return Table(n, by_label, labels, macro, gaps)


def scored_as(predicted: str, labelled: frozenset[str]) -> str:
    """The prediction as its source can score it: a flag where doubt is not labelled is an
    answer (the reply did answer)."""
    return "answer" if predicted == "flag" and "flag" not in labelled else predicted


def source_labels(rows: Sequence[dict[str, object]]) -> dict[str, frozenset[str]]:
    """Which labels each source gives, from its rows."""
    labelled: dict[str, set[str]] = {}
    for r in rows:
        labelled.setdefault(str(r.get("source", "?")), set()).add(str(r["label"]))
    return {source: frozenset(labels) for source, labels in labelled.items()}
