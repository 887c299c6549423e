"""The walk-through on the fake upstream: run the shipped tickets against two candidates, import
the shipped sample review, and report the four numbers with intervals; plus every way an
outcomes file can be wrong, and the results file's API for the review page."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.eval.results import OutcomeRecord, Results, ResultsError
from tests.eval_support import ROOT, SHIPPED_TICKETS, policy, tickets_file

__all__ = ["policy"]
REVIEW = ROOT / "eval" / "review.csv"
CANDIDATES = "local-careful,local-careful+contract"


@pytest.fixture
def ran(policy: Path, tmp_path: Path) -> Path:
    db = tmp_path / "results.sqlite"
    assert main(["eval", "run", "--tickets", str(SHIPPED_TICKETS), "--candidates", CANDIDATES,
                 "--policies", str(policy), "--results", str(db)]) == 0  # fmt: skip
    return db


def test_the_walk_through_reports_the_four_numbers_with_intervals(
    ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "outcomes", "import", str(REVIEW), "--results", str(ran)]) == 0
    assert "40 outcome(s) recorded" in capsys.readouterr().out
    md, page = tmp_path / "report.md", tmp_path / "report.html"
    assert main(["eval", "report", "--results", str(ran), "-o", str(md), "-o", str(page)]) == 0
    table = capsys.readouterr().out
    lines = {line.split("  ")[0]: line for line in table.splitlines()}
    # The sample review: 8 merges of 20 without the contract, 10 with; escapes 5/13 and 0/10.
    assert "40% [22-61%] n=20" in lines["merge rate"] and "50% [30-70%] n=20" in lines["merge rate"]
    assert "38% [18-64%] n=13" in lines["escape rate"] and "0% [0-28%] n=10" in lines["escape rate"]
    assert "31% [13-58%] n=13" in lines["self-flagged flaws"]
    assert "n=10" in lines["abstention, vague tickets"]
    assert "a cost" in lines["abstention, clear tickets (a cost)"]
    assert "abstaining on a clear ticket is a cost" in table
    assert "local-careful+contract lets fewer defects escape than local-careful" in table
    assert "not distinguishable from chance (exact McNemar p = 0.50)" in table
    assert "29.9" in lines["published capability"]
    assert "the leaderboard cannot tell local-careful and local-careful+contract apart" in table
    assert "production readiness: local-careful+contract > local-careful" in table
    assert "| **merge rate** | 40% [22-61%] n=20 | 50% [30-70%] n=20 |" in md.read_text()
    html = page.read_text()
    assert html.count("<svg") == 5 and "38% [18-64%] n=13" in html
    assert "<script" not in html and "src=" not in html and "<link" not in html  # no network


def test_a_leaderboard_that_disagrees_is_said_so(
    ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["eval", "outcomes", "import", str(REVIEW), "--results", str(ran)])
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(
        "models:\n"
        "  - {name: local-careful, benchmark: B, score: 90, source: https://example.org/a}\n"
        "  - {name: local-careful+contract, benchmark: B, score: 80, source: https://e.org/b}\n"
    )
    capsys.readouterr()
    assert main(["eval", "report", "--results", str(ran), "--catalogue", str(catalogue)]) == 0
    out = capsys.readouterr().out
    assert "leaderboard (B): local-careful 90 > local-careful+contract 80" in out
    assert "DISAGREE: the leaderboard puts local-careful above local-careful+contract" in out


def test_an_outcome_for_an_unknown_ticket_imports_nothing_and_names_the_line(
    ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "review.csv"
    lines = REVIEW.read_text().splitlines()
    lines[3] = lines[3].replace("sql-dedupe-orders", "no-such-ticket")
    lines[5] = lines[5].replace("merged", "shipped", 1)
    bad.write_text("\n".join(lines) + "\n")
    assert main(["eval", "outcomes", "import", str(bad), "--results", str(ran)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4: ticket 'no-such-ticket' is not among the 20 tickets" in err
    assert f"{bad}:6: outcome 'shipped' is not one of merged" in err
    assert "nothing imported" in err
    assert Results.open(ran).outcomes() == {}


def test_a_wrong_csv_header_is_one_problem_at_line_1(
    ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "review.csv"
    lines = REVIEW.read_text().splitlines()
    bad.write_text("\n".join([lines[0].replace("candidate", "model"), *lines[1:]]) + "\n")
    assert main(["eval", "outcomes", "import", str(bad), "--results", str(ran)]) == 1
    problems = capsys.readouterr().err.splitlines()[1:]
    assert problems == [
        f"{bad}:1: unknown column model; no column candidate; the columns are ticket, "
        "candidate, outcome, sample, flag_pointed, corrected_verdict, note, reviewer"
    ]
    bad.write_text(f"{lines[0]}\n{lines[1]},extra\n")
    assert main(["eval", "outcomes", "import", str(bad), "--results", str(ran)]) == 1
    assert f"{bad}:2: more values than the header's 7 columns" in capsys.readouterr().err
    assert Results.open(ran).outcomes() == {}


def test_a_line_that_is_not_json_is_named_beside_the_others_problems(
    ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    review = tmp_path / "review.jsonl"
    review.write_text('{"ticket": "make-it-faster", "candidate": "local-careful"}\n{oops\n[1]\n')
    assert main(["eval", "outcomes", "import", str(review), "--results", str(ran)]) == 1
    assert capsys.readouterr().err.splitlines()[1:] == [
        f"{review}:1: 'outcome' is required",
        f"{review}:2: not JSON at column 2: unexpected character, expected a string key",
        f"{review}:3: expected a JSON object per line",
    ]


def test_jsonl_outcomes_with_a_corrected_verdict(
    ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    review = tmp_path / "review.jsonl"
    review.write_text(
        '{"ticket": "make-it-faster", "candidate": "local-careful", "outcome": "rejected", '
        '"corrected_verdict": "abstain", "flag_pointed": false}\n\n'
        '{"ticket": "make-it-faster", "candidate": "nobody", "outcome": "merged"}\n'
    )
    assert main(["eval", "outcomes", "import", str(review), "--results", str(ran)]) == 1
    assert f"{review}:3: candidate 'nobody' was not run" in capsys.readouterr().err
    review.write_text(review.read_text().splitlines()[0] + "\n")
    assert main(["eval", "outcomes", "import", str(review), "--results", str(ran)]) == 0
    main(["eval", "report", "--results", str(ran)])
    vague = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("abstention, v"))
    assert "10% [2-40%] n=10" in vague  # the reviewer's verdict overrides the classifier's


def test_two_writers_never_lose_an_outcome(policy: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    tickets = tickets_file(tmp_path, 30)
    assert main(["eval", "run", "--tickets", str(tickets), "--candidates", "local-careful",
                 "--policies", str(policy), "--results", str(db)]) == 0  # fmt: skip

    def review(offset: int) -> None:
        results = Results.open(db)  # each writer its own connection, as two processes would
        for i in range(offset, 30, 2):
            results.write_outcome(OutcomeRecord(f"t{i}", "local-careful", "merged", note="x"))
        results.close()

    writers = [threading.Thread(target=review, args=(k,)) for k in (0, 1)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    outcomes = Results.open(db).outcomes()
    assert len(outcomes) == 30 and {o.source for o in outcomes.values()} == {"import"}
    with pytest.raises(ResultsError, match="ticket 'nope' is not among"):
        Results.open(db).write_outcome(OutcomeRecord("nope", "local-careful", "merged"))
    with pytest.raises(ResultsError, match="no result for ticket 't1', candidate 'x'"):
        Results.open(db).write_outcome(OutcomeRecord("t1", "x", "merged"))


def test_a_missing_results_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "report", "--results", str(tmp_path / "none.sqlite")]) == 2
    assert "no results file here; make one with `floorgate eval run`" in capsys.readouterr().err
