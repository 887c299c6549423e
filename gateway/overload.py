"""Overload: when to refuse new model requests at once (503 `overloaded`, Retry-After) so that
the streams already in flight keep being served, instead of accepting everything and letting
every request in flight answer seconds late.

Two signals, either of which refuses:

- The loop-lag timer (gateway/loop_lag.py) late at every wake-up for a sustained time: `lag_s`
  or more behind, with no wake-up on time, for `for_s`.
- New connections waiting in the kernel's accept queue (gateway/accept_wait.py): every one
  taken up having waited `queue_wait_s` or more, over `for_s` of arrivals. A saturated loop's
  timer can be late by 80 ms but not at every wake-up while connections wait 8 s to be read
  (uvloop's own server took up one a turn: docs/bench.md, "Where 600 streams/s queued").

One slow callback (a huge body's parse, a full collection, litellm's import: 100 to 240 ms)
makes one wake-up late and the next on time, and delays only what arrived during it, so it
trips neither; a stall longer than `for_s` (the process frozen or swapped out) trips both, and
what arrived during it is already that late. Refusing lasts until the loop has been on time,
and no connection taken up has waited that long, for `for_s`. A hard cap on model requests in
flight (`max_in_flight`, off by default) refuses beyond it whatever the loop says.

The request path reads one attribute (`refusing`); the watch and the accept do the rest.
"""

from __future__ import annotations

import logging
import math

from gateway.errors import Unavailable
from gateway.metrics import OVERLOAD_REASONS, Metrics

log = logging.getLogger("floorgate.overload")
LOOP_LAG, QUEUE_WAIT, IN_FLIGHT = OVERLOAD_REASONS


class Overload:
    def __init__(
        self,
        metrics: Metrics,
        lag_s: float,
        for_s: float,
        max_in_flight: int = 0,
        queue_wait_s: float = 0.0,
    ) -> None:
        self.metrics = metrics
        self.lag_s = lag_s  # 0: the loop-lag rule is off
        self.for_s = for_s
        self.max_in_flight = max_in_flight  # 0: no cap
        self.queue_wait_s = queue_wait_s  # 0: the queue-wait rule is off
        self.in_flight = 0  # model requests past the check, not yet answered
        self.refusing = False  # what the request path reads: either signal
        self.lagging = False
        self.queued = False
        self._behind_since: float | None = None  # when the first late wake-up of a run was due
        self._on_time_since: float | None = None
        self._waiting_since: float | None = None  # arrival of a run's first long-waiting one
        self._taken_since = 0.0  # and when it was taken up
        self._waited_at = 0.0  # when the last connection that waited long was taken up
        self.retry_after = str(max(1, math.ceil(for_s)))  # the soonest it could accept again

    def observe(self, due: float, now: float) -> None:
        """A loop-lag wake-up due at `due` ran at `now` (perf_counter seconds)."""
        if self.queued and now - self._waited_at >= self.for_s:
            self.queued = False
            self._changed(f"no connection has waited {self.queue_wait_s:g} s to be taken up "
                          f"for {now - self._waited_at:.2f} s")  # fmt: skip
        if not self.lag_s:
            return
        if now - due >= self.lag_s:
            self._on_time_since = None
            if self._behind_since is None:
                self._behind_since = due
            if not self.lagging and now - self._behind_since >= self.for_s:
                self.lagging = True
                self._changed(f"the event loop has been {self.lag_s:g} s or more behind for "
                              f"{now - self._behind_since:.2f} s")  # fmt: skip
            return
        self._behind_since = None
        if self._on_time_since is None:
            self._on_time_since = now
        if self.lagging and now - self._on_time_since >= self.for_s:
            self.lagging = False
            self._changed(f"the event loop has been on time for {now - self._on_time_since:.2f} s")

    def accepted(self, waited: float, now: float) -> None:
        """A new connection, taken up at `now` (perf_counter seconds), had waited `waited` s in
        the kernel's accept queue. The queue is first in, first out: a run of long waits whose
        arrivals span `for_s` is a queue that stood that long, and so is one whose take-ups
        do (a queue still growing is seen sooner so: its arrivals lag by the wait)."""
        self.metrics.accept_wait.observe(waited)
        if not self.queue_wait_s:
            return
        if waited < self.queue_wait_s:
            self._waiting_since = None
            return
        self._waited_at = now
        arrived = now - waited
        if self._waiting_since is None:
            self._waiting_since, self._taken_since = arrived, now
            return
        span = max(arrived - self._waiting_since, now - self._taken_since)
        if not self.queued and span >= self.for_s:
            self.queued = True
            self._changed(f"every connection taken up over {span:.2f} s had waited "
                          f"{self.queue_wait_s:g} s or more")  # fmt: skip

    def admit(self) -> None:
        """Count a model request in flight, or raise the 503 that refuses it (before any
        work: nothing reaches an upstream, no limit is charged)."""
        if self.refusing:
            if self.lagging:
                raise self._refused(LOOP_LAG, "its event loop has been behind for more than "
                                    f"{self.for_s:g} s")  # fmt: skip
            raise self._refused(QUEUE_WAIT, "new connections have waited more than "
                                f"{self.queue_wait_s:g} s to be taken up, for more than "
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

    def _changed(self, why: str) -> None:
        refusing = self.lagging or self.queued
        if refusing == self.refusing:
            return
        self.refusing = refusing
        self.metrics.overloaded.set(1 if refusing else 0)
        if refusing:
            log.warning("overloaded: %s; refusing new model requests", why)
        else:
            log.warning("no longer overloaded: %s", why)
