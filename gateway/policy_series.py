"""The label sets a policy declares: what Metrics creates at 0 the moment the policy loads.

Prometheus's `increase()` and `rate()` start a series at its first scrape, so a counter born
at its total loses that whole first step: for a small evaluation of a new model, all of its
data. Every (workflow, route, model) a request could be counted under exists before any does.
A workflow may be served on its own route and on any stricter one (identify.py), by any model
of that route's pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from gateway.policy.compiled import Policy
from gateway.state.base import Outcome
from gateway.upstream.base import FailureKind

Triple = tuple[str, str, str]  # (workflow, route, model)
VERDICT_LABELS = ("abstain", "flag", "answer")
# Which sources can decide each verdict (classify.py): the abstention kinds' and self-flags'.
ABSTENTION_SOURCES = (
    *(("declined", s) for s in ("tool", "refusal", "content_filter", "text")),
    *(("clarification", s) for s in ("tool", "text")),
)
FLAG_SOURCES = ("tool", "text")
OUTCOMES: tuple[str, ...] = get_args(Outcome)
FAILURE_KINDS: tuple[str, ...] = get_args(FailureKind)
ANSWERED_STREAM = ("true", "false")


@dataclass(frozen=True, slots=True)
class DeclaredSeries:
    """The names a policy declares, and the label tuples a request could be counted under."""

    workflows: frozenset[str]
    routes: frozenset[str]
    models: frozenset[str]
    triples: tuple[Triple, ...]  # chat: workflow x reachable route x that route's pool
    decisions: tuple[tuple[str, str], ...]  # (workflow, reachable route)
    pools: tuple[tuple[str, str], ...]  # (route, model)
    limits: tuple[tuple[str, str], ...] = ()  # (workflow, limit) for each limit it declares
    budgets: tuple[tuple[str, float], ...] = ()  # (workflow, its spend_per_day in dollars)


def declared_series(policy: Policy) -> DeclaredSeries:
    spec = policy.spec
    routes = spec.routes
    triples: dict[Triple, None] = {}
    decisions: dict[tuple[str, str], None] = {}
    for workflow in spec.workflows:
        floor = routes[policy.decision_for(workflow).route].strictness
        for name, route in routes.items():
            if route.strictness < floor:
                continue
            decisions[(workflow, name)] = None
            for model in dict.fromkeys(route.pool):
                triples[(workflow, name, model)] = None
    pools = {(name, model): None for name, route in routes.items() for model in route.pool}
    return DeclaredSeries(
        workflows=frozenset(spec.workflows),
        routes=frozenset(routes),
        models=frozenset(spec.models),
        triples=tuple(triples),
        decisions=tuple(decisions),
        pools=tuple(pools),
        limits=tuple(_limits(policy)),
        budgets=tuple(
            (name, w.limits.spend_per_day.max)
            for name, w in spec.workflows.items()
            if w.limits is not None and w.limits.spend_per_day is not None
        ),
    )


def _limits(policy: Policy) -> dict[tuple[str, str], None]:
    """Each limit a workflow or one of its keys declares: what a refusal is counted under."""
    out: dict[tuple[str, str], None] = {}
    for name, workflow in policy.spec.workflows.items():
        if workflow.limits is not None:
            for declared in (workflow.limits, *workflow.limits.keys.values()):
                out |= {(name, limit): None for limit, _ in declared.declared()}
    return out
