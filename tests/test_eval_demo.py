"""CI's run of the README's walk-through (scripts/eval_demo.py), against the fake upstream."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.eval_support import ROOT
from tests.fake_upstream import FakeUpstream


def test_the_walk_through_runs_end_to_end(upstream: FakeUpstream, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "scripts/eval_demo.py", "--api-base", upstream.base_url,
         "--dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("as expected") == 7
    assert "merge rate" in out and "escape rate" in out and "38% [18-64%] n=13" in out
    assert "local-careful: FAIL" in out and "local-careful+contract: PASS" in out
    assert "admitted local-careful to calibration-first" in out
    assert (tmp_path / "report.md").exists() and (tmp_path / "report.html").exists()
