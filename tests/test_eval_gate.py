"""The rollout gate on the shipped walk-through (eval/policy.yaml on the fake upstream): the
candidate that fails exits non-zero, the one that passes is admitted, and a route that
requires an admission refuses an unadmitted model with file:line and accepts it once admitted."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway.cli import main
from gateway.policy.admissions import admissions_path
from gateway.policy.loader import load_policy
from tests.eval_support import ROOT, SHIPPED_TICKETS
from tests.fake_upstream import FakeUpstream
from tests.policy_gateway import line_of, own_gateway

LOCAL_MODEL = "http://127.0.0.1:${FLOORGATE_LOCAL_MODEL_PORT:-8081}/v1"  # as the policy says
REVIEW = ROOT / "eval" / "review.csv"


@pytest.fixture
def walk(tmp_path: Path, upstream: FakeUpstream) -> tuple[Path, Path]:
    """(policy, results): the shipped demo run and reviewed, against the fake upstream."""
    policy = tmp_path / "policy.yaml"
    shipped = (ROOT / "eval" / "policy.yaml").read_text()
    policy.write_text(shipped.replace(LOCAL_MODEL, upstream.base_url))
    results = tmp_path / "results.sqlite"
    assert main(["eval", "run", "--tickets", str(SHIPPED_TICKETS), "--candidates",
                 "local-careful,local-careful+contract", "--policies", str(policy),
                 "--results", str(results)]) == 0  # fmt: skip
    assert main(["eval", "outcomes", "import", str(REVIEW), "--results", str(results)]) == 0
    return policy, results


def gate(walk: tuple[Path, Path], *extra: str) -> int:
    policy, results = walk
    return main(["eval", "gate", "--route", "calibration-first", "--policies", str(policy),
                 "--results", str(results), *extra])  # fmt: skip


def test_admission_required_refuses_then_admits_what_passed_the_gate(
    walk: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, _ = walk
    capsys.readouterr()
    assert main(["check", str(policy)]) == 1
    out = capsys.readouterr().out
    line = line_of(policy, "pool: [local-careful]")
    assert f"{policy}:{line}:" in out
    assert "route 'calibration-first' requires an admission, and model 'local-careful'" in out

    assert gate(walk) == 1  # one candidate fails: CI blocks the rollout
    out = capsys.readouterr().out
    assert "local-careful: FAIL" in out and "local-careful+contract: PASS" in out
    assert "escape rate 38% [18-64%] n=13: the rate <= 0.05? FAIL" in out
    assert "not admissible here: route 'calibration-first' runs the calibration contract" in out
    assert "this was without it" in out
    assert "escape rate 0% [0-28%] n=10: the rate <= 0.05? pass; its interval crosses 0.05" in out
    assert "merge rate 50% [30-70%] n=20: the rate >= 0.4? pass" in out
    admissions = orjson.loads(admissions_path(policy).read_bytes())["admissions"]
    assert [(a["route"], a["model"], a["contract"]) for a in admissions] == [
        ("calibration-first", "local-careful", True)
    ]

    assert main(["check", str(policy)]) == 0
    capsys.readouterr()
    assert main(["explain", "deploy-pipeline", "--policies", str(policy)]) == 0
    explained = capsys.readouterr().out
    digest = admissions[0]["results_digest"]
    assert f"admitted {admissions[0]['admitted_at']} by evaluation {digest}" in explained
    assert "local-careful+contract on sample (20 tickets); escape 0% [0-28%] n=10" in explained
    with own_gateway(policy, api_keys="key-any=*") as (client, _app):
        body = client.post("/v1/route/explain", headers={"Authorization": "Bearer key-any"},
                           json={"model": "workflow/deploy-pipeline"}).json()  # fmt: skip
    (entry,) = body["pool"]
    assert entry["admission"]["results_digest"] == digest


def test_a_stricter_decision_revokes_the_admission(
    walk: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, _ = walk
    assert gate(walk) == 1
    assert main(["check", str(policy)]) == 0
    # On the interval, 0 escapes of 10 is not yet shown to be under 5%: no admission.
    assert gate(walk, "--decide", "interval") == 1
    out = capsys.readouterr().out
    assert "escape rate 0% [0-28%] n=10: the interval's bound <= 0.05? FAIL" in out
    assert orjson.loads(admissions_path(policy).read_bytes())["admissions"] == []
    assert main(["check", str(policy)]) == 1


def test_changing_the_gate_voids_the_admission(
    walk: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, _ = walk
    assert gate(walk) == 1
    assert ("calibration-first", "local-careful") in load_policy(policy).admissions
    policy.write_text(
        policy.read_text().replace("max_escape_rate: 0.05,", "max_escape_rate: 0.04,")
    )
    capsys.readouterr()
    assert main(["check", str(policy)]) == 1
    assert "(the route's gate changed since)" in capsys.readouterr().out


def test_a_route_without_a_gate_is_refused(
    walk: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, results = walk
    assert main(["eval", "gate", "--route", "nowhere", "--policies", str(policy),
                 "--results", str(results)]) == 2  # fmt: skip
    assert "gated routes: capability-first, calibration-first" in capsys.readouterr().err


def test_a_hand_edited_admissions_file_is_refused_at_its_line(
    walk: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, _ = walk
    assert gate(walk) == 1
    file = admissions_path(policy)
    text = file.read_text()
    file.write_text(text.replace('"contract": true', '"contract_on": true'))
    capsys.readouterr()
    assert main(["check", str(policy)]) == 1
    line = line_of(file, '"admitted_at"') - 1  # the entry's first line, `{`, precedes its keys
    assert (
        f"{file}:{line}:5: admissions.0: unknown field contract_on; no field contract; fix it, "
        "or delete it and run `floorgate eval gate` again"
    ) in capsys.readouterr().out
    assert gate(walk) == 2  # the gate does not overwrite what it cannot read
    file.write_text(text.replace('"contract": true', '"contract": "yes"'))
    assert main(["check", str(policy)]) == 1
    assert "admissions.0: contract is not true or false;" in capsys.readouterr().out
    file.write_text(text[:-3])
    assert main(["check", str(policy)]) == 1
    assert f"{file}:{text.count(chr(10)) - 1}:" in capsys.readouterr().out
