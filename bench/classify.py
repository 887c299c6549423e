"""`make bench-classify`: how well, and how fast, the classifier labels replies.

    .venv/bin/python -m bench.classify [--data PATH] [--split tune|heldout|all]
                                       [--collapse-flag] [--errors N] [--no-timing]

--data is JSONL, one labelled reply a line: {"response": text | message | completion,
"label": "abstain" | "flag" | "answer", "kind": ..., "split": "tune" | "heldout", "id": ...}
(bench/classify_data.py writes it from public releases; see tests/data/README.md). Without
--data only the timing runs. Timing uses synthetic replies (neutral prose and code repeated
to 2 KB and 50 KB): it measures cost, not quality. The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.classify import classify_response, classify_text

LABELS = ("abstain", "flag", "answer")
TARGETS = {"macro_f1": 0.88, "abstain_f1": 0.92, "flag_f1": 0.82, "rate_gap_points": 3.0}
BUDGET_US = {2048: 100.0, 50 * 1024: 2000.0}

PROSE = (
    "The handler reads the request body, validates each field against the schema, and returns "
    "a typed object; the caller caches it for the length of the request. Errors are collected "
    "and reported together, so a client sees every problem at once. "
)
CODE = (
    "```python\ndef load(path: str) -> dict[str, object]:\n    # read the file and parse it\n"
    "    with open(path, encoding='utf-8') as f:\n        data = json.load(f)\n"
    "    return data if isinstance(data, dict) else {}\n```\n"
)


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    summary: dict[str, Any] = {}
    if args.data:
        rows = [r for r in _rows(args.data) if args.split == "all" or r.get("split") == args.split]
        if not rows:
            print(f"no rows in {args.data} for split {args.split}", file=sys.stderr)
            return 2
        summary["quality"] = quality(rows, args.collapse_flag, args.errors)
    if not args.no_timing:
        summary["timing_us"] = timing()
    print(json.dumps(summary))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench.classify", description=__doc__)
    parser.add_argument("--data", type=Path, help="labelled JSONL (see the module docstring)")
    parser.add_argument("--split", choices=["tune", "heldout", "all"], default="heldout")
    parser.add_argument(
        "--collapse-flag",
        action="store_true",
        help="count a predicted flag as answer: for data labelled only abstain/answer",
    )
    parser.add_argument("--errors", type=int, default=0, help="print N misclassified rows")
    parser.add_argument("--no-timing", action="store_true")
    return parser


def _rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    bad = [i for i, r in enumerate(rows, 1) if r.get("label") not in LABELS or "response" not in r]
    if bad:
        raise SystemExit(f"{path}: lines {bad[:5]} lack a response or a label in {LABELS}")
    return rows


def quality(rows: list[dict[str, Any]], collapse_flag: bool, errors: int) -> dict[str, Any]:
    truth = [r["label"] for r in rows]
    verdicts = [classify_response(r["response"]) for r in rows]
    predicted = ["answer" if collapse_flag and v.label == "flag" else v.label for v in verdicts]
    labels = [label for label in LABELS if label in truth]
    table = {label: score(label, truth, predicted) for label in LABELS}
    macro = statistics.fmean(table[label].f1 for label in labels)
    gaps = {
        label: 100 * (table[label].predicted - table[label].support) / len(rows) for label in LABELS
    }
    _print_quality(len(rows), table, labels, macro, gaps)
    _print_confusion(truth, predicted)
    _print_kinds(rows, verdicts)
    if errors:
        _print_errors(rows, verdicts, predicted, errors)
    return {
        "rows": len(rows),
        "macro_f1": round(macro, 4),
        "f1": {label: round(table[label].f1, 4) for label in LABELS},
        "rate_gap_points": {label: round(gap, 2) for label, gap in gaps.items()},
    }


def score(label: str, truth: list[str], predicted: list[str]) -> Scores:
    hit = sum(t == p == label for t, p in zip(truth, predicted, strict=True))
    support, guessed = truth.count(label), predicted.count(label)
    precision = hit / guessed if guessed else 0.0
    recall = hit / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, support, guessed)


def _print_quality(
    n: int, table: dict[str, Scores], labels: list[str], macro: float, gaps: dict[str, float]
) -> None:
    print(f"{n} labelled replies")
    print(f"{'label':8} {'prec':>6} {'recall':>6} {'F1':>6} {'true%':>6} {'pred%':>6} {'n':>6}")
    for label, s in table.items():
        print(
            f"{label:8} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} "
            f"{100 * s.support / n:6.1f} {100 * s.predicted / n:6.1f} {s.support:6d}"
        )
    missing = [label for label in LABELS if label not in labels]
    note = (
        f" (over {', '.join(labels)}; the data labels no {', '.join(missing)})" if missing else ""
    )
    print(f"macro-F1 {macro:.3f}{note}")
    checks = [
        ("macro-F1", macro >= TARGETS["macro_f1"], f">= {TARGETS['macro_f1']}"),
        ("abstain F1", _met(table["abstain"], "abstain_f1"), f">= {TARGETS['abstain_f1']}"),
        ("flag F1", _met(table["flag"], "flag_f1"), f">= {TARGETS['flag_f1']}"),
        (
            "rates",
            all(abs(g) <= TARGETS["rate_gap_points"] for g in gaps.values()),
            f"within {TARGETS['rate_gap_points']:g} points",
        ),
    ]
    for name, ok, target in checks:
        verdict = "not measured (the data has no such label)" if ok is None else "met"
        print(f"  target {name} {target}: {'MISSED' if ok is False else verdict}")


def _met(scores: Scores, target: str) -> bool | None:
    return None if not scores.support else scores.f1 >= TARGETS[target]


def _print_confusion(truth: list[str], predicted: list[str]) -> None:
    pairs = Counter(zip(truth, predicted, strict=True))
    print("confusion (rows true, columns predicted)")
    print(" " * 9 + "".join(f"{label:>9}" for label in LABELS))
    for t in LABELS:
        print(f"{t:9}" + "".join(f"{pairs[t, p]:9d}" for p in LABELS))


def _print_kinds(rows: list[dict[str, Any]], verdicts: list[Any]) -> None:
    both = [
        (r.get("kind"), v.kind)
        for r, v in zip(rows, verdicts, strict=True)
        if r["label"] == "abstain" and v.label == "abstain" and r.get("kind")
    ]
    if both:
        right = sum(t == p for t, p in both)
        print(f"kind right on {right}/{len(both)} abstentions caught")


def _print_errors(
    rows: list[dict[str, Any]], verdicts: list[Any], predicted: list[str], limit: int
) -> None:
    wrong = [
        (r, v, p) for r, v, p in zip(rows, verdicts, predicted, strict=True) if p != r["label"]
    ]
    for r, v, p in wrong[:limit]:
        text = r["response"] if isinstance(r["response"], str) else json.dumps(r["response"])
        print(f"- {r.get('id', '?')}: true {r['label']}, predicted {p} ({v.evidence!r})")
        print(f"    {text[:160]!r}")


def timing() -> dict[str, dict[str, float]]:
    """Median and p99 of classify_text on synthetic 2 KB and 50 KB replies."""
    print("classify_text time, microseconds (synthetic replies)")
    print(f"{'reply':14} {'median':>8} {'p99':>8} {'budget':>8}")
    results: dict[str, dict[str, float]] = {}
    for size, budget in BUDGET_US.items():
        for name, unit in (("prose", PROSE), ("code", CODE), ("mixed", PROSE * 2 + CODE)):
            text = (unit * (size // len(unit) + 1))[:size]
            median, p99 = _time(text, 5000 if size <= 4096 else 1000)
            key = f"{name}-{size // 1024}k"
            results[key] = {"median": round(median, 1), "p99": round(p99, 1)}
            flag = "" if median <= budget else "  OVER"
            print(f"{key:14} {median:8.1f} {p99:8.1f} {budget:8.0f}{flag}")
    return results


def _time(text: str, runs: int) -> tuple[float, float]:
    for _ in range(50):
        classify_text(text)
    samples = _samples(text, runs)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(0.99 * (len(samples) - 1))] / 1000


def _samples(text: str, runs: int) -> list[int]:
    gc.disable()  # a collection landing in one sample says nothing about the classifier
    try:
        out = []
        for _ in range(runs):
            start = time.perf_counter_ns()
            classify_text(text)
            out.append(time.perf_counter_ns() - start)
        return out
    finally:
        gc.enable()


if __name__ == "__main__":
    raise SystemExit(main())
