"""Overload: when to refuse new model requests at once (503 `overloaded`, Retry-After) so that
the streams already in flight keep being served, instead of accepting everything and letting
every request in flight answer seconds late.

Saturation is the loop-lag timer (gateway/loop_lag.py) late at every wake-up for a sustained
time: `lag_s` or more behind, with no wake-up on time, for `for_s`. One slow callback (a huge
body's parse, a full collection, litellm's import: 100 to 240 ms) makes one wake-up late and
the next on time, so it never trips the rule; a stall longer than `for_s` (the process frozen
or swapped out) does, and what arrived during it is already that late. Refusing lasts until
the loop has been on time for `for_s` again. A hard cap on model requests in flight
(`max_in_flight`, off by default) refuses beyond it whatever the loop says.

The request path reads one attribute (`refusing`); the watch does the rest, off the path.
"""

from __future__ import annotations

import logging
import math

from gateway.errors import Unavailable
from gateway.metrics import OVERLOAD_REASONS, Metrics

log = logging.getLogger("floorgate.overload")
LOOP_LAG, IN_FLIGHT = OVERLOAD_REASONS


class Overload:
    def __init__(
        self, metrics: Metrics, lag_s: float, for_s: float, max_in_flight: int = 0
    ) -> None:
        self.metrics = metrics
        self.lag_s = lag_s  # 0: the loop-lag rule is off
        self.for_s = for_s
        self.max_in_flight = max_in_flight  # 0: no cap
        self.in_flight = 0  # model requests past the check, not yet answered
        self.refusing = False  # what the request path reads
        self._behind_since: float | None = None  # when the first late wake-up of a run was due
        self._on_time_since: float | None = None
        self.retry_after = str(max(1, math.ceil(for_s)))  # the soonest it could accept again

    def observe(self, due: float, now: float) -> None:
        """A loop-lag wake-up due at `due` ran at `now` (perf_counter seconds)."""
        if not self.lag_s:
            return
        if now - due >= self.lag_s:
            self._on_time_since = None
            if self._behind_since is None:
                self._behind_since = due
            if not self.refusing and now - self._behind_since >= self.for_s:
                self._set(True, now - self._behind_since)
            return
        self._behind_since = None
        if self._on_time_since is None:
            self._on_time_since = now
        if self.refusing and now - self._on_time_since >= self.for_s:
            self._set(False, now - self._on_time_since)

    def admit(self) -> None:
        """Count a model request in flight, or raise the 503 that refuses it (before any
        work: nothing reaches an upstream, no limit is charged)."""
        if self.refusing:
            raise self._refused(LOOP_LAG, "its event loop has been behind for more than "
                                f"{self.for_s:g} s")  # fmt: skip
        if self.max_in_flight and self.in_flight >= self.max_in_flight:
            raise self._refused(IN_FLIGHT, f"{self.in_flight} requests are in flight "
                                f"(FLOORGATE_MAX_IN_FLIGHT={self.max_in_flight})")  # fmt: skip
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1

    def _refused(self, reason: str, why: str) -> Unavailable:
        self.metrics.overload_refusals.labels(reason).inc()
        return Unavailable(
            f"Floorgate is overloaded and refuses new requests ({why}); requests already in "
            f"flight are still served. Retry after {self.retry_after} s, or send to another "
            "replica.",
            code="overloaded",
            headers={"retry-after": self.retry_after},
        )

    def _set(self, refusing: bool, for_s: float) -> None:
        self.refusing = refusing
        self.metrics.overloaded.set(1 if refusing else 0)
        if refusing:
            log.warning("overloaded: the event loop has been %g s or more behind for %.2f s; "
                        "refusing new model requests", self.lag_s, for_s)  # fmt: skip
        else:
            log.warning("no longer overloaded: the event loop has been on time for %.2f s", for_s)
