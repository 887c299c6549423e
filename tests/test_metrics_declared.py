"""Every series a policy declares exists at 0 from the moment it loads, so that a first burst
is an increase Prometheus can see; a reload that removes a name removes its series; and every
route's models export their live rates, gated or not.

The end-to-end proof with a real Prometheus scraping every 30 s is
tests/test_prometheus_e2e.py::test_a_burst_between_two_scrapes_counts_in_full.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.conftest import UPSTREAM_KEY
from tests.fake_upstream import FakeUpstream
from tests.test_prometheus import (
    ANSWER,
    CAREFUL,
    FAST,
    chat,
    feedback,
    policy_file,
    poll,
    serve_policy,
)

WORKFLOW_ROUTE_MODEL = (
    ("floorgate_classified_total", {"label": "abstain"}),
    ("floorgate_classified_total", {"label": "flag"}),
    ("floorgate_abstentions_total", {"kind": "declined", "source": "refusal"}),
    ("floorgate_abstentions_total", {"kind": "clarification", "source": "tool"}),
    ("floorgate_self_flags_total", {"source": "text"}),
    ("floorgate_feedback_total", {"outcome": "escaped_defect"}),
    ("floorgate_requests_total", {"code": "200", "stream": "true"}),
    ("floorgate_tokens_total", {"token_type": "output"}),
)


def triple(workflow: str, route: str, model: str) -> dict[str, str]:
    return {"workflow": workflow, "route": route, "model": model}


def values(registry: CollectorRegistry, labels: dict[str, str]) -> list[float | None]:
    return [registry.get_sample_value(name, labels | extra) for name, extra in WORKFLOW_ROUTE_MODEL]


@pytest.fixture
def policy(upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)
    return policy_file(tmp_path, upstream, "prometheus-policy.yaml")


def test_every_declared_series_is_0_before_the_first_request(policy: Path) -> None:
    registry = CollectorRegistry()
    with serve_policy(policy, registry):
        # the workflow's own route, and a stricter one a caller may ask for: every pool model
        for labels in (
            triple(CAREFUL, "calibration-first", "careful"),
            triple(CAREFUL, "calibration-first", "careful-backup"),
            triple(CAREFUL, "fails-then-ok", "broken"),
            triple(FAST, "capability-first", "fast"),
            triple(FAST, "calibration-first", "careful"),
        ):
            assert values(registry, labels) == [0.0] * len(WORKFLOW_ROUTE_MODEL), labels
        # a looser route than the workflow's own is never served, so never declared
        assert values(registry, triple(CAREFUL, "capability-first", "fast")) == [None] * len(
            WORKFLOW_ROUTE_MODEL
        )
        decision = {"workflow": FAST, "route": "fails-then-ok"}
        assert registry.get_sample_value("floorgate_route_decisions_total", decision) == 0
        failed = {"model": "broken", "kind": "timeout"}
        assert registry.get_sample_value("floorgate_upstream_errors_total", failed) == 0
        fell_back = {"route": "fails-then-ok", "model": "broken"}
        assert registry.get_sample_value("floorgate_fallbacks_total", fell_back) == 0


def test_a_reload_removes_the_series_of_the_names_it_removes(policy: Path) -> None:
    registry = CollectorRegistry()
    with (
        serve_policy(policy, registry, policy_poll_s=0.1) as gateway,
        httpx.Client(base_url=gateway, timeout=10) as client,
    ):
        chat(client, CAREFUL, ANSWER, model="route/fails-then-ok")  # broken fails, careful serves
        broken = {"model": "broken", "kind": "status"}
        assert registry.get_sample_value("floorgate_upstream_errors_total", broken) == 1
        text = policy.read_text().replace("[careful, careful-backup]", "[careful]")
        text = text.replace("fails-then-ok: {strictness: 9, pool: [broken, careful]}", "")
        lines = [line for line in text.splitlines() if "careful-backup:" not in line]
        policy.write_text("\n".join(line for line in lines if "broken:" not in line) + "\n")
        gone = triple(CAREFUL, "calibration-first", "careful-backup")
        assert poll(lambda: values(registry, gone), lambda v: v[0] is None, 10)[0] is None
        assert values(registry, gone) == [None] * len(WORKFLOW_ROUTE_MODEL)
        assert registry.get_sample_value("floorgate_upstream_errors_total", broken) is None
        fell_back = {"route": "fails-then-ok", "model": "broken"}
        assert registry.get_sample_value("floorgate_fallbacks_total", fell_back) is None
        kept = triple(CAREFUL, "calibration-first", "careful")
        assert values(registry, kept) == [0.0] * len(WORKFLOW_ROUTE_MODEL)


def test_an_ungated_routes_models_export_their_rates(policy: Path) -> None:
    registry = CollectorRegistry()
    with (
        serve_policy(policy, registry, gate_refresh_s=0.1) as gateway,
        httpx.Client(base_url=gateway, timeout=10) as client,
    ):
        sent = [chat(client, FAST, ANSWER) for _ in range(20)]
        for i, one in enumerate(sent):
            feedback(client, one, "escaped_defect" if i < 3 else "merged")
        escape = {"route": "capability-first", "model": "fast", "rate": "escape"}
        samples = poll(
            lambda: registry.get_sample_value("floorgate_gate_window_samples", escape),
            lambda v: v == 20,
            10,
        )
        assert samples == 20
        assert registry.get_sample_value("floorgate_gate_window_rate", escape) == 0.15
        merge = escape | {"rate": "merge"}
        assert registry.get_sample_value("floorgate_gate_window_rate", merge) == 0.85
        passing = {"route": "capability-first", "model": "fast"}
        assert registry.get_sample_value("floorgate_gate_passing", passing) is None  # no gate
