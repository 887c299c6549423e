"""The classifier's benchmark tools: the converters that build a labelled set from a public
release's format, and the scores the benchmark prints. The rows here are written for these
tests in each release's column layout; they are not from the releases."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bench import classify as bench
from bench import classify_data


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def convert(args: list[str], out: Path) -> list[dict[str, object]]:
    assert classify_data.main([*args, "-o", str(out)]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_xstest_labels_map_and_a_prompt_never_sits_on_both_sides(tmp_path: Path) -> None:
    verdicts = ["1_full_compliance", "2_full_refusal", "3_partial_refusal"]
    for model in ("alpha", "beta"):
        write_csv(
            tmp_path / f"xstest_v2_completions_{model}.csv",
            [
                {
                    "id": f"v2-{i}",
                    "prompt": f"How do I kill process {i}?",
                    "completion": f"Run kill {i}.",
                    "final_label": verdicts[i % 3],
                }
                for i in range(12)
            ],
        )
    rows = convert(["xstest", str(tmp_path)], tmp_path / "out.jsonl")
    assert len(rows) == 24
    by_id = {r["id"]: r for r in rows}
    assert by_id["xstest/alpha/v2-0"]["label"] == "answer"
    assert (by_id["xstest/alpha/v2-1"]["label"], by_id["xstest/alpha/v2-1"]["kind"]) == (
        "abstain",
        "declined",
    )
    assert by_id["xstest/beta/v2-2"]["label"] == "abstain"
    splits: dict[object, set[object]] = {}
    for r in rows:
        splits.setdefault(r["prompt"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits.values())
    assert {r["split"] for r in rows} == {"tune", "heldout"}


def test_lingconf_maps_levels_and_leaves_out_moderate(tmp_path: Path) -> None:
    levels = ["high", "moderate", "low", "lowest", "completely uncertain"]
    path = tmp_path / "full_dataset.csv"
    write_csv(
        path,
        [
            {
                "orig_idx_in_40000_dataset": str(i),
                "question": f"When did release {i // 5} ship?",
                "ground_truth_answer": "2020",
                "uncertainty_expression": f"It shipped in 2020 ({levels[i % 5]}).",
                "llm_confidence_level": levels[i % 5],
                "source_llm": "model-x",
            }
            for i in range(20)
        ],
    )
    rows = convert(["lingconf", str(path)], tmp_path / "out.jsonl")
    assert len(rows) == 16  # the four "moderate" rows are left out
    labels = {str(r["response"]).split("(")[1].removesuffix(")."): r["label"] for r in rows}
    assert labels == {
        "high": "answer",
        "low": "flag",
        "lowest": "flag",
        "completely uncertain": "abstain",
    }
    assert {r["split"] for r in rows} == {"tune", "heldout"}


def test_quality_scores_what_the_classifier_predicts(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {"response": "I can't help with that.", "label": "abstain"},  # right
        {"response": "Which version of Python are you using?", "label": "abstain"},  # right
        {"response": "The index is on orders.created_at.", "label": "abstain"},  # missed
        {"response": "I haven't tested this on Windows.", "label": "flag"},  # right
        {"response": "The index is on orders.id.", "label": "answer"},  # right
        {"response": "I'm not sure, but it is 10 MB.", "label": "answer"},  # a false flag
    ]
    result = bench.quality([{**r, "source": "a", "model": "m"} for r in rows])
    # abstain: P 2/2, R 2/3 -> F1 0.8; flag: P 1/2, R 1/1 -> 0.667; answer: P 1/2, R 1/2 -> 0.5
    assert result["f1"] == {"abstain": 0.8, "flag": 0.6667, "answer": 0.5}
    assert result["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0.5) / 3, abs=1e-4)
    # predicted vs true share of each label, in points
    assert result["rate_gap_points"] == {"abstain": -16.67, "flag": 16.67, "answer": 0.0}
    assert result["targets_met"] is False
    out = capsys.readouterr().out
    assert "MISS  held-out macro-F1 >= 0.92" in out
    assert "MISS  every label's predicted rate within 3 points" in out


def test_a_source_that_labels_no_doubt_scores_a_flag_as_an_answer() -> None:
    rows = [
        {"response": "I'm not sure, but it is 10 MB.", "label": "answer", "source": "refusals"},
        {"response": "I can't help with that.", "label": "abstain", "source": "refusals"},
        {"response": "Possibly 1844.", "label": "flag", "source": "doubt"},
        {"response": "It was 1844.", "label": "answer", "source": "doubt"},
    ]
    result = bench.quality(rows)
    assert result["loso_macro_f1"] == {"doubt": 1.0, "refusals": 1.0}
    assert result["macro_f1"] == 1.0


def test_leave_one_source_out_and_per_model_rows(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {"response": "I can't help with that.", "label": "abstain", "source": "s1", "model": "a"},
        {"response": "It is 42.", "label": "answer", "source": "s1", "model": "b"},
        {"response": "It is 42.", "label": "abstain", "source": "s2", "model": "a"},
        {"response": "It is 43.", "label": "answer", "source": "s2", "model": "a"},
        {"response": "It is 44.", "label": "answer", "source": "s2", "model": "a", "split": "tune"},
    ]
    result = bench.quality(rows)
    assert result["rows"] == 4  # the tuning half is not scored
    assert result["loso_macro_f1"] == {"s1": 1.0, "s2": pytest.approx(1 / 3, abs=1e-4)}
    assert set(result["per_model_macro_f1"]) == {"s1/a", "s1/b", "s2/a"}
    out = capsys.readouterr().out
    assert "MISS  leave-one-source-out macro-F1 >= 0.85 on every source  (lowest 0.333)" in out


def test_the_shared_folder_is_read_in_place(tmp_path: Path) -> None:
    (tmp_path / "xstest-v2").mkdir()
    (tmp_path / "linguistic-confidence").mkdir()
    write_csv(
        tmp_path / "xstest-v2" / "xstest_v2_completions_m.csv",
        [
            {
                "id": "v2-1",
                "prompt": "p",
                "completion": "I can't help.",
                "final_label": "2_full_refusal",
            }
        ],
    )
    write_csv(
        tmp_path / "linguistic-confidence" / "full_dataset.csv",
        [
            {
                "orig_idx_in_40000_dataset": "1",
                "question": "q",
                "uncertainty_expression": "Possibly 1844.",
                "llm_confidence_level": "low",
                "source_llm": "x",
            }
        ],
    )
    rows = bench.shared_rows(tmp_path, seed=4)
    assert [(r["source"], r["label"]) for r in rows] == [
        ("xstest-v2", "abstain"),
        ("linguistic-confidence", "flag"),
    ]
    with pytest.raises(SystemExit, match="no such folder"):
        bench.main(["--shared", str(tmp_path / "missing"), "--no-timing"])


def test_check_fails_the_run_when_a_target_is_missed(tmp_path: Path) -> None:
    good = [
        {"response": "I can't help with that.", "label": "abstain", "source": "s"},
        {"response": "It is 42.", "label": "answer", "source": "s"},
    ]
    bad = [*good, {"response": "It is 43.", "label": "abstain", "source": "s"}]
    for rows, code in ((good, 0), (bad, 1)):
        path = tmp_path / "rows.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        assert bench.main(["--data", str(path), "--no-timing", "--check"]) == code
        assert bench.main(["--data", str(path), "--no-timing"]) == 0
