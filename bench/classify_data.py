"""Turn a public release of labelled model completions into the JSONL `bench.classify` reads.

    .venv/bin/python -m bench.classify_data xstest DIR -o OUT.jsonl [--seed 4]

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


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.classify_data", description=__doc__)
    parser.add_argument("format", choices=["xstest"])
    parser.add_argument("directory", type=Path, help="the release's model_completions folder")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    rows = list(xstest(args.directory, args.seed))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
