"""The shipped rules and dashboard, proven against a real Prometheus scraping a real gateway.

The gateway serves tests/data/prometheus-policy.yaml; Prometheus scrapes it every second with
the shipped rules loaded. A warm-up creates every series the load touches and waits until
Prometheus has scraped it a few times, so that rates over the load measure the load alone;
then a scripted load with known shares of abstentions, self-flags and feedback outcomes, and
every dashboard query and every recording rule through /api/v1/query: each must return data,
and the abstention, self-flag and escape rates must be the ones the load produced.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry

from tests.conftest import UPSTREAM_KEY
from tests.fake_upstream import FakeUpstream
from tests.test_prometheus import (
    ABSTAIN,
    ANSWER,
    CAREFUL,
    DASHBOARD,
    FAST,
    FLAG,
    RULES,
    Prometheus,
    Sent,
    chat,
    feedback,
    local_total,
    partial,
    policy_file,
    poll,
    prometheus_server,
    serve_policy,
    warm_up,
)

# Grafana's variables as the test fills them in: every value, then concrete multi-values.
EVERY = {"workflow": ".*", "route": ".*", "model": ".*", "__rate_interval": "2m", "__range": "5m"}
CONCRETE = EVERY | {
    "workflow": f"({CAREFUL}|{FAST})",
    "route": "(calibration-first|capability-first)",
    "model": "(careful|fast)",
}
# Counted on both sides, to know when Prometheus has scraped what the gateway counted.
COUNTED = ("floorgate_classified_total", "floorgate_feedback_total", "floorgate_requests_total")
BASELINE_SCRAPES = 6
TOLERANCE = 0.02  # rate() extrapolates: a little, and alike for every series (BASELINE_SCRAPES)
# The load: (workflow, abstentions, self-flags, answers); every fifth request is streamed.
LOAD = ((CAREFUL, 12, 6, 22), (FAST, 4, 2, 14))
# Feedback on the load's first responses of each workflow, in this order.
FEEDBACK = {
    CAREFUL: [
        *["merged"] * 10,
        *["merged_with_edits"] * 4,
        *["rejected"] * 2,
        *["escaped_defect"] * 4,
    ],
    FAST: [*["merged"] * 8, *["rejected"] * 2],
}


def run_load(client: httpx.Client) -> list[Sent]:
    plan = [
        (workflow, text)
        for workflow, *counts in LOAD
        for text, n in zip((ABSTAIN, FLAG, ANSWER), counts, strict=True)
        for _ in range(n)
    ]
    random.Random(6).shuffle(plan)
    sent = [chat(client, w, text, stream=i % 5 == 0) for i, (w, text) in enumerate(plan)]
    sent += [chat(client, CAREFUL, ANSWER, model="route/fails-then-ok") for _ in range(3)]
    for _ in range(3):
        garbage = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
        assert client.post("/v1/chat/completions", json=garbage).status_code == 404
    for workflow, outcomes in FEEDBACK.items():
        answered = [s for s in sent if s.workflow == workflow]
        for one, outcome in zip(answered, outcomes, strict=False):
            feedback(client, one, outcome, reviewed(one))
    return sent


def reviewed(sent: Sent) -> str:
    """The reviewer's verdict sent with the load's feedback: it agrees with the classifier,
    except on every third request of each label (by request id, so the test can recount)."""
    if int(sent.request_id.encode().hex(), 16) % 3:
        return sent.label
    return "answer" if sent.label != "answer" else "flag"


def precision(sent: list[Sent]) -> dict[tuple[str, ...], float]:
    """Per label the classifier gave, the share of reviewed verdicts that agree."""
    judged = [
        s
        for workflow, outcomes in FEEDBACK.items()
        for s, _ in zip([s for s in sent if s.workflow == workflow], outcomes, strict=False)
    ]
    return share(judged, lambda s: reviewed(s) == s.label, "label")


def share(sent: list[Sent], hit: Callable[[Sent], bool], *by: str) -> dict[tuple[str, ...], float]:
    totals = Counter(tuple(getattr(s, k) for k in by) for s in sent)
    hits = Counter(tuple(getattr(s, k) for k in by) for s in sent if hit(s))
    return {key: hits[key] / n for key, n in totals.items()}


def escape_rates(sent: list[Sent], *by: str) -> dict[tuple[str, ...], float]:
    judged = [
        (s, outcome)
        for workflow, outcomes in FEEDBACK.items()
        for s, outcome in zip([s for s in sent if s.workflow == workflow], outcomes, strict=False)
        if outcome != "rejected"
    ]
    escaped = {s.request_id for s, outcome in judged if outcome == "escaped_defect"}
    return share([s for s, _ in judged], lambda s: s.request_id in escaped, *by)


def close(got: Mapping[tuple[str, ...], float], want: Mapping[tuple[str, ...], float]) -> bool:
    return got.keys() == want.keys() and all(abs(got[k] - want[k]) <= TOLERANCE for k in want)


def fill(expr: str, values: Mapping[str, str]) -> str:
    return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], expr)


def dashboard_queries() -> dict[str, str]:
    """Every panel's queries, by 'panel title [refId]'."""
    queries: dict[str, str] = {}

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                queries[f"{panel['title']} [{target['refId']}]"] = target["expr"]

    walk(json.loads(DASHBOARD.read_text())["panels"])
    return queries


def recording_rules() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["record"]: r["expr"] for g in groups for r in g["rules"] if "record" in r}


def without_data(prometheus: Prometheus, queries: Mapping[str, str]) -> list[str]:
    return [name for name, expr in queries.items() if not prometheus.query(expr)]


def scraped(prometheus: Prometheus, registry: CollectorRegistry, *samples: str) -> list[str]:
    """The samples whose sum Prometheus has not yet seen at the gateway's current value."""
    return [s for s in samples if prometheus.total(s) != local_total(registry, s)]


@dataclass(frozen=True, slots=True)
class Stack:
    client: httpx.Client  # to the gateway
    prometheus: Prometheus
    registry: CollectorRegistry  # the gateway's
    policy: Path  # the file it serves


@pytest.fixture
def stack(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)
    registry = CollectorRegistry()
    policy = policy_file(tmp_path, upstream, "prometheus-policy.yaml")
    with (
        serve_policy(policy, registry, gate_refresh_s=0.2, policy_poll_s=0.2) as gateway,
        httpx.Client(base_url=gateway, timeout=10) as client,
        prometheus_server(tmp_path, gateway) as prometheus,
    ):
        yield Stack(client, prometheus, registry, policy)


def test_a_burst_between_two_scrapes_counts_in_full(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the chart's 30 s scrape interval, twenty answers and twenty feedback reports sent
    between the first two scrapes of a new gateway: the production-readiness table and the
    rules show 20 and the burst's rates, not nothing (a series born at its total has no
    increase). About a minute: one scrape to wait for, then the next."""
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)
    registry = CollectorRegistry()
    policy = policy_file(tmp_path, upstream, "prometheus-policy.yaml")
    with (
        serve_policy(policy, registry, gate_refresh_s=0.2) as gateway,
        httpx.Client(base_url=gateway, timeout=10) as client,
        prometheus_server(tmp_path, gateway, scrape_s=30) as prometheus,
    ):
        assert poll(lambda: prometheus.total("floorgate_build_info"), bool, 40), "no first scrape"
        sent = [chat(client, FAST, ABSTAIN if i < 2 else ANSWER) for i in range(20)]
        for i, one in enumerate(sent):
            feedback(client, one, "escaped_defect" if i < 3 else "merged")
        answered = "floorgate_feedback_total"
        assert poll(lambda: prometheus.total(answered), lambda v: v == 20, 40) == 20
        table = "The four numbers per model, over the dashboard's time range"
        panels = {name: fill(expr, EVERY) for name, expr in dashboard_queries().items()}
        want = {"abstention [A]": 0.1, "merge [C]": 0.85, "escape [D]": 0.15}
        want |= {"answered [E]": 20, "judged [F]": 20}
        for what, value in want.items():
            got = prometheus.values(panels[f"{table} {what.split()[1]}"], "model")
            assert got.get(("fast",)) == pytest.approx(value, abs=1e-9), f"{what}: {got}"
        rules = {
            "route_model:floorgate_feedback_judged:increase1d": 20,
            "route_model:floorgate_feedback_escaped:ratio_increase1d": 0.15,
            "workflow_route_model:floorgate_abstentions:ratio_rate5m": 0.1,
        }
        for record, value in rules.items():
            got = poll(lambda r=record: prometheus.total(r), bool, 10)  # type: ignore[misc]
            assert got == pytest.approx(value, abs=1e-9), f"{record}: {got}"
        escape = 'floorgate_gate_window_rate{route="capability-first", rate="escape"}'
        assert prometheus.total(escape) == pytest.approx(0.15), "the gateway's own, ungated"


def test_every_panel_and_rule_returns_data_and_the_rates_the_load_produced(stack: Stack) -> None:
    client, prometheus, registry = stack.client, stack.prometheus, stack.registry
    warmed = warm_up(client)
    assert poll(lambda: local_total(registry, COUNTED[0]), lambda v: v >= len(warmed), 5)
    assert not poll(lambda: scraped(prometheus, registry, *COUNTED), lambda s: not s, 15)
    # rate() extrapolates a series that starts in the window back to its zero point when that
    # is near: with a few scrapes of history before the load, every series extrapolates alike.
    history = f"min(count_over_time({{__name__=~'{'|'.join(COUNTED)}'}}[1m]))"
    assert poll(lambda: prometheus.total(history) or 0, lambda n: n >= BASELINE_SCRAPES, 15)

    sent = run_load(client)
    assert poll(lambda: local_total(registry, COUNTED[0]), lambda v: v >= len(warmed + sent), 5)
    careful_gate = 'floorgate_gate_passing{route="calibration-first", model="careful"}'
    assert poll(lambda: prometheus.total(careful_gate), lambda v: v == 0, 15) == 0, (
        "4 escapes in 18 judged should fail careful's gate (max_escape_rate 0.05)"
    )
    assert not poll(lambda: scraped(prometheus, registry, *COUNTED), lambda s: not s, 15)

    panels = {name: fill(expr, EVERY) for name, expr in dashboard_queries().items()}
    rules = recording_rules()
    queries = panels | rules | {f"record {name}": name for name in rules}
    empty = poll(lambda: without_data(prometheus, queries), lambda e: not e, 20)
    assert not empty, f"no data for: {empty}"
    assert_rules_healthy(prometheus)
    assert_variables_list_the_load(prometheus)
    assert_concrete_values_filter(prometheus)
    assert_rates_match(prometheus, panels, sent)
    assert_alerts_pend_on_the_gateways_series(stack)


def assert_alerts_pend_on_the_gateways_series(stack: Stack) -> None:
    """The alerts match what a real gateway exports: a policy the gateway rejects, and the
    gate `careful` now fails. Their `for:` keeps them pending for minutes, not firing."""
    stack.policy.write_text("spec: [this is not a policy\n")

    def pending() -> set[tuple[str, str]]:
        alerts = stack.prometheus.get("/api/v1/alerts")["alerts"]
        return {(a["labels"]["alertname"], a["labels"].get("model", "")) for a in alerts}

    want = {("FloorgatePolicyReloadFailing", ""), ("FloorgateModelFailingGate", "careful")}
    assert want <= poll(pending, want.__le__, 15)


def assert_rates_match(prometheus: Prometheus, panels: dict[str, str], sent: list[Sent]) -> None:
    """The abstention, self-flag and escape rates Prometheus computes are the load's."""
    abstained = share(sent, lambda s: s.label == "abstain", "route", "model")
    assert abstained == {
        ("calibration-first", "careful"): 12 / 40,
        ("capability-first", "fast"): 4 / 20,
        ("fails-then-ok", "careful"): 0.0,
    }
    got = prometheus.values(panels["Abstention rate by model and route [A]"], "route", "model")
    assert close(got, abstained), f"{got} != {abstained}"

    by = ("workflow", "route", "model")
    abstentions = share(sent, lambda s: s.label == "abstain", *by)
    assert_recorded(
        prometheus, "workflow_route_model:floorgate_abstentions:ratio_rate5m", abstentions
    )
    self_flags = share(sent, lambda s: s.label == "flag", *by)
    assert_recorded(
        prometheus, "workflow_route_model:floorgate_self_flags:ratio_rate5m", self_flags
    )
    detector = "Detector precision per label (1d, from verdict corrections) [A]"
    want = precision(sent)
    assert set(want) == {("abstain",), ("flag",), ("answer",)} and min(want.values()) < 1
    got = prometheus.values(panels[detector], "from")
    assert close(got, want), f"{detector}: {got} != {want}"
    escapes = escape_rates(sent, *by)
    assert escapes[(CAREFUL, "calibration-first", "careful")] == 4 / 18
    assert_recorded(
        prometheus, "workflow_route_model:floorgate_feedback_escaped:ratio_increase1d", escapes
    )

    table = "The four numbers per model, over the dashboard's time range"
    want = share(sent, lambda s: s.label == "abstain", "model")
    got = prometheus.values(panels[f"{table} [A]"], "model")
    assert close(got, want), f"{table}, abstention: {got} != {want}"
    want = escape_rates(sent, "model")
    got = prometheus.values(panels[f"{table} [D]"], "model")
    assert close(got, want), f"{table}, escape: {got} != {want}"


def assert_recorded(
    prometheus: Prometheus, record: str, want: dict[tuple[str, ...], float]
) -> None:
    """The recorded series reaches the load's values (rules run a moment after each scrape)."""
    got = poll(
        lambda: prometheus.values(record, "workflow", "route", "model"), partial(close, want), 15
    )
    assert close(got, want), f"{record}: {got} != {want}"


def assert_rules_healthy(prometheus: Prometheus) -> None:
    """Every rule of the file loaded, and evaluated without error (alerts included)."""
    groups = prometheus.get("/api/v1/rules")["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    declared = yaml.safe_load(RULES.read_text())["groups"]
    names = [r.get("record") or r["alert"] for g in declared for r in g["rules"]]
    assert sorted(loaded) == sorted(names)
    unhealthy = {n: r.get("lastError") for n, r in loaded.items() if r["health"] != "ok"}
    assert not unhealthy


def assert_variables_list_the_load(prometheus: Prometheus) -> None:
    """Each dashboard variable's label_values() query, as Grafana would run it."""
    variables = json.loads(DASHBOARD.read_text())["templating"]["list"]
    queries = {v["name"]: v["definition"] for v in variables if v["type"] == "query"}
    expected = {
        "workflow": {CAREFUL, FAST},
        "route": {"calibration-first", "capability-first", "fails-then-ok"},
        "model": {"careful", "fast"},
    }
    assert queries.keys() == expected.keys()
    for name, query in queries.items():
        found = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
        assert found, query
        selector, label = fill(found[1], EVERY), found[2]
        values = set(prometheus.get(f"/api/v1/label/{label}/values", **{"match[]": selector}))
        assert expected[name] <= values, f"{name}: {values}"


def assert_concrete_values_filter(prometheus: Prometheus) -> None:
    """With concrete multi-values every query is still valid PromQL, and filters."""
    panels = {name: fill(expr, CONCRETE) for name, expr in dashboard_queries().items()}
    for expr in panels.values():
        prometheus.query(expr)
    got = prometheus.values(panels["Abstention rate by model and route [A]"], "route", "model")
    assert set(got) == {("calibration-first", "careful"), ("capability-first", "fast")}
