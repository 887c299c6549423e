"""Garbage cannot grow the gateway's series: the budget in docs/metrics.md, held on real traffic.

A gateway serving tests/data/cardinality-policy.yaml (10 workflows, 3 routes, 6 models: the
size the budget is worked out for) gets every declared workflow x route x model, streamed and
not, with every verdict, plus garbage: undeclared models, workflows and routes, refused
fields, bodies that are not JSON, feedback for unknown requests. Every label value on
/metrics must then come from the policy or a fixed enum, and each series must stay within its
documented budget.
"""

from __future__ import annotations

import ast
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from gateway.api.boundary import UNCOUNTED
from tests.conftest import UPSTREAM_KEY
from tests.fake_upstream import FakeUpstream
from tests.test_prometheus import (
    ABSTAIN,
    ANSWER,
    DATA,
    FLAG,
    ROOT,
    local_total,
    policy_file,
    poll,
    promtool_check_metrics,
    serve_policy,
)

DOC = ROOT / "docs" / "metrics.md"
POLICY = "cardinality-policy.yaml"
WORKERS = 8
TIMES = "\N{MULTIPLICATION SIGN}"  # as the docs write products
GARBAGE = 10  # distinct garbage names of each kind
# The series issue 6 names as the contract; the docs must budget each of them.
CONTRACT = (
    "floorgate_requests_total",
    "floorgate_request_duration_seconds",
    "floorgate_time_to_first_token_seconds",
    "floorgate_overhead_seconds",
    "floorgate_in_flight_requests",
    "floorgate_tokens_total",
    "floorgate_estimated_cost_dollars_total",
    "floorgate_route_decisions_total",
    "floorgate_unknown_workflow_requests_total",
    "floorgate_upstream_errors_total",
    "floorgate_fallbacks_total",
    "floorgate_classified_total",
    "floorgate_abstentions_total",
    "floorgate_self_flags_total",
    "floorgate_feedback_total",
    "floorgate_feedback_unattributed_total",
    "floorgate_gate_passing",
    "floorgate_gate_all_failing",
    "floorgate_ledger_write_failures_total",
    "floorgate_ledger_dropped_total",
    "floorgate_policy_reloads_total",
    "floorgate_policy_last_reload_success_timestamp_seconds",
    "floorgate_policy_last_reload_successful",
    "floorgate_policy_info",
    "floorgate_build_info",
)
ENUMS: dict[str, set[str] | None] = {  # None: any value (bucket bounds, version strings)
    "code": {str(c) for c in (200, 400, 401, 403, 404, 413, 422, 429, 499, 500, 502, 503, 504)},
    "stream": {"true", "false"},
    "stage": {"before_first_byte", "mid_stream"},
    "label": {"abstain", "flag", "answer"},
    "kind": {"declined", "clarification", "status", "timeout", "connect", "protocol", "busy"},
    "source": {"tool", "refusal", "content_filter", "text"},
    "token_type": {"input", "output"},
    "outcome": {"merged", "merged_with_edits", "rejected", "escaped_defect"},
    "reason": {
        "not_found",
        "forbidden",
        "invalid",
        "unavailable",
        "full",
        "timeout",
        "loop_lag",
        "queue_wait",
        "in_flight",
    },
    "result": {"success", "unchanged", "failure"},
    "trigger": {"watch", "sighup", "admin"},
    "rate": {"abstention", "self_flag", "merge", "escape"},
    "limit": {"requests_per_minute", "tokens_per_minute", "spend_per_day", "concurrency"},
    "from": {"abstain", "flag", "answer"},  # verdict corrections: the classifier's label
    "to": {"abstain", "flag", "answer"},  # and the reviewer's
    "le": None,
    "version": None,
}


@dataclass(frozen=True, slots=True)
class Call:
    path: str
    body: dict[str, Any] | bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]


def budget_rows() -> dict[str, tuple[str, int]]:
    """The budget table of docs/metrics.md: series -> (formula, figure at 10 x 3 x 6)."""
    section = DOC.read_text().split("## Series budget", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(floorgate_\w+)` \| ([^|]+) \| ([\d,]+) \|$", section, re.M)
    return {name: (formula.strip(), int(n.replace(",", ""))) for name, formula, n in rows}


def documented_total() -> int:
    found = re.search(r"^\| \*\*total\*\* \| +\| \*\*([\d,]+)\*\* \|$", DOC.read_text(), re.M)
    assert found, "docs/metrics.md: no **total** row in the budget table"
    return int(found[1].replace(",", ""))


def evaluate(formula: str, workflows: int, routes: int, models: int) -> int:
    """A budget formula from the docs, such as `4K + 22P + 11`: sums and products only."""
    names = {"W": workflows, "R": routes, "M": models}
    names |= {"K": workflows * routes * models, "P": workflows * routes, "Q": routes * models}
    text = re.sub(r"(\d)\s*(?=[A-Z(])", r"\1*", formula.replace(TIMES, "*"))

    def value(node: ast.expr) -> int:
        match node:
            case ast.Constant(value=int() as number):
                return number
            case ast.Name(id=name) if name in names:
                return names[name]
            case ast.BinOp(left, ast.Add(), right):
                return value(left) + value(right)
            case ast.BinOp(left, ast.Mult(), right):
                return value(left) * value(right)
        raise AssertionError(f"not a budget formula: {formula!r}")

    return value(ast.parse(text, mode="eval").body)


def row_name(family: Any) -> str:
    return f"{family.name}_total" if family.type == "counter" else str(family.name)


def test_the_documented_budget_adds_up_and_covers_the_contract() -> None:
    rows = budget_rows()
    assert not set(CONTRACT) - rows.keys(), "docs/metrics.md does not budget these"
    for name, (formula, figure) in rows.items():
        assert evaluate(formula, 10, 3, 6) == figure, f"{name}: {formula} at 10 x 3 x 6"
    assert sum(figure for _, figure in rows.values()) == documented_total()


def traffic(spec: dict[str, Any]) -> list[Call]:
    """Every workflow with every way of naming a route or a model, every verdict."""
    calls = []
    for workflow in spec["workflows"]:
        targets = [f"workflow/{workflow}", *(f"route/{r}" for r in spec["routes"]), *spec["models"]]
        for target in targets:
            for text, stream in ((ANSWER, False), (ABSTAIN, False), (FLAG, False), (ANSWER, True)):
                body = {"model": target, "stream": stream, "messages": [user(text)]}
                calls.append(Call("/v1/chat/completions", body, {"x-floorgate-workflow": workflow}))
    return calls


def garbage(first: int) -> list[Call]:
    """GARBAGE distinct names of each kind, numbered from `first`."""
    chat = "/v1/chat/completions"
    calls = [Call(chat, b"{not json"), Call(chat, b"[]")]
    for i in range(first, first + GARBAGE):
        name = f"garbage-{i}"
        calls += [
            Call(chat, {"model": f"no-such-model-{i}", "messages": [user("hi")]}),
            Call(chat, {"model": f"openai/gpt-{i}", "stream": True, "messages": [user("hi")]}),
            Call(chat, {"model": f"route/{name}", "messages": [user("hi")]}),
            Call(chat, {"model": f"workflow/{name}", "messages": [user("hi")]}),
            Call(chat, {"model": "fast", "metadata": {"workflow": name}, "messages": [user("hi")]}),
            Call(
                chat,
                {"model": "route/escalation", "messages": [user("hi")]},
                {"x-floorgate-workflow": name},
            ),
            Call(chat, {"model": "careful", "api_base": f"http://{name}", "messages": [user("x")]}),
            Call("/v1/feedback", {"request_id": f"fg-{name}", "outcome": "merged"}),
            Call("/v1/feedback", {"request_id": f"fg-{name}", "outcome": name}),
        ]
    return calls


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def send_all(base: str, calls: list[Call]) -> list[Reply]:
    """Over WORKERS connections at once, each with its own client."""

    def send(chunk: list[Call]) -> list[Reply]:
        replies = []
        with httpx.Client(base_url=base, timeout=10) as client:
            for call in chunk:
                body = call.body
                content = body if isinstance(body, bytes) else None
                data = None if isinstance(body, bytes) else body
                with client.stream(
                    "POST", call.path, json=data, content=content, headers=call.headers
                ) as response:
                    response.read()
                replies.append(Reply(response.status_code, dict(response.headers)))
        return replies

    with ThreadPoolExecutor(WORKERS) as pool:
        return [r for replies in pool.map(send, [calls[i::WORKERS] for i in range(WORKERS)])
                for r in replies]  # fmt: skip


def feedback_for(replies: list[Reply]) -> list[Call]:
    """Every outcome for every (workflow, route, model) that answered."""
    seen: Counter[tuple[str, ...]] = Counter()
    calls = []
    outcomes = sorted(ENUMS["outcome"] or ())
    for reply in replies:
        if reply.status != 200 or "x-floorgate-route" not in reply.headers:
            continue
        h = reply.headers
        key = (h["x-floorgate-workflow"], h["x-floorgate-route"], h["x-floorgate-model"])
        outcome = outcomes[seen[key] % len(outcomes)]
        seen[key] += 1
        verdict = ("abstain", "flag", "answer")[seen[key] % 3]
        calls.append(Call("/v1/feedback", {"request_id": h["x-floorgate-request-id"],
                                           "outcome": outcome, "verdict": verdict}))  # fmt: skip
    return calls


def label_violations(exposition: str, spec: dict[str, Any]) -> list[str]:
    allowed = ENUMS | {
        "workflow": set(spec["workflows"]) | {"unknown"},
        "route": set(spec["routes"]) | {"none", "unknown"},
        "model": set(spec["models"]) | {"none", "unknown"},
        "name": {"cardinality"},
    }
    bad = []
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            for label, value in sample.labels.items():
                values = allowed.get(label, set())
                if label not in allowed or (values is not None and value not in values):
                    bad.append(f"{sample.name}{{{label}={value!r}}}")
    return sorted(set(bad))


@pytest.fixture
def gateway(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, CollectorRegistry]]:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)
    registry = CollectorRegistry()
    with serve_policy(policy_file(tmp_path, upstream, POLICY), registry, gate_refresh_s=0.1) as url:
        yield url, registry


def test_garbage_cannot_grow_the_series_beyond_the_budget(
    gateway: tuple[str, CollectorRegistry],
) -> None:
    url, registry = gateway
    spec = yaml.safe_load((DATA / POLICY).read_text())["spec"]
    chats = traffic(spec)
    replies = send_all(url, chats + garbage(0))
    feedback = feedback_for(replies)
    replies += send_all(url, feedback)
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.post("/admin/policies/reload").status_code == 200
        sent = counted_calls(chats + garbage(0) + feedback) + 1  # and the reload
        exposition = settled(client, registry, sent)
        replies += send_all(url, garbage(GARBAGE))  # new names: must not add one series
        again = settled(client, registry, sent + counted_calls(garbage(GARBAGE)))

    statuses = Counter(r.status for r in replies)
    assert statuses[500] == 0 and statuses[200] > len(chats) / 2, statuses
    assert series(again) == series(exposition)
    assert promtool_check_metrics(exposition) == ""
    assert label_violations(exposition, spec) == []

    observed: dict[str, int] = defaultdict(int)
    sources = set()
    for family in text_string_to_metric_families(exposition):
        observed[row_name(family)] += len(family.samples)
        sources |= {s.labels["source"] for s in family.samples if "source" in s.labels}
    assert sources == ENUMS["source"], "the traffic should reach every verdict source"
    rows = budget_rows()
    assert not observed.keys() - rows.keys(), "series on /metrics with no row in the budget"
    sizes = (len(spec["workflows"]), len(spec["routes"]), len(spec["models"]))
    assert sizes == (10, 3, 6)
    over = {
        name: (n, rows[name][1])
        for name, n in observed.items()
        if n > evaluate(rows[name][0], *sizes)
    }
    assert not over, f"over budget (observed, budget): {over}"
    assert sum(observed.values()) <= documented_total()


def counted_calls(calls: list[Call]) -> int:
    """The calls the request metrics count: all but probes and scrapes."""
    return sum(1 for c in calls if urlsplit(c.path).path not in UNCOUNTED)


def settled(client: httpx.Client, registry: CollectorRegistry, sent: int) -> str:
    """/metrics once every request is counted and the gates have been evaluated."""
    counted = poll(
        lambda: local_total(registry, "floorgate_requests_total"), lambda n: n >= sent, 10
    )
    assert counted == sent
    assert poll(lambda: local_total(registry, "floorgate_gate_passing"), bool, 5), "no gates"
    return client.get("/metrics").text


def series(exposition: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (s.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }
