"""Reviewed outputs as labelled replies: the reviewer's verdict (the corrected one, or the
classifier's when the reviewer left it) beside what the text detector said, so a team's own
reviewed traffic measures the detector (`make bench-classify CLASSIFY_DATA=...`).

Only outputs the text detector judged (verdict source `text`, or `none` for its default
answer) count: a verdict from the calibration tools or the `refusal` field is not the
detector's, and its output text (a contract call said in words) is not what it would read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gateway.eval.results import LABELS, Label, OutcomeRecord, Result, Results
from gateway.eval.stats import Rate

DETECTOR_SOURCES = frozenset({"text", "none"})
SIGNALS: tuple[Label, ...] = ("abstain", "flag")  # the labels the detector looks for


@dataclass(frozen=True, slots=True)
class Reviewed:
    result: Result
    outcome: OutcomeRecord
    prompt: str

    @property
    def predicted(self) -> str:
        return self.result.label or "answer"

    @property
    def truth(self) -> str:
        return self.outcome.corrected_verdict or self.predicted


@dataclass(frozen=True, slots=True)
class Score:
    label: str
    precision: Rate  # of the outputs the detector gave this label, how many had it
    recall: Rate  # of the outputs that had this label, how many the detector found


def reviewed(results: Results) -> list[Reviewed]:
    """The outputs with an outcome whose verdict the text detector made."""
    outcomes = results.outcomes()
    tickets = results.tickets()
    found = []
    for r in results.results():
        outcome = outcomes.get(r.key)
        if r.status != "ok" or outcome is None or (r.source or "none") not in DETECTOR_SOURCES:
            continue
        users = [m["content"] for m in tickets[r.ticket].messages if m["role"] == "user"]
        found.append(Reviewed(r, outcome, users[-1] if users else ""))
    return found


def labelled_lines(results: Results) -> Iterator[dict[str, Any]]:
    """One line per reviewed output in the format `bench.classify --data` reads; `split` is
    heldout: a team's own outputs test the detector, nobody tunes on them."""
    name = results.meta().get("tickets_name", "eval")
    for item in reviewed(results):
        r = item.result
        kind = r.kind if item.truth == "abstain" and item.predicted == "abstain" else None
        yield {
            "id": f"{r.ticket}/{r.candidate}/{r.sample}",
            "source": f"review:{name}",
            "model": r.upstream_model,
            "prompt": item.prompt,
            "response": r.output,
            "label": item.truth,
            "kind": kind,
            "split": "heldout",
            "classified": item.predicted,
            "corrected": item.outcome.corrected_verdict is not None,
        }


def scores(items: list[Reviewed]) -> list[Score]:
    """Precision and recall of the detector for each signal, with Wilson intervals."""
    out = []
    for label in SIGNALS:
        said = [i for i in items if i.predicted == label]
        real = [i for i in items if i.truth == label]
        out.append(Score(label, Rate(sum(i.truth == label for i in said), len(said)),
                         Rate(sum(i.predicted == label for i in real), len(real))))  # fmt: skip
    return out


def scores_json(results: Results) -> dict[str, Any]:
    items = reviewed(results)
    return {
        "reviewed": len(items),
        "corrected": sum(i.outcome.corrected_verdict is not None for i in items),
        "scores": [
            {"label": s.label, "precision": s.precision.text(), "recall": s.recall.text()}
            for s in scores(items)
        ],
        "labels": list(LABELS),
    }
