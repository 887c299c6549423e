"""Live calibration gates: a model past its route's limits is skipped until it is back within
them, in one process (in-memory state) and across two replicas sharing one Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import openai
import pytest

from gateway.app import Floorgate
from gateway.gates import evaluate
from gateway.policy.model import Gate
from gateway.state.base import Counts
from tests.fake_upstream import FakeUpstream
from tests.redis_server import SHARED_URL, shared_prefix
from tests.state_gateway import (
    CAREFUL,
    Caller,
    gates_policy,
    sample,
    served,
    state_settings,
    wait_until,
)

Replicas = tuple[tuple[str, Floorgate], tuple[str, Floorgate]]


@pytest.fixture
def policy(upstream: FakeUpstream, tmp_path: Path) -> Path:
    return gates_policy(tmp_path, upstream)


@contextmanager
def replicas(policy: Path, shared: bool) -> Iterator[Replicas]:
    """Two gateways sharing one Redis; or, without Redis, one gateway playing both parts."""
    with ExitStack() as stack:
        if not shared:
            one = stack.enter_context(served(state_settings(policy)))
            yield one, one
            return
        prefix = stack.enter_context(shared_prefix())
        settings = state_settings(policy, SHARED_URL, redis_key_prefix=prefix)
        yield stack.enter_context(served(settings)), stack.enter_context(served(settings))


def passing(app: Floorgate, route: str = "calibration-first", model: str = "careful") -> float:
    return sample(app, "floorgate_gate_passing", route=route, model=model) or 0.0


def test_a_limit_counts_only_with_enough_samples() -> None:
    gate = Gate(max_escape_rate=0.25, min_samples=4, min_abstention_rate=0.1)
    few = evaluate("r", "m", gate, {"wf": Counts(answered=100, abstained=20, escaped_defect=3)})
    assert few.passing  # escape 3 of 3, but 3 < min_samples
    many = evaluate("r", "m", gate, {"wf": Counts(answered=100, merged=2, escaped_defect=2)})
    assert not many.passing
    assert many.failures == (
        "escape rate 0.500 > max 0.25 (4 samples)",
        "abstention rate 0.000 < min 0.1 (100 samples)",
    )
    assert many.badness == pytest.approx(0.25 + 0.1)
    at_limit = evaluate("r", "m", gate, {"wf": Counts(answered=10, abstained=1, merged=3,
                                                      escaped_defect=1)})  # fmt: skip
    assert at_limit.passing  # a rate exactly at its limit passes


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "two-replicas-redis"])
def test_escapes_gate_a_model_out_and_merges_bring_it_back(policy: Path, shared: bool) -> None:
    with (
        replicas(policy, shared) as ((url_a, app_a), (url_b, app_b)),
        Caller(url_a) as a,
        Caller(url_b) as b,
    ):
        gate_scenario(a, app_a, b, app_b)


def gate_scenario(a: Caller, app_a: Floorgate, b: Caller, app_b: Floorgate) -> None:
    """Chat through `a`, report outcomes through `b`; both must see the gate move."""
    served_by = [a.chat() for _ in range(10)]
    assert {model for _, model in served_by} == {"careful"}
    ids = [request_id for request_id, _ in served_by]

    for request_id in ids[:2]:  # 2 of 2 merged outputs escaped: past max 0.25
        assert b.feedback(request_id, "escaped_defect").json()["status"] == "recorded"
    for app in (app_a, app_b):
        wait_until(lambda app=app: passing(app) == 0.0, what="careful gated out")
    assert a.chat()[1] == "careful-backup"
    assert b.chat()[1] == "careful-backup"
    state = app_a.runtime.gates.state("calibration-first", "careful")
    assert state is not None and not state.passing
    assert state.failures == ("escape rate 1.000 > max 0.25 (2 samples)",)
    assert sample(app_a, "floorgate_gate_all_failing", route="calibration-first") == 0
    assert sample(app_a, "floorgate_gate_window_rate", **CAREFUL, rate="escape") == 1.0
    explained = a.http.post("/v1/route/explain", json={"model": "workflow/deploy-pipeline"})
    assert explained.json()["model"] == "careful-backup"
    [careful] = [m for m in explained.json()["pool"] if m["name"] == "careful"]
    assert careful["gate"]["passing"] is False
    assert careful["why"] == "skipped: failing its gate (escape rate 1.000 > max 0.25 (2 samples))"

    for request_id in ids[2:]:  # 2 escapes of 10 merged: 0.2, within 0.25
        assert b.feedback(request_id, "merged").status_code == 200
    for app in (app_a, app_b):
        wait_until(lambda app=app: passing(app) == 1.0, what="careful back")
    assert a.chat()[1] == "careful"
    labels = {"workflow": "deploy-pipeline", **CAREFUL, "outcome": "merged"}
    assert sample(app_b, "floorgate_feedback_total", **labels) == 8


def test_when_all_fail_reject_answers_503(policy: Path) -> None:
    with served(state_settings(policy)) as (url, app), Caller(url) as caller:
        request_id, model = caller.chat("route/strict-reject")
        assert model == "solo"
        assert caller.feedback(request_id, "escaped_defect").status_code == 200
        wait_until(lambda: passing(app, "strict-reject", "solo") == 0.0, what="solo gated out")
        assert sample(app, "floorgate_gate_all_failing", route="strict-reject") == 1
        with pytest.raises(openai.APIStatusError) as caught:
            caller.chat("route/strict-reject")
        assert caught.value.status_code == 503
        error = caught.value.body
        assert isinstance(error, dict) and error["code"] == "gate_all_failing"


def test_when_all_fail_the_least_bad_serves(policy: Path) -> None:
    with served(state_settings(policy)) as (url, app), Caller(url) as caller:
        first = [caller.chat("route/least-bad") for _ in range(4)]
        assert {model for _, model in first} == {"worse"}
        # worse: 2 escapes of 2 merged (1.0); better has no samples yet, so it passes.
        for request_id, _ in first[:2]:
            caller.feedback(request_id, "escaped_defect")
        wait_until(lambda: passing(app, "least-bad", "worse") == 0.0, what="worse gated out")
        second = [caller.chat("route/least-bad") for _ in range(4)]
        assert {model for _, model in second} == {"better"}
        # better: 1 escape of 4 merged (0.25), still less bad than worse's 1.0.
        caller.feedback(second[0][0], "escaped_defect")
        for request_id, _ in second[1:]:
            caller.feedback(request_id, "merged")
        wait_until(
            lambda: sample(app, "floorgate_gate_window_samples", route="least-bad", model="better",
                           rate="escape") == 4,
            what="better's four outcomes read",
        )  # fmt: skip
        assert passing(app, "least-bad", "better") == 0.0
        assert sample(app, "floorgate_gate_all_failing", route="least-bad") == 1
        assert caller.chat("route/least-bad")[1] == "better"
        states = app.runtime.gates.states()
        assert states[("least-bad", "worse")].badness > states[("least-bad", "better")].badness
        as_json = states[("least-bad", "better")].as_json()
        assert as_json["rates"]["escape"] == {"value": 0.25, "samples": 4}
