"""Settling limits after requests end, off the request path: tokens corrected to what the
upstream reported, the spend added, the slot freed.

Ended requests queue here; one task takes whatever has queued to the store in one call per
store (Redis: one script call per workflow), so a busy gateway settles many requests a round
trip. A batch the store refuses is retried a few times: an unsettled request keeps its slot
until its lease ends, and its spend goes uncounted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from gateway.limit_headers import Headers
from gateway.metrics import Metrics
from gateway.policy.limits import LimitName, StoreDownMode
from gateway.state.base import Store, StoreUnavailable
from gateway.state.counters import Check, Counted, Settlement

log = logging.getLogger("floorgate.limits")
MICRO = 1_000_000  # spend is counted in millionths of a dollar
ATTEMPTS = 3
RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class Planned:
    check: Check
    limit: LimitName
    level: str  # "workflow", or the key's name
    mode: StoreDownMode

    def costing(self, amount: int) -> Planned:
        c = self.check
        return Planned(Check(c.kind, c.scope, c.name, c.limit, amount), self.limit, self.level,
                       self.mode)  # fmt: skip


@dataclass(slots=True)
class Ticket:
    """An admitted request's share of its limits, until it is settled."""

    request_id: str
    workflow: str
    admitted_at: float
    store: Store  # the one that counted it: the shared store, or this replica's
    planned: list[Planned]
    counts: list[Counted]
    estimate: int  # tokens counted up front
    prompt_estimate: int
    tokens: int | None = None
    cost: float | None = None
    headers: Headers = field(default_factory=list)

    def settlement(self) -> Settlement:
        return Settlement(list(self._changes()), self.admitted_at, self.request_id)

    def _changes(self) -> Iterator[tuple[Check, int]]:
        for p in self.planned:
            if p.check.kind == "slots":
                yield p.check, 0
            elif p.limit == "tokens_per_minute" and (self.tokens or 0) != self.estimate:
                yield p.check, (self.tokens or 0) - self.estimate
            elif p.check.kind == "day" and self.cost:
                yield p.check, round(self.cost * MICRO)


class Settler:
    def __init__(
        self, metrics: Metrics, timeout_s: float, settled: Callable[[Ticket], None]
    ) -> None:
        self.metrics = metrics
        self.timeout_s = timeout_s
        self._settled = settled
        self._queue: deque[Ticket] = deque()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        running = self._task is not None and not self._task.done()
        return len(self._queue) + running

    def add(self, ticket: Ticket) -> None:
        self._queue.append(ticket)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def drain(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        while self._queue:
            batches: dict[int, tuple[Store, list[Ticket]]] = {}
            while self._queue:
                ticket = self._queue.popleft()
                batches.setdefault(id(ticket.store), (ticket.store, []))[1].append(ticket)
            for store, tickets in batches.values():
                await self._settle(store, tickets)

    async def _settle(self, store: Store, tickets: list[Ticket]) -> None:
        # Requests per minute alone leave nothing to correct: no call at all.
        settlements = [s for s in (t.settlement() for t in tickets) if s.changes]
        if settlements:
            await self._store(store, settlements)
        for ticket in tickets:
            self._settled(ticket)

    async def _store(self, store: Store, settlements: list[Settlement]) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with asyncio.timeout(self.timeout_s):
                    await store.settle(settlements, time.time())
                return
            except (StoreUnavailable, TimeoutError) as exc:
                self.metrics.limit_store_errors.inc()
                log.warning("limits: %d requests not settled, try %d (%r)", len(settlements),
                            attempt, exc)  # fmt: skip
                if attempt < ATTEMPTS:
                    await asyncio.sleep(RETRY_S * attempt)
