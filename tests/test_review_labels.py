"""Verdict corrections feed the detector: reviewed outputs exported as labelled replies that
`bench.classify --data` reads, and the detector's precision and recall on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import classify as bench_classify
from gateway.cli import main
from gateway.eval.stats import Rate
from tests.eval_support import policy
from tests.review_support import call, results_file, review_url

__all__ = ["policy", "results_file", "review_url"]  # fixtures
# The text detector's outputs (the contract candidate's verdicts come from its tool calls):
# what the reviewer says each really was, beside what the detector said.
MARKS = {  # ticket: (outcome, corrected verdict)
    "parse-duration": ("merged", None),  # flagged, rightly
    "make-it-faster": ("rejected", "answer"),  # "abstained": it was an answer
    "hostile": ("rejected", "flag"),  # "answered": it flagged a doubt the detector missed
}


def test_reviewed_outputs_become_labelled_replies_and_score_the_detector(
    review_url: str, results_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, body = call(f"{review_url}/api/items")
    mine = [i for i in body["items"] if i["verdict"]["source"] in ("text", "none")]
    assert {i["ticket"]["id"]: i["verdict"]["label"] for i in mine} == {
        "parse-duration": "flag", "make-it-faster": "abstain", "hostile": "answer"
    }  # fmt: skip
    for item in body["items"]:  # the contract candidate's outputs are reviewed too
        outcome, corrected = MARKS[item["ticket"]["id"]] if item in mine else ("merged", None)
        status, _ = call(f"{review_url}/api/marks", {
            "output": item["id"], "reviewer": "alice", "outcome": outcome,
            "corrected_verdict": corrected})  # fmt: skip
        assert status == 200

    out = tmp_path / "labels.jsonl"
    capsys.readouterr()
    assert main(["eval", "labels", "--results", str(results_file), "-o", str(out)]) == 0
    summary = capsys.readouterr().err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(x["id"].split("/")[0], x["label"], x["classified"]) for x in lines} == {
        ("parse-duration", "flag", "flag"), ("make-it-faster", "answer", "abstain"),
        ("hostile", "flag", "answer"),
    }  # fmt: skip
    assert all(x["split"] == "heldout" and x["model"] == "smollm2" for x in lines)
    flag = f"flag: precision {Rate(1, 1).text()}, recall {Rate(1, 2).text()}"
    abstain = f"abstain: precision {Rate(0, 1).text()}, recall {Rate(0, 0).text()}"
    assert f"3 reviewed output(s) judged by the text detector, 2 corrected; {abstain}; {flag}" in (
        summary
    )
    _, report = call(f"{review_url}/api/report")
    assert report["report"]["detector"]["scores"][1] == {
        "label": "flag", "precision": Rate(1, 1).text(), "recall": Rate(1, 2).text()
    }  # fmt: skip

    # The detector's own bench reads the file as it reads any labelled set.
    assert bench_classify.main(["--data", str(out), "--no-timing"]) == 0
    scored = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert scored["quality"]
