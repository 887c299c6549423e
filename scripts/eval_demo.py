"""The evaluation walk-through (`make eval-demo`, README): the twenty shipped tickets against two
candidates, the local model with and without the calibration contract; the shipped sample
review imported; the report printed and written; the gate run, failing one candidate and
admitting the other; and the policy that requires an admission refused before, accepted after.

    .venv/bin/python scripts/eval_demo.py                       # against the local model
    .venv/bin/python scripts/eval_demo.py --api-base URL --dir D  # another OpenAI-wire upstream

Each step prints its command; the script fails if any step exits other than as expected.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_MODEL = "http://127.0.0.1:${FLOORGATE_LOCAL_MODEL_PORT:-8081}/v1"  # as the policy says
CANDIDATES = "local-careful,local-careful+contract"


def steps(d: Path, max_tokens: int) -> list[tuple[list[str], int]]:
    """(floorgate arguments, the exit status the walk-through expects)."""
    policy, results = str(d / "policy.yaml"), str(d / "results.sqlite")
    return [
        (["check", policy], 1),  # calibration-first requires an admission nobody has yet
        (["eval", "run", "--tickets", "eval/tickets.yaml", "--candidates", CANDIDATES,
          "--policies", policy, "--results", results, "--max-tokens", str(max_tokens)], 0),
        (["eval", "outcomes", "import", "eval/review.csv", "--results", results], 0),
        (["eval", "report", "--results", results, "-o", str(d / "report.md"),
          "-o", str(d / "report.html")], 0),
        (["eval", "gate", "--route", "calibration-first", "--policies", policy,
          "--results", results], 1),  # without the contract, it fails the gate
        (["check", policy], 0),  # the candidate that passed is admitted
        (["explain", "deploy-pipeline", "--policies", policy], 0),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-base", default=LOCAL_MODEL, help=f"default: {LOCAL_MODEL}")
    parser.add_argument("--dir", type=Path, default=ROOT / ".run" / "eval")
    parser.add_argument("--max-tokens", type=int, default=200)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    shipped = (ROOT / "eval" / "policy.yaml").read_text()
    (args.dir / "policy.yaml").write_text(shipped.replace(LOCAL_MODEL, args.api_base))
    (args.dir / "policy.admissions.json").unlink(missing_ok=True)  # start unadmitted
    for arguments, expected in steps(args.dir, args.max_tokens):
        print(f"\n$ floorgate {' '.join(arguments)}", flush=True)
        code = subprocess.run([sys.executable, "-m", "gateway", *arguments], cwd=ROOT).returncode
        if code != expected:
            print(f"eval-demo: exit status {code}, expected {expected}", file=sys.stderr)
            return 1
        print(f"(exit status {code}, as expected)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
