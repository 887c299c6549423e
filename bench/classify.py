"""`make bench-classify`: how well, and how fast, the classifier labels replies.

    .venv/bin/python -m bench.classify [--shared DIR | --data PATH] [--errors N] [--no-timing]
                                       [--check]

--shared is the folder of labelled public sets (../shared/data: XSTest v2 and the linguistic
confidence benchmark, read in place with bench/classify_data.py); --data is JSONL instead,
one labelled reply a line: {"response": text | message | completion, "label": "abstain" |
"flag" | "answer", "kind", "split": "tune" | "heldout", "source", "model", "id"}. It prints
the held-out half's scores, a leave-one-source-out table, per-model figures and the targets,
each marked PASS or MISS; then the time per reply on synthetic 2 KB and 50 KB replies (cost,
not quality). The last line of stdout is one JSON object. With --check the exit code is 1
if a quality target is missed (CI runs it so; timing is printed, never checked: a shared CI
machine's timings are not the code's).

Leave one source out: the detector has no parameter fit to data (docs/classify.md says
why), so the step "fit on the other sources" leaves it as it is, and the left-out source's
held-out half is scored. Its phrases were written while reading the tuning halves of both
sources: the held-back sets the data README names are the blind test, and are not read here.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import classify_data
from bench.classify_scores import LABELS, Table, scored_as, source_labels, table
from gateway.classify import Verdict, classify_response, classify_text

TARGETS = {"heldout_macro_f1": 0.92, "loso_macro_f1": 0.85, "rate_gap_points": 3.0}
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
Row = dict[str, Any]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    summary: dict[str, Any] = {}
    rows = _load(args)
    if rows:
        summary["quality"] = quality(rows, args.errors)
    if not args.no_timing:
        summary["timing_us"] = timing()
    print(json.dumps(summary))
    missed = args.check and not summary.get("quality", {}).get("targets_met", False)
    return 1 if missed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench.classify", description=__doc__)
    parser.add_argument("--shared", type=Path, help="the shared data folder (../shared/data)")
    parser.add_argument("--data", type=Path, help="labelled JSONL (see the module docstring)")
    parser.add_argument("--seed", type=int, default=4, help="the tune/held-out split's seed")
    parser.add_argument("--errors", type=int, default=0, help="print N misclassified rows")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a quality target is missed (CI's floor)"
    )
    return parser


def _load(args: argparse.Namespace) -> list[Row]:
    if args.data:
        return _jsonl(args.data)
    if not args.shared:
        return []
    if not args.shared.is_dir():
        raise SystemExit(f"{args.shared}: no such folder (the shared labelled data)")
    return shared_rows(args.shared, args.seed)


def shared_rows(folder: Path, seed: int) -> list[Row]:
    """The public labelled sets in the shared data folder, labelled and split by prompt."""
    rows = list(classify_data.xstest(folder / "xstest-v2", seed))
    lingconf = folder / "linguistic-confidence" / "full_dataset.csv"
    return rows + list(classify_data.lingconf(lingconf, seed))


def _jsonl(path: Path) -> list[Row]:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    bad = [i for i, r in enumerate(rows, 1) if r.get("label") not in LABELS or "response" not in r]
    if bad:
        raise SystemExit(f"{path}: lines {bad[:5]} lack a response or a label in {LABELS}")
    return rows


def quality(rows: list[Row], errors: int = 0) -> dict[str, Any]:
    """Score every row once, then print and return the held-out, per-source and per-model
    figures and the targets."""
    labelled = source_labels(rows)
    verdicts = [classify_response(r["response"]) for r in rows]
    predicted = [
        scored_as(v.label, labelled[str(r.get("source", "?"))])
        for r, v in zip(rows, verdicts, strict=True)
    ]
    heldout = [i for i, r in enumerate(rows) if r.get("split", "heldout") == "heldout"]
    overall = _table(rows, predicted, heldout)
    print(f"held-out half: {overall.n} labelled replies")
    _print_table(overall)
    _print_confusion([rows[i]["label"] for i in heldout], [predicted[i] for i in heldout])
    loso = _print_groups("leave one source out (held-out half)", rows, predicted, heldout, "source")
    models = _print_groups(
        "per model (held-out half)",
        rows,
        predicted,
        heldout,
        lambda r: f"{r.get('source')}/{r.get('model')}",
    )
    passed = _print_targets(overall, loso)
    if errors:
        _print_errors(rows, verdicts, predicted, errors)
    return {
        "rows": overall.n,
        "macro_f1": round(overall.macro_f1, 4),
        "f1": {label: round(overall.by_label[label].f1, 4) for label in LABELS},
        "rate_gap_points": {label: round(g, 2) for label, g in overall.gaps.items()},
        "loso_macro_f1": {k: round(t.macro_f1, 4) for k, t in loso.items()},
        "per_model_macro_f1": {k: round(t.macro_f1, 4) for k, t in models.items()},
        "targets_met": passed,
    }


def _table(rows: list[Row], predicted: list[str], indexes: Sequence[int]) -> Table:
    return table([rows[i]["label"] for i in indexes], [predicted[i] for i in indexes])


def _print_table(t: Table) -> None:
    print(f"{'label':8} {'prec':>6} {'recall':>6} {'F1':>6} {'true%':>6} {'pred%':>6} {'bias':>6}")
    for label, s in t.by_label.items():
        if label not in t.labels:
            continue
        true, pred = 100 * s.support / t.n, 100 * s.predicted / t.n
        print(
            f"{label:8} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} "
            f"{true:6.1f} {pred:6.1f} {pred - true:+6.1f}"
        )
    print(f"macro-F1 {t.macro_f1:.3f} over {', '.join(t.labels)}")


def _print_groups(
    title: str,
    rows: list[Row],
    predicted: list[str],
    indexes: Sequence[int],
    key: str | Callable[[Row], str],
) -> dict[str, Table]:
    keyed = (lambda r: str(r.get(key, "?"))) if isinstance(key, str) else key
    groups: dict[str, list[int]] = {}
    for i in indexes:
        groups.setdefault(keyed(rows[i]), []).append(i)
    print(title)
    print(f"{'':40} {'n':>5} {'macro':>6} {'abst':>6} {'flag':>6} {'answer':>6} {'worst bias':>10}")
    tables = {}
    for name, members in sorted(groups.items()):
        t = tables[name] = _table(rows, predicted, members)
        f1 = [f"{t.by_label[x].f1:6.3f}" if x in t.labels else f"{'-':>6}" for x in LABELS]
        print(f"{name[:40]:40} {t.n:5d} {t.macro_f1:6.3f} {' '.join(f1)} {t.worst_gap:+10.1f}")
    return tables


def _print_targets(overall: Table, loso: dict[str, Table]) -> bool:
    worst = min(loso.values(), key=lambda t: t.macro_f1)
    checks = [
        (
            f"held-out macro-F1 >= {TARGETS['heldout_macro_f1']}",
            overall.macro_f1 >= TARGETS["heldout_macro_f1"],
            f"{overall.macro_f1:.3f}",
        ),
        (
            f"leave-one-source-out macro-F1 >= {TARGETS['loso_macro_f1']} on every source",
            worst.macro_f1 >= TARGETS["loso_macro_f1"],
            f"lowest {worst.macro_f1:.3f}",
        ),
        (
            f"every label's predicted rate within {TARGETS['rate_gap_points']:g} points",
            overall.worst_gap <= TARGETS["rate_gap_points"],
            f"worst {overall.worst_gap:.2f}",
        ),
    ]
    print("targets")
    for name, ok, got in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {name}  ({got})")
    return all(ok for _, ok, _ in checks)


def _print_confusion(truth: list[str], predicted: list[str]) -> None:
    pairs = Counter(zip(truth, predicted, strict=True))
    print("confusion (rows true, columns predicted)")
    print(" " * 9 + "".join(f"{label:>9}" for label in LABELS))
    for t in LABELS:
        print(f"{t:9}" + "".join(f"{pairs[t, p]:9d}" for p in LABELS))


def _print_errors(
    rows: list[Row], verdicts: list[Verdict], predicted: list[str], limit: int
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
            verdict = "PASS" if median <= budget else "MISS"
            print(f"{key:14} {median:8.1f} {p99:8.1f} {budget:8.0f}  {verdict}")
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
