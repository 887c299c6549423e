"""The limiter: a request is checked once against its workflow's and its key's limits before
the upstream is called, and settled after (real tokens, its cost, its slot freed).

The check is one round trip to the state store, bounded by FLOORGATE_LIMITS_TIMEOUT_S. If the
shared store (Redis) fails or is slow, the declared mode decides: every `fail_open` limit is
counted in this replica alone (floorgate_limits_local is 1 meanwhile), any `fail_closed` one
answers 503. After a failure the shared store is left alone for RETRY_SHARED_S; then a probe
tries it off the request path (one dry check, bounded by the same timeout) while every request
is counted locally (or refused) at once, so an outage, even a store that accepts connections and
never answers, costs only the requests already waiting on it when it failed. When a probe is
answered, every request is counted in the shared store again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from typing import Any, Protocol

from gateway.errors import GatewayError, QuotaExceeded, RateLimited, Unavailable
from gateway.limit_headers import (
    Headers,
    duration,
    rate_headers,
    retry_after,
    wait,
    window_reset,
)
from gateway.limit_settler import MICRO, Planned, Settler, Ticket
from gateway.metrics import Metrics
from gateway.policy.compiled import Policy
from gateway.policy.limits import KeyLimits, LimitName, Limits
from gateway.policy.model import ModelSpec
from gateway.pricing import PriceTable
from gateway.state.base import Store, StoreUnavailable
from gateway.state.counters import Admission, Check, Counted, Kind, used
from gateway.state.memory import MemoryStore
from gateway.token_estimate import completion_budget, completion_tokens, prompt_tokens

log = logging.getLogger("floorgate.limits")
RETRY_SHARED_S = 1.0
PLAN_CACHE_MAX = 10_000
KINDS: Mapping[LimitName, Kind] = {
    "requests_per_minute": "window",
    "tokens_per_minute": "window",
    "spend_per_day": "day",
    "concurrency": "slots",
}
HEADER_KINDS: tuple[tuple[LimitName, str], ...] = (
    ("requests_per_minute", "requests"),
    ("tokens_per_minute", "tokens"),
)


class Limited(Protocol):
    """A planned request, as the limiter needs it (chat and embeddings calls both are)."""

    request_id: str
    policy: Policy
    key: str
    body: dict[str, Any]
    limit_headers: Headers | tuple[()]  # () until admitted

    @property
    def workflow(self) -> str: ...


def plan(limits: Limits, workflow: str, key: str, tokens: int) -> list[Planned]:
    """The checks a request of `key` in `workflow`, estimated at `tokens`, must pass."""
    levels: list[tuple[str, KeyLimits]] = [("workflow", limits)]
    if key in limits.keys:
        levels.append((key, limits.keys[key]))
    out: list[Planned] = []
    for level, declared in levels:
        prefix = "wf" if level == "workflow" else f"key:{level}"
        for name, limit in declared.declared():
            bound = int(limit.max * MICRO) if name == "spend_per_day" else int(limit.max)
            cost = tokens if name == "tokens_per_minute" else 1
            check = Check(KINDS[name], workflow, f"{prefix}:{name}", bound, cost)
            out.append(Planned(check, name, level, limit.when_store_down))
    return out


class Limiter:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        prices: PriceTable,
        timeout_s: float,
        lease_s: float,
    ) -> None:
        self.shared = store
        self.local = MemoryStore(lease_s, 1)  # for fail_open limits while the shared is away
        self.metrics = metrics
        self.prices = prices
        self.timeout_s = timeout_s
        self.lease_s = lease_s
        self._shared_after = 0.0
        self._local = False
        self._probe: asyncio.Task[None] | None = None  # tries the store while it is judged down
        self._open: dict[str, Ticket] = {}
        self._plans: dict[tuple[str, str, str], list[Planned]] = {}
        self._bounded = not isinstance(store, MemoryStore)  # memory never fails nor waits
        self.settler = Settler(metrics, timeout_s * 4, self._spent)

    async def admit(self, call: Limited) -> Ticket | None:
        """Count `call` against its limits (None: it has none), or raise the refusal."""
        limits = call.policy.spec.workflows[call.workflow].limits
        if limits is None:
            return None
        prompt = prompt_tokens(call.body)
        estimate = prompt + completion_budget(call.body)
        planned = self._plan(call.policy, limits, call.workflow, call.key, estimate)
        now = time.time()
        store, admission = await self._count(call.workflow, planned, now, call.request_id)
        if admission.refused is not None:
            raise self._refusal(call.workflow, planned, admission, now)
        ticket = Ticket(call.request_id, call.workflow, now, store, planned, admission.counts,
                        estimate, prompt)  # fmt: skip
        ticket.headers = _headers(planned, admission.counts, now, counted=True)
        call.limit_headers = ticket.headers
        self._open[call.request_id] = ticket
        return ticket

    def used(
        self,
        request_id: str,
        spec: ModelSpec,
        data: Mapping[str, Any],
        tokens: tuple[int, int] | None,
    ) -> None:
        """What an answered request used: the upstream's count, or else an estimate."""
        ticket = self._open.get(request_id)
        if ticket is None:
            return
        if tokens is None:
            tokens = (ticket.prompt_estimate, completion_tokens(data))
        ticket.tokens = sum(tokens)
        ticket.cost = self.prices.cost(spec, *tokens)

    def release(self, ticket: Ticket) -> None:
        """Settle `ticket` in the background: the response is out, nobody waits on this."""
        self._open.pop(ticket.request_id, None)
        self.settler.add(ticket)

    async def usage(self, policy: Policy, workflow: str, key: str) -> list[dict[str, Any]]:
        """Each limit on `key` in `workflow`, with what is used of it now (for explain)."""
        limits = policy.spec.workflows[workflow].limits
        if limits is None:
            return []
        planned = plan(limits, workflow, key, 0)
        now = time.time()
        store, admission = await self._count(workflow, planned, now, "explain", dry=True)
        where = "shared" if store is self.shared else "local"
        return [_usage(p, c, now, where) for p, c in zip(planned, admission.counts, strict=True)]

    @property
    def settling(self) -> int:
        return self.settler.pending

    async def drain(self) -> None:
        """Wait for the settlements under way (at shutdown, and in tests)."""
        await self.settler.drain()
        if self._probe is not None and not self._probe.done():
            await asyncio.shield(self._probe)

    async def _count(
        self, workflow: str, planned: list[Planned], now: float, member: str, dry: bool = False
    ) -> tuple[Store, Admission]:
        checks = [p.check for p in planned]
        if not self._local:
            try:
                return self.shared, await self._shared_admit(checks, now, member, dry)
            except (StoreUnavailable, TimeoutError) as exc:
                self._failed(exc)
        elif now >= self._shared_after and (self._probe is None or self._probe.done()):
            self._probe = asyncio.get_running_loop().create_task(self._probe_shared(checks))
        closed = next((p for p in planned if p.mode == "fail_closed"), None)
        if closed is not None and not dry:
            self.metrics.limits_unavailable(workflow)
            raise Unavailable(
                f"Limits of workflow '{workflow}' cannot be checked: the shared state store "
                f"is unreachable and its {closed.limit} limit fails closed. Retry shortly.",
                code="limits_unavailable",
                headers=retry_after(RETRY_SHARED_S),
            )
        return self.local, await self.local.admit(checks, now, member, self.lease_s, dry)

    async def _probe_shared(self, checks: list[Check]) -> None:
        """Whether the shared store answers again: a dry check of one request's limits, which
        no request waits for."""
        try:
            await self._shared_admit(checks, time.time(), "probe", dry=True)
        except (StoreUnavailable, TimeoutError) as exc:
            self._failed(exc)
            return
        self._local = False
        self.metrics.limits_local.set(0)

    def _failed(self, exc: Exception) -> None:
        """The shared store failed or was too slow: count locally, leave it alone a while."""
        self._shared_after = time.time() + RETRY_SHARED_S
        self._local = True
        self.metrics.limits_local.set(1)
        self.metrics.limit_store_errors.inc()
        log.warning("limits: the shared store failed (%r); counting locally", exc)

    def _refusal(
        self, workflow: str, planned: list[Planned], admission: Admission, now: float
    ) -> GatewayError:
        assert admission.refused is not None
        p, counted = planned[admission.refused], admission.counts[admission.refused]
        self.metrics.rate_limited(workflow, p.limit)
        wait_s = wait(p.check, counted, now)
        headers = {k.decode(): v.decode() for k, v in _headers(planned, admission.counts, now)}
        headers |= retry_after(wait_s)
        who = f"workflow '{workflow}'" if p.level == "workflow" else (
            f"API key '{p.level}' in workflow '{workflow}'"
        )  # fmt: skip
        if p.limit == "spend_per_day":
            return QuotaExceeded(
                f"The daily budget of {who} (${p.check.limit / MICRO:g} per UTC day) is spent; "
                f"it starts again at 00:00 UTC, in {duration(wait_s)}.",
                headers=headers | {"x-should-retry": "false"},
            )
        if math.isinf(wait_s):
            return RateLimited(
                f"Request too large for {who}: about {p.check.cost} tokens, above its "
                f"tokens_per_minute limit of {p.check.limit}. Send less context or a lower "
                "max_tokens.",
                headers=headers | {"x-should-retry": "false"},
            )
        left = f"Try again in {duration(wait_s)}."
        if p.limit == "concurrency":
            return RateLimited(
                f"Too many requests in flight for {who}: its concurrency limit is "
                f"{p.check.limit}. {left}",
                headers=headers,
            )
        return RateLimited(
            f"Rate limit reached for {who} on {p.limit}: limit {p.check.limit}, used "
            f"{used(p.check, counted, now)}, requested {p.check.cost}. {left}",
            headers=headers,
        )

    async def _shared_admit(
        self, checks: list[Check], now: float, member: str, dry: bool
    ) -> Admission:
        if not self._bounded:
            return await self.shared.admit(checks, now, member, self.lease_s, dry)
        async with asyncio.timeout(self.timeout_s):
            return await self.shared.admit(checks, now, member, self.lease_s, dry)

    def _plan(
        self, policy: Policy, limits: Limits, workflow: str, key: str, tokens: int
    ) -> list[Planned]:
        """plan(), from a cache per policy version: only the token estimate changes."""
        cache_key = (policy.version, workflow, key)
        planned = self._plans.get(cache_key)
        if planned is None:
            if len(self._plans) > PLAN_CACHE_MAX:
                self._plans.clear()
            planned = self._plans[cache_key] = plan(limits, workflow, key, 0)
        return [p if p.limit != "tokens_per_minute" else p.costing(tokens) for p in planned]

    def _spent(self, ticket: Ticket) -> None:
        """A settled request's view of its workflow's budget, for the budget gauges."""
        for p, counted in zip(ticket.planned, ticket.counts, strict=True):
            if p.limit == "spend_per_day" and p.level == "workflow":
                spent = counted[0] / MICRO + (ticket.cost or 0.0)
                self.metrics.budget(ticket.workflow, p.check.limit / MICRO, spent)


def _headers(
    planned: list[Planned], counts: list[Counted], now: float, counted: bool = False
) -> Headers:
    """x-ratelimit-* for requests and tokens: of the checks on each, the one with least left."""
    out: Headers = []
    for limit, kind in HEADER_KINDS:
        tightest: tuple[int, Check, Counted] | None = None
        for p, c in zip(planned, counts, strict=True):
            if p.limit == limit:
                after = (c[0], c[1] + p.check.cost) if counted else c
                left = p.check.limit - used(p.check, after, now)
                if tightest is None or left < tightest[0]:
                    tightest = (left, p.check, after)
        if tightest is not None:
            left, check, after = tightest
            out += rate_headers(kind, check.limit, left, window_reset(after, now))
    return out


def _usage(p: Planned, counted: Counted, now: float, where: str) -> dict[str, Any]:
    scale = MICRO if p.limit == "spend_per_day" else 1
    return {
        "limit": p.limit,
        "applies_to": p.level,
        "max": p.check.limit / scale,
        "used": used(p.check, counted, now) / scale,
        "when_store_down": p.mode,
        "counted_in": where,
    }
