"""The gateway's long-lived parts, built once per app and passed explicitly (no globals)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from gateway import loop_lag, readiness
from gateway.classify import Verdict
from gateway.gates import Gates
from gateway.identify import Identities
from gateway.keys import KeyRing
from gateway.ledger import Ledger
from gateway.limits import Limiter
from gateway.metrics import Metrics
from gateway.overload import Overload
from gateway.policy.compiled import ModelTarget, Policy
from gateway.policy.store import PolicyStore
from gateway.pricing import PriceTable
from gateway.readiness import Readiness
from gateway.selection import Health
from gateway.settings import Settings
from gateway.state import open_store
from gateway.state.base import Store
from gateway.upstream.base import UpstreamError
from gateway.upstream.failover import Failover
from gateway.upstream.transports import Transports

log = logging.getLogger("floorgate.upstream")
requests_log = logging.getLogger("floorgate.requests")
LEDGER_CLOSE_S = 2.0  # at shutdown, how long the last ledger flush may take


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
    prices: PriceTable = field(default_factory=PriceTable)
    failover: Failover = field(init=False)
    store: Store = field(init=False)
    ledger: Ledger = field(init=False)
    gates: Gates = field(init=False)
    readiness: Readiness = field(default_factory=Readiness)
    identities: Identities = field(default_factory=Identities)
    limits: Limiter = field(init=False)
    overload: Overload = field(init=False)

    def __post_init__(self) -> None:
        self.failover = Failover(self.transports.for_target, self._upstream_outcome)
        s = self.settings
        self.store = open_store(s)
        self.ledger = Ledger(self.store, self.metrics, s.ledger_buffer_max, s.ledger_flush_s)
        self.gates = Gates(self.store, self.metrics, self.policies, s.gate_refresh_s)
        self.limits = Limiter(
            self.store, self.metrics, self.prices, s.limits_timeout_s, s.limits_lease_s
        )
        self.overload = Overload(
            self.metrics, s.overload_lag_s, s.overload_for_s, s.max_in_flight,
            s.overload_queue_wait_s,
        )  # fmt: skip

    @classmethod
    def build(cls, settings: Settings, registry: CollectorRegistry | None = None) -> Runtime:
        metrics = Metrics(registry if registry is not None else CollectorRegistry())
        policies = PolicyStore.open(settings.policies)
        keys = KeyRing.load(
            settings.keys_file,
            settings.api_keys.get_secret_value() if settings.api_keys else None,
        )
        transports = Transports(
            settings.upstream_max_header_bytes, settings.upstream_max_body_bytes, watch=metrics
        )
        runtime = cls(settings, policies, keys, metrics, transports=transports)
        metrics.policy_loaded(policies.current)
        return runtime

    def prepare(self, policy: Policy) -> None:
        """Ready what a policy needs before it serves: litellm's import takes seconds, and
        paid by a first request it would hold up every request on the event loop. Called
        at startup and, for a reload, in the reload's thread before the swap."""
        self.readiness = readiness.check(policy)
        if policy.needs_litellm and not self.transports.litellm_ready:
            self.transports.litellm()
            # Its import leaves some 360,000 objects that a full collection would walk (240 ms
            # with the event loop waiting): freeze them out of the collector's reach.
            gc.freeze()

    def used(self, call: Answered, target: ModelTarget, data: Mapping[str, Any]) -> None:
        """Count the tokens a response reports, and what they are estimated to cost; tell the
        limiter (which estimates what the upstream did not report)."""
        usage = data.get("usage")
        tokens = None
        if isinstance(usage, dict):
            tokens = (
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
            )
            cost = self.prices.cost(target.spec, *tokens)
            self.metrics.usage(call.workflow, call.route, call.model, tokens, cost)
        self.limits.used(call.request_id, target.spec, data, tokens)

    def answered(self, call: Answered, verdict: Verdict) -> None:
        """A response reached the client whole: count what it said about itself.

        The one place that records an answered request: metrics, and the request ledger
        (a deque append; the ledger's writer takes it to the store off the request path).
        """
        self.metrics.verdict(call.workflow, call.route, call.model, verdict)
        self.ledger.record(call, verdict)

    def cancelled(self, call: Answered, mid_stream: bool) -> None:
        """The client left before its answer was whole: counted, and ledgered as cancelled
        (no verdict, in no statistic; `model` is none if no model had started answering)."""
        self.metrics.cancelled(call.workflow, call.route, mid_stream)
        self.ledger.record(call, None)
        stage = "mid-stream" if mid_stream else "before the first byte"
        requests_log.info("request %s cancelled: the client left %s", call.request_id, stage)

    @asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """The ledger's writer, the gates' refresher and the loop-lag watch, for the app's
        lifespan."""
        tasks = [
            asyncio.create_task(self.ledger.run()),
            asyncio.create_task(self.gates.run()),
            asyncio.create_task(
                loop_lag.watch(
                    self.metrics.loop_lag,
                    then=self.overload.observe,
                    own=self.metrics.loop_lag_own,
                )
            ),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            with suppress(TimeoutError):  # settlements still retrying give up at shutdown
                await asyncio.wait_for(self.limits.drain(), LEDGER_CLOSE_S)
            await self.ledger.close(LEDGER_CLOSE_S)
            await self.store.close()

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
