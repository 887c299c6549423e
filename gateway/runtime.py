"""The gateway's long-lived parts, built once per app and passed explicitly (no globals)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from gateway.classify import Verdict
from gateway.keys import KeyRing
from gateway.metrics import Metrics
from gateway.policy.compiled import ModelTarget
from gateway.policy.store import PolicyStore
from gateway.selection import Health
from gateway.settings import Settings
from gateway.upstream.base import UpstreamError
from gateway.upstream.failover import Failover
from gateway.upstream.transports import Transports

log = logging.getLogger("floorgate.upstream")


@dataclass(frozen=True, slots=True)
class Answered:
    """Who produced a response: what feedback hours later must be attributed to."""

    request_id: str
    workflow: str
    route: str
    model: str
    policy_version: str


@dataclass
class Runtime:
    settings: Settings
    policies: PolicyStore
    keys: KeyRing
    metrics: Metrics
    health: Health = field(default_factory=Health)
    transports: Transports = field(default_factory=Transports)
    failover: Failover = field(init=False)

    def __post_init__(self) -> None:
        self.failover = Failover(self.transports.for_target, self._upstream_outcome)

    @classmethod
    def build(cls, settings: Settings, registry: CollectorRegistry | None = None) -> Runtime:
        metrics = Metrics(registry if registry is not None else CollectorRegistry())
        policies = PolicyStore.open(settings.policies)
        keys = KeyRing.load(
            settings.keys_file,
            settings.api_keys.get_secret_value() if settings.api_keys else None,
        )
        runtime = cls(settings, policies, keys, metrics)
        metrics.policy_loaded(policies.current.name, policies.current.version)
        return runtime

    def answered(self, call: Answered, verdict: Verdict) -> None:
        """A response reached the client whole: count what it said about itself.

        The one place that records an answered request; the request ledger hooks in here.
        """
        self.metrics.verdict(call.workflow, call.route, call.model, verdict)

    def _upstream_outcome(
        self, target: ModelTarget, error: UpstreamError | None, fallback_route: str | None
    ) -> None:
        self.health.record(target.name, error is None)
        if error is None:
            return
        self.metrics.upstream_error(target.name, error.kind)
        log.warning("model %s failed (%s): %s", target.name, error.kind, error.message)
        if fallback_route is not None:
            self.metrics.fallback(fallback_route, target.name)
