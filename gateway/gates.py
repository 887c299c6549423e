"""Live calibration gates: whether each model of a gated route may serve it right now.

A background task re-reads the rolling statistics from the store every `refresh_s` and
publishes one immutable GateState per (route, model); selection only reads that mapping, so
routing never waits on the store. If the store cannot be read, the last states stay in force.

A limit is enforced once its own rate has `min_samples` samples in the window: a model is not
gated out before it has been measured.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.metrics import Metrics
from gateway.policy.compiled import Policy
from gateway.policy.model import Gate, Window
from gateway.policy.store import PolicyStore
from gateway.state.base import RATES, Counts, Query, RateName, Store, StoreUnavailable, total

log = logging.getLogger("floorgate.gates")
Bound = Literal["min", "max"]
Pair = tuple[str, str]  # (route, model)
UNGATED_WINDOW = Window(seconds=86400)  # an ungated route's rates are exported over a day


def limits(gate: Gate) -> list[tuple[RateName, Bound, float]]:
    declared: list[tuple[RateName, Bound, float | None]] = [
        ("escape", "max", gate.max_escape_rate),
        ("merge", "min", gate.min_merge_rate),
        ("abstention", "min", gate.min_abstention_rate),
        ("abstention", "max", gate.max_abstention_rate),
        ("self_flag", "min", gate.min_self_flag_rate),
        ("self_flag", "max", gate.max_self_flag_rate),
    ]
    return [(rate, bound, value) for rate, bound, value in declared if value is not None]


@dataclass(frozen=True, slots=True)
class GateState:
    """One model's standing against its route's gate, with the numbers that decided it."""

    route: str
    model: str
    passing: bool
    counts: Counts  # over the gate's window, every workflow
    by_workflow: Mapping[str, Counts]
    failures: tuple[str, ...] = ()  # each failed limit, with its value and sample size
    badness: float = 0.0  # how far past its limits, summed: the least bad serves if all fail
    checked_at: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        rates = {}
        for name in RATES:
            value, samples = self.counts.rate(name)
            rates[name] = {"value": value, "samples": samples}
        return {
            "route": self.route,
            "model": self.model,
            "passing": self.passing,
            "failures": list(self.failures),
            "rates": rates,
            "counts": self.counts.as_json(),
            "by_workflow": {wf: c.as_json() for wf, c in self.by_workflow.items()},
            "checked_at": self.checked_at,
        }


def evaluate(route: str, model: str, gate: Gate, by_workflow: Mapping[str, Counts]) -> GateState:
    counts = total(by_workflow)
    failures: list[str] = []
    badness = 0.0
    for rate, bound, threshold in limits(gate):
        value, samples = counts.rate(rate)
        if value is None or samples < gate.min_samples:
            continue
        excess = value - threshold if bound == "max" else threshold - value
        if excess > 0:
            sign = ">" if bound == "max" else "<"
            failures.append(
                f"{rate} rate {value:.3f} {sign} {bound} {threshold:g} ({samples} samples)"
            )
            badness += excess
    return GateState(
        route, model, not failures, counts, dict(by_workflow), tuple(failures), badness
    )


class Gates:
    def __init__(
        self, store: Store, metrics: Metrics, policies: PolicyStore, refresh_s: float
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.policies = policies
        self.refresh_s = refresh_s
        self._states: Mapping[Pair, GateState] = {}  # replaced whole, never mutated
        self._gated: frozenset[str] = frozenset()
        self._all_failing: frozenset[str] = frozenset()
        self._failing_reads = False
        self._ungated: frozenset[Pair] = frozenset()

    def state(self, route: str, model: str) -> GateState | None:
        """None until the first refresh has read the model's statistics."""
        return self._states.get((route, model))

    def states(self) -> Mapping[Pair, GateState]:
        return self._states

    async def refresh(self) -> None:
        policy = self.policies.current
        pairs = gated_pairs(policy)
        ungated = ungated_pairs(policy)
        now = time.time()
        queries = [
            Query(route, model, gate.window.seconds, gate.window.count)
            for route, model, gate in pairs
        ] + [Query(route, model, UNGATED_WINDOW.seconds, None) for route, model in ungated]
        tallies = await self.store.tallies(queries, now) if queries else []
        states = {
            (route, model): evaluate(route, model, gate, tally)
            for (route, model, gate), tally in zip(pairs, tallies, strict=False)
        }
        self._publish(policy, states)
        self._export_ungated(dict(zip(ungated, tallies[len(pairs) :], strict=True)))

    def _export_ungated(self, tallies: Mapping[Pair, Mapping[str, Counts]]) -> None:
        """An ungated route's models' rates too, over a day: what a gate would judge."""
        for pair, by_workflow in tallies.items():
            self._export_rates(pair, total(by_workflow))
        for pair in self._ungated - tallies.keys() - self._states.keys():
            for rate in RATES:
                self.metrics.gates.rate.remove(*pair, rate)
                self.metrics.gates.samples.remove(*pair, rate)
        self._ungated = frozenset(tallies)

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
                self._read_failed(None)
            except StoreUnavailable as exc:
                self._read_failed(exc)
            except Exception:  # the refresher's top level: one bad turn must not end gating
                log.exception("gate refresh failed")
            await asyncio.sleep(self.refresh_s)

    def _read_failed(self, exc: StoreUnavailable | None) -> None:
        if exc is not None:
            self.metrics.gates.refresh_failures.inc()
            if not self._failing_reads:
                log.warning("gate statistics unreadable (%s); the last gate states stay", exc)
        elif self._failing_reads:
            log.info("gate statistics readable again")
        self._failing_reads = exc is not None

    def _publish(self, policy: Policy, states: dict[Pair, GateState]) -> None:
        previous, self._states = self._states, states
        for pair, state in states.items():
            _log_change(previous.get(pair), state)
            self._export(state)
        for pair in previous.keys() - states.keys():  # no longer gated: stop exporting it
            self.metrics.gates.passing.remove(*pair)
            for rate in RATES:
                self.metrics.gates.rate.remove(*pair, rate)
                self.metrics.gates.samples.remove(*pair, rate)
        self._publish_routes(policy, states)

    def _export(self, state: GateState) -> None:
        labels = (state.route, state.model)
        self.metrics.gates.passing.labels(*labels).set(1 if state.passing else 0)
        self._export_rates(labels, state.counts)

    def _export_rates(self, labels: Pair, counts: Counts) -> None:
        for rate in RATES:
            value, samples = counts.rate(rate)
            self.metrics.gates.rate.labels(*labels, rate).set(math.nan if value is None else value)
            self.metrics.gates.samples.labels(*labels, rate).set(samples)

    def _publish_routes(self, policy: Policy, states: Mapping[Pair, GateState]) -> None:
        routes = policy.spec.routes
        gated = {route for route, spec in routes.items() if spec.gate is not None}
        failing = {
            route
            for route in gated
            if not any(states[(route, model)].passing for model in routes[route].pool)
        }
        for route in gated:
            self.metrics.gates.all_failing.labels(route).set(1 if route in failing else 0)
        for route in self._gated - gated:
            self.metrics.gates.all_failing.remove(route)
        for route in failing - self._all_failing:
            action = routes[route].gate.when_all_fail  # type: ignore[union-attr]
            log.error("every model of route %s fails its gate; when_all_fail: %s", route, action)
        for route in (self._all_failing - failing) & gated:
            log.warning("route %s has a model passing its gate again", route)
        self._gated, self._all_failing = frozenset(gated), frozenset(failing)


def gated_pairs(policy: Policy) -> list[tuple[str, str, Gate]]:
    return [
        (route, model, spec.gate)
        for route, spec in policy.spec.routes.items()
        if spec.gate is not None
        for model in dict.fromkeys(spec.pool)
    ]


def ungated_pairs(policy: Policy) -> list[Pair]:
    return [
        (route, model)
        for route, spec in policy.spec.routes.items()
        if spec.gate is None
        for model in dict.fromkeys(spec.pool)
    ]


def _log_change(before: GateState | None, after: GateState) -> None:
    if before is not None and before.passing == after.passing:
        return
    where = f"model {after.model} on route {after.route}"
    numbers = _numbers(after.counts)
    if not after.passing:
        log.warning("%s fails its gate: %s [%s]", where, "; ".join(after.failures), numbers)
    elif before is not None:
        log.warning("%s passes its gate again [%s]", where, numbers)


def _numbers(counts: Counts) -> str:
    parts = []
    for name in RATES:
        value, samples = counts.rate(name)
        parts.append(f"{name} {'-' if value is None else f'{value:.3f}'} of {samples}")
    return ", ".join(parts)
