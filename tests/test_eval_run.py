"""`floorgate eval run` against the fake upstream: every ticket to every candidate, the
contract on or off, errors recorded per ticket, and a killed run resumed without redoing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import prometheus_client
import pytest

from gateway.cli import main
from gateway.eval.results import Results
from tests.eval_support import ROOT, SHIPPED_TICKETS, policy, tickets_file
from tests.fake_upstream import FakeUpstream
from tests.redis_server import SHARED_URL, keys, shared_prefix

__all__ = ["policy"]  # the fixture


def run(*args: str | Path) -> int:
    return main(["eval", "run", *map(str, args)])


def test_every_ticket_goes_to_every_candidate_through_the_contract(
    policy: Path, tmp_path: Path, upstream: FakeUpstream
) -> None:
    db = tmp_path / "r.sqlite"
    seen = upstream.seen
    code = run("--tickets", SHIPPED_TICKETS, "--candidates", "local-careful,abstainer+contract",
               "--policies", policy, "--results", db)  # fmt: skip
    assert code == 0
    assert upstream.seen - seen == 40
    results = Results.open(db).results()
    assert len(results) == 40 and all(r.status == "ok" for r in results)
    plain = [r for r in results if r.candidate == "local-careful"]
    assert {r.label for r in plain} == {"answer"} and plain[0].output == "fake answer"
    abstained = [r for r in results if r.candidate == "abstainer+contract"]
    assert {(r.label, r.source, r.model, r.contract) for r in abstained} == {
        ("abstain", "tool", "abstainer", True)
    }
    assert abstained[0].output  # the abstention's reason, said in words
    assert all(r.prompt_tokens == 5 and r.completion_tokens == 2 for r in results)
    sent = upstream.since(seen)
    with_tools = [r for r in sent if r["body"].get("tools")]
    assert len(with_tools) == 20  # the contract's tools, only for the +contract candidate
    assert all(r["body"]["messages"][0]["role"] == "system" for r in with_tools)


def test_an_unreachable_model_is_an_error_for_its_tickets_and_the_run_goes_on(
    policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.sqlite"
    tickets = tickets_file(tmp_path, 4)
    assert run("--tickets", tickets, "--candidates", "down,local-careful", "--policies", policy,
               "--results", db) == 1  # fmt: skip
    assert "4 answered now, 4 error(s)" in capsys.readouterr().out
    by = {(r.candidate, r.status) for r in Results.open(db).results()}
    assert by == {("down", "error"), ("local-careful", "ok")}
    errors = [r for r in Results.open(db).results() if r.status == "error"]
    assert all("down" in (r.error or "") for r in errors)
    # Run again: only the errors are retried (and fail again); the answers stay.
    assert run("--tickets", tickets, "--candidates", "down,local-careful", "--policies", policy,
               "--results", db) == 1  # fmt: skip
    assert "4 from earlier runs, 0 answered now, 4 error(s)" in capsys.readouterr().out


def test_an_unknown_candidate_is_refused_naming_the_declared_models(
    policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run("--tickets", SHIPPED_TICKETS, "--candidates", "local-careful,gpt-17",
               "--policies", policy, "--results", tmp_path / "r.sqlite")  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown candidate 'gpt-17'" in err and "local-fast, local-careful" in err
    assert not (tmp_path / "r.sqlite").exists()  # nothing was started


def test_a_malformed_tickets_file_is_refused_with_its_line(
    policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(tickets_file(tmp_path, 2).read_text().replace("spec: vague", "spec: hazy"))
    assert run("--tickets", bad, "--candidates", "local-careful", "--policies", policy,
               "--results", tmp_path / "r.sqlite") == 2  # fmt: skip
    assert f"{bad}:6:" in capsys.readouterr().err


def test_a_different_tickets_file_needs_its_own_results_file(
    policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.sqlite"
    assert run("--tickets", tickets_file(tmp_path, 2), "--candidates", "local-careful",
               "--policies", policy, "--results", db) == 0  # fmt: skip
    assert run("--tickets", SHIPPED_TICKETS, "--candidates", "local-careful",
               "--policies", policy, "--results", db) == 2  # fmt: skip
    assert "give this run its own --results file" in capsys.readouterr().err


def _finished(db: Path) -> dict[tuple[str, str, int], float]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT ticket, candidate, sample, finished_at FROM results WHERE status = 'ok'"
        ).fetchall()
    return {(t, c, s): at for t, c, s, at in rows}


def _so_far(db: Path) -> dict[tuple[str, str, int], float]:
    try:
        return _finished(db)
    except sqlite3.OperationalError:  # not made yet, or its tables not yet
        return {}


def test_a_killed_run_resumes_without_redoing_a_finished_ticket(
    policy: Path, tmp_path: Path, upstream: FakeUpstream
) -> None:
    db, tickets = tmp_path / "r.sqlite", tickets_file(tmp_path, 12)
    args = ["--tickets", str(tickets), "--candidates", "slow", "--policies", str(policy),
            "--results", str(db), "--concurrency", "1"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "eval", "run", *args], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while len(_so_far(db)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = _finished(db)
    assert 3 <= len(before) < 12
    seen = upstream.seen
    assert run(*args) == 0
    after = _finished(db)
    assert len(after) == 12
    assert upstream.seen - seen == 12 - len(before)  # only the missing ones were asked
    assert {k: after[k] for k in before} == before  # the finished ones were not rewritten


def test_evaluation_traffic_reaches_no_production_state(
    policy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with shared_prefix() as prefix:
        monkeypatch.setenv("FLOORGATE_REDIS_URL", SHARED_URL)
        monkeypatch.setenv("FLOORGATE_REDIS_KEY_PREFIX", prefix)
        assert run("--tickets", tickets_file(tmp_path, 3), "--candidates", "local-careful",
                   "--policies", policy, "--results", tmp_path / "r.sqlite") == 0  # fmt: skip
        assert keys(SHARED_URL, prefix) == []  # no ledger record, no gate statistics
    names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not [n for n in names if n.startswith("floorgate")]


def test_a_model_that_goes_away_mid_run_fails_only_its_remaining_tickets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = FakeUpstream()
    own.start()
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        (ROOT / "tests" / "policies" / "eval.yaml").read_text()
        .replace("__UPSTREAM__", own.base_url).replace("__DOWN__", own.base_url)
    )  # fmt: skip
    db = tmp_path / "r.sqlite"
    args = ["--tickets", str(tickets_file(tmp_path, 10)), "--candidates", "slow",
            "--policies", str(policy), "--results", str(db), "--concurrency", "1"]  # fmt: skip

    def stop_after_three() -> None:
        deadline = time.monotonic() + 30
        while len(_so_far(db)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        own.stop()

    stopper = threading.Thread(target=stop_after_three)
    stopper.start()
    assert run(*args) == 1
    stopper.join()
    results = Results.open(db).results()
    ok = [r for r in results if r.status == "ok"]
    errors = [r for r in results if r.status == "error"]
    assert len(results) == 10 and 3 <= len(ok) < 10 and len(ok) + len(errors) == 10
    assert all("slow" in (r.error or "") for r in errors)
    assert f"{len(ok)} answered now, {len(errors)} error(s)" in capsys.readouterr().out


def test_checks_run_on_each_output_only_when_asked(policy: Path, tmp_path: Path) -> None:
    tickets = tmp_path / "checked.yaml"
    tickets.write_text(
        "apiVersion: floorgate.dev/v1\nkind: EvalTickets\nmetadata: {name: checked}\ntickets:\n"
        "  - {id: passes, spec: clear, prompt: 'SAY: def f(): pass',"
        ' check: {command: \'grep -q "def f" output.md && test -f "$FLOORGATE_OUTPUT"\'}}\n'
        "  - {id: fails, spec: clear, prompt: 'SAY: no', check: {command: 'echo no; exit 3'}}\n"
        "  - {id: hangs, spec: clear, prompt: x, check: {command: 'sleep 5', timeout_s: 0.3}}\n"
    )
    db = tmp_path / "r.sqlite"
    base = ["--tickets", tickets, "--candidates", "local-careful", "--policies", policy]
    assert run(*base, "--results", db) == 0
    assert {r.check_status for r in Results.open(db).results()} == {None}
    checked = tmp_path / "checked.sqlite"
    assert run(*base, "--results", checked, "--run-checks") == 0
    by = {r.ticket: (r.check_status, r.check_output) for r in Results.open(checked).results()}
    assert by == {
        "passes": ("passed", ""),
        "fails": ("failed", "no\n"),
        "hangs": ("timeout", "no result within 0.3 s"),
    }


def test_a_file_that_is_not_a_results_file_is_refused(
    policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.sqlite"
    notes.write_text("my notes, not a database\n" * 100)
    assert run("--tickets", tickets_file(tmp_path, 1), "--candidates", "local-careful",
               "--policies", policy, "--results", notes) == 2  # fmt: skip
    assert f"{notes}: not a results file" in capsys.readouterr().err
    assert notes.read_text().startswith("my notes")
