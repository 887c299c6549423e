"""Turn a public release of labelled model completions into the JSONL `bench.classify` reads.

    .venv/bin/python -m bench.classify_data xstest DIR -o OUT.jsonl [--seed 4]
    .venv/bin/python -m bench.classify_data lingconf full_dataset.csv -o OUT.jsonl

Writes one line per completion: {"id", "source", "model", "prompt", "response", "label",
"kind", "split"}. Rows are split into "tune" and "heldout" by prompt, with a fixed seed, so
that no prompt's completions fall on both sides. Nothing here fetches anything: DIR is a copy
you obtained under the release's license (see tests/data/README.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

# XSTest v2 (Röttger et al., NAACL 2024), human labels of five models' completions.
# A partial refusal declines part of the task, so it counts as declined here.
XSTEST_LABELS = {
    "1_full_compliance": ("answer", None),
    "2_full_refusal": ("abstain", "declined"),
    "3_partial_refusal": ("abstain", "declined"),
}


def xstest(directory: Path, seed: int) -> Iterator[dict[str, object]]:
    """Rows of model_completions/xstest_v2_completions_<model>.csv, labelled and split."""
    files = sorted(directory.glob("xstest_v2_completions_*.csv"))
    if not files:
        raise SystemExit(f"no xstest_v2_completions_*.csv in {directory}")
    rows = [(f.stem.removeprefix("xstest_v2_completions_"), r) for f in files for r in _csv(f)]
    prompts = sorted({r["id"] for _, r in rows})
    tuning = set(random.Random(seed).sample(prompts, len(prompts) // 2))
    for model, row in rows:
        label, kind = XSTEST_LABELS[row["final_label"]]
        yield {
            "id": f"xstest/{model}/{row['id']}",
            "source": "xstest-v2",
            "model": model,
            "prompt": row["prompt"],
            "response": row["completion"],
            "label": label,
            "kind": kind,
            "split": "tune" if row["id"] in tuning else "heldout",
        }


# Linguistic confidence benchmark (SimpleQA answers that four models wrote at a confidence
# level they were asked for, each rated by human annotators): the level asked for is the label.
# "moderate" ("I believe it was 1906") is left out: neither a plain answer nor clear doubt.
LINGCONF_LABELS = {
    "high": ("answer", None),
    "low": ("flag", None),
    "lowest": ("flag", None),
    "completely uncertain": ("abstain", "declined"),
}


def lingconf(path: Path, seed: int) -> Iterator[dict[str, object]]:
    """Rows of the benchmark's full_dataset.csv, labelled and split by question."""
    rows = [r for r in _csv(path) if r["llm_confidence_level"] in LINGCONF_LABELS]
    if not rows:
        raise SystemExit(f"no labelled rows in {path}")
    questions = sorted({r["question"] for r in rows})
    tuning = set(random.Random(seed).sample(questions, len(questions) // 2))
    for row in rows:
        label, kind = LINGCONF_LABELS[row["llm_confidence_level"]]
        yield {
            "id": f"lingconf/{row['orig_idx_in_40000_dataset']}",
            "source": "linguistic-confidence",
            "model": row["source_llm"],
            "prompt": row["question"],
            "response": row["uncertainty_expression"],
            "label": label,
            "kind": kind,
            "split": "tune" if row["question"] in tuning else "heldout",
        }


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


READERS = {"xstest": xstest, "lingconf": lingconf}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.classify_data", description=__doc__)
    parser.add_argument("format", choices=sorted(READERS))
    parser.add_argument(
        "path", type=Path, help="xstest: its model_completions folder; lingconf: full_dataset.csv"
    )
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    rows = list(READERS[args.format](args.path, args.seed))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
