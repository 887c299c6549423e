"""Which models may serve a route right now: pool order, usability, live gates and health.

("Routing" already means HTTP routes in the web framework, hence the name.)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gateway.errors import Unavailable
from gateway.policy.compiled import ModelTarget, Policy
from gateway.policy.model import Gate

if TYPE_CHECKING:
    from gateway.gates import Gates


class Health:
    """A per-model circuit breaker: after `threshold` failures in a row, rest it for a while."""

    def __init__(self, threshold: int = 3, cooldown_s: float = 10.0) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._failures: dict[str, int] = {}
        self._resting_until: dict[str, float] = {}

    def healthy(self, model: str) -> bool:
        until = self._resting_until.get(model)
        return until is None or time.monotonic() >= until

    def record(self, model: str, ok: bool) -> None:
        if ok:
            if model in self._failures:
                del self._failures[model]
                self._resting_until.pop(model, None)
            return
        failures = self._failures.get(model, 0) + 1
        self._failures[model] = failures
        if failures >= self.threshold:
            self._resting_until[model] = time.monotonic() + self.cooldown_s


def candidates(
    policy: Policy, route: str, pinned: str | None, health: Health, gates: Gates | None = None
) -> list[ModelTarget]:
    """The models to try, in order: healthy ones in pool order, resting ones as a last resort;
    with `gates`, only those passing the route's live gate."""
    spec = policy.spec.routes[route]
    names = [pinned] if pinned is not None else spec.pool
    usable = [policy.models[n] for n in names if policy.models[n].usable]
    if not usable:
        missing = sorted({env for n in names for env in policy.models[n].missing_env})
        raise Unavailable(
            f"No model of route '{route}' can be called: set {', '.join(missing)} "
            "in the gateway's environment, or change the policy."
        )
    if gates is not None and spec.gate is not None:
        usable = gated(route, spec.gate, usable, gates)
    healthy = [t for t in usable if health.healthy(t.name)]
    return healthy + [t for t in usable if t not in healthy]


def gated(route: str, gate: Gate, usable: list[ModelTarget], gates: Gates) -> list[ModelTarget]:
    """Skip the models failing the gate (a model not yet measured passes). If every one fails:
    the least bad first (`serve_least_bad`), or 503 (`reject`)."""
    states = [gates.state(route, t.name) for t in usable]
    passing = [t for t, s in zip(usable, states, strict=True) if s is None or s.passing]
    if passing:
        return passing
    if gate.when_all_fail == "reject":
        raise Unavailable(
            f"Every model of route '{route}' fails its calibration gate and the policy says "
            "reject: send feedback, or change the route's gate or pool.",
            code="gate_all_failing",
        )
    badness = {t.name: s.badness for t, s in zip(usable, states, strict=True) if s is not None}
    return sorted(usable, key=lambda t: badness.get(t.name, 0.0))  # stable: pool order on ties
