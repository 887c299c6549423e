"""Limit counters: the shapes both stores count limits in, and the in-memory implementation.

Three kinds of counter, each checked and counted for one request in one atomic step:

- `window`: a sliding minute, estimated from two fixed ones (the previous minute's count
  weighted by the part of it still inside the last 60 s, plus this minute's). Over any 60 s
  the admitted amount exceeds the limit by at most what that weighting gets wrong when the
  previous minute's traffic was uneven; under an even load it is exact.
- `day`: a UTC day's total. A request is admitted while the total is below the limit and its
  amount is added when it ends, so requests in flight when the limit is reached still finish.
- `slots`: requests in flight, each holding a lease that a crashed replica's requests lose
  after `lease_s`, so no slot leaks forever.

A request's checks are admitted all together or not at all: a refused one counts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

Kind = Literal["window", "day", "slots"]
MINUTE = 60
DAY = 86400
WINDOW_TTL_S = 3 * MINUTE  # a minute's count is read for two minutes
DAY_TTL_S = 2 * DAY


@dataclass(frozen=True, slots=True)
class Check:
    kind: Kind
    scope: str  # every check of one request shares it: on Redis Cluster, one hash slot
    name: str  # unique within the scope
    limit: int
    cost: int  # window: what the request adds now; day and slots: 1 (the request itself)


# window: (previous minute, this minute); day: (today's total, 0); slots: (held, 0)
Counted = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Admission:
    refused: int | None  # the index of the first check that refused; then nothing was counted
    counts: list[Counted]  # as they were before this request


class Settlement(NamedTuple):
    """What one ended request changes: amounts to add (windows: in the minute it was admitted;
    days: today), its slots to free (`member`)."""

    changes: Sequence[tuple[Check, int]]
    admitted_at: float
    member: str


def minute_start(at: float) -> int:
    return int(at // MINUTE) * MINUTE


def day_start(at: float) -> int:
    return int(at // DAY) * DAY


def window_used(counted: Counted, now: float) -> int:
    previous, current = counted
    return int(previous * (1 - (now % MINUTE) / MINUTE)) + current


def used(check: Check, counted: Counted, now: float) -> int:
    return window_used(counted, now) if check.kind == "window" else counted[0]


class MemoryCounters:
    """One process's counters, with the same semantics as the Redis scripts."""

    def __init__(self) -> None:
        self._totals: dict[tuple[str, str, int], tuple[int, float]] = {}  # -> (n, expires)
        self._slots: dict[tuple[str, str], dict[str, float]] = {}  # member -> lease end
        self._next_purge = 0.0

    def admit(
        self, checks: Sequence[Check], now: float, member: str, lease_s: float, dry: bool
    ) -> Admission:
        self._purge(now)
        counts = [self._counted(check, now) for check in checks]
        refused = next(
            (i for i, (c, n) in enumerate(zip(checks, counts, strict=True))
             if used(c, n, now) + c.cost > c.limit),
            None,
        )  # fmt: skip
        if refused is None and not dry:
            for check in checks:
                if check.kind == "window":
                    self._add(check, minute_start(now), check.cost, now + WINDOW_TTL_S)
                elif check.kind == "slots":
                    self._slots.setdefault((check.scope, check.name), {})[member] = now + lease_s
        return Admission(refused, counts)

    def settle(self, settlements: Sequence[Settlement], now: float) -> None:
        for changes, admitted_at, member in settlements:
            for check, amount in changes:
                if check.kind == "slots":
                    self._slots.get((check.scope, check.name), {}).pop(member, None)
                elif check.kind == "window":
                    self._add(check, minute_start(admitted_at), amount, now + WINDOW_TTL_S)
                else:
                    self._add(check, day_start(now), amount, now + DAY_TTL_S)

    def _counted(self, check: Check, now: float) -> Counted:
        if check.kind == "window":
            start = minute_start(now)
            return self._get(check, start - MINUTE, now), self._get(check, start, now)
        if check.kind == "day":
            return self._get(check, day_start(now), now), 0
        leases = self._slots.get((check.scope, check.name), {})
        if len(leases) < check.limit:  # expired leases go within a minute: room either way
            return len(leases), 0
        return sum(1 for end in leases.values() if end > now), 0

    def _get(self, check: Check, start: int, now: float) -> int:
        n, expires = self._totals.get((check.scope, check.name, start), (0, 0.0))
        return n if expires > now else 0

    def _add(self, check: Check, start: int, amount: int, expires: float) -> None:
        key = (check.scope, check.name, start)
        self._totals[key] = (self._totals.get(key, (0, 0.0))[0] + amount, expires)

    def _purge(self, now: float) -> None:
        if now < self._next_purge:
            return
        self._next_purge = now + MINUTE
        self._totals = {k: v for k, v in self._totals.items() if v[1] > now}
        for leases in self._slots.values():
            for member in [m for m, end in leases.items() if end <= now]:
                del leases[member]
