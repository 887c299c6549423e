"""Which models may serve a route right now: pool order, usability and health.

("Routing" already means HTTP routes in the web framework, hence the name.)
"""

from __future__ import annotations

import time

from gateway.errors import Unavailable
from gateway.policy.compiled import ModelTarget, Policy


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


def candidates(policy: Policy, route: str, pinned: str | None, health: Health) -> list[ModelTarget]:
    """The models to try, in order: healthy ones in pool order, resting ones as a last resort."""
    names = [pinned] if pinned is not None else policy.spec.routes[route].pool
    usable = [policy.models[n] for n in names if policy.models[n].usable]
    if not usable:
        missing = sorted({env for n in names for env in policy.models[n].missing_env})
        raise Unavailable(
            f"No model of route '{route}' can be called: set {', '.join(missing)} "
            "in the gateway's environment, or change the policy."
        )
    healthy = [t for t in usable if health.healthy(t.name)]
    return healthy + [t for t in usable if t not in healthy]
