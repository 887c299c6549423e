"""The LLM-shaped benchmark's figures, from its steps: one target, one rate, one variant each.

A step passes when at least 99.9 % of its requests succeeded and its p99 latency is at most
5 ms above the mock's own p99 at the same rate, measured in the same rung; it is sustained under
the same rule with 1 s for 5 ms: the target kept up, though not within the strict bound (on a
shared machine the mock's own p99 moves by tens of milliseconds from rung to rung, while a
target that falls behind an open loop gains seconds). A target's highest rate is the last it
passed (or sustained) before its first step that did not; the ladder goes on while a target
sustains its rate.

A p99 needs the requests to have one: the nearest-rank p99 of up to 100 samples is their
maximum, so a rung of 16 whole answers (2/s for 8 s) was judged on the one slowest, which a
single scheduling hiccup of the shared machine decides, for the mock's step as for a target's
(docs/bench.md, "A p99 needs 200 requests"). The strict rule is therefore judged only on steps
of at least MIN_REQUESTS successful requests, the target's and the mock's; `rung_seconds`
lengthens a rung's arrivals to give them. The 5 ms bound itself is unchanged.

A stream's latency is mostly the mock's own: 100 timed sleeps, which on this machine overrun
their 2.28 s by 30 to 170 ms, by an amount that moves from step to step by more than the 5 ms
bound, so the p99s of two steps 10 s apart differ by the mock's drift, not by the gateway. Where
the mock tells each stream its own time (bench/llm_mock.py), the strict rule compares instead
each stream's latency less that time: the p99 of what the path added to the target's streams
against the same for the mock's own step (docs/bench.md, "The mock's own clock").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.openloop import Outcome

MIN_SUCCESS = 0.999
MAX_OVERHEAD_P99_MS = 5.0
SUSTAINED_OVERHEAD_P99_MS = 1000.0
DIRECT = "direct"
# The nearest-rank p99 of 200 samples is their third slowest: two outliers do not decide it.
MIN_REQUESTS = 200


def rung_seconds(rate: float, duration_s: float) -> float:
    """Seconds of arrivals at `rate`: `duration_s`, or longer where that gives fewer than
    MIN_REQUESTS requests (half a request more: the generator rounds each worker's count down)."""
    return max(duration_s, (MIN_REQUESTS + 0.5) / rate) if rate > 0 else duration_s


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Step:
    """One target driven at one rate: the load generator's and the server's figures."""

    target: str
    rate: float
    sent: int
    ok: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    ttfb_p99_ms: float | None
    in_flight: float  # mean over the steady middle of the step
    server_cpu_s: float
    rss_idle_mib: float
    rss_peak_mib: float
    probe_p99_ms: float | None  # a trivial GET on the server while loaded: event-loop lag
    generator_cpu_pct: float  # the load generator's CPU over the step, all workers, % of a core
    generator_late_p99_ms: float | None  # how far behind schedule it started requests
    failures: dict[str, int]
    duration_s: float
    mock_cpu_s: float = 0.0  # the mock upstream's CPU over the step
    loop_lag_p99_ms: float | None = None  # Floorgate's own histogram (bench/watch.py)
    # The same less the loop's wait for a CPU that other processes held (held streams only).
    loop_lag_own_p99_ms: float | None = None
    # Held streams: the machine's busy CPU-seconds (all processes, the kernel's softirq
    # included) and its softirq alone, over the `cpu_wall_s` the server's CPU is measured over.
    machine_cpu_s: float = 0.0
    softirq_cpu_s: float = 0.0
    cpu_wall_s: float = 0.0
    refused_p99_ms: float | None = None  # how long a 503 overloaded took, from its schedule
    refused_p50_ms: float | None = None
    # The p99 of each stream's latency less the mock's own time for it (None where not every
    # successful stream told it): the mock's timers taken out of the strict rule.
    beyond_upstream_p99_ms: float | None = None

    @property
    def success(self) -> float:
        return self.ok / self.sent if self.sent else 0.0

    @property
    def goodput(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0

    def overhead_p99_ms(self, direct: Step | None) -> float | None:
        if direct is None or self.latency_p99_ms is None or direct.latency_p99_ms is None:
            return None
        return self.latency_p99_ms - direct.latency_p99_ms

    def own_overhead_p99_ms(self, direct: Step | None) -> float | None:
        """What the strict rule judges: the p99 of what the path added to each stream over the
        mock's own step's, where both steps' streams told the mock's time; else the latency
        p99s' difference."""
        ours, theirs = self.beyond_upstream_p99_ms, direct and direct.beyond_upstream_p99_ms
        if ours is None or theirs is None:
            return self.overhead_p99_ms(direct)
        return ours - theirs

    def passes(self, direct: Step | None, limit_ms: float = MAX_OVERHEAD_P99_MS) -> bool:
        if self.success < MIN_SUCCESS:
            return False
        if self.target == DIRECT:
            return True
        strict = limit_ms <= MAX_OVERHEAD_P99_MS
        if strict and not (self.has_p99 and direct and direct.has_p99):
            return False  # a p99 of too few requests is their max: no strict pass on it
        overhead = self.own_overhead_p99_ms(direct) if strict else self.overhead_p99_ms(direct)
        return overhead is not None and overhead <= limit_ms

    @property
    def has_p99(self) -> bool:
        """Enough successful requests that their p99 is not their slowest."""
        return self.ok >= MIN_REQUESTS

    def sustained(self, direct: Step | None) -> bool:
        return self.passes(direct, SUSTAINED_OVERHEAD_P99_MS)

    def loop_lag_ms(self) -> float | None:
        """The event-loop lag p99: the gateway's own figure where it has one, else the probe's."""
        return self.loop_lag_p99_ms if self.loop_lag_p99_ms is not None else self.probe_p99_ms

    def cpu_us_per_chunk(self, chunks: int) -> float | None:
        return self.server_cpu_s * 1e6 / (self.ok * chunks) if self.ok else None

    def cpu_ms_per_request(self) -> float | None:
        return self.server_cpu_s * 1e3 / self.ok if self.ok else None

    def rss_kib_per_in_flight(self) -> float | None:
        if self.in_flight < 1:
            return None
        return max(0.0, self.rss_peak_mib - self.rss_idle_mib) * 1024 / self.in_flight


def generated(out: Outcome) -> dict[str, Any]:
    """A step's figures that come from the load generator alone, whatever part of it is read."""
    return {
        "sent": out.sent,
        "ok": out.ok,
        "ttfb_p99_ms": percentile(out.ttfb_ms, 99),
        "generator_cpu_pct": 100 * out.cpu_s / out.wall_s if out.wall_s else 0.0,
        "generator_late_p99_ms": percentile(out.late_ms, 99),
        "failures": out.failures,
        "duration_s": out.wall_s,
        "refused_p99_ms": percentile(out.refused_ms, 99),
        "refused_p50_ms": percentile(out.refused_ms, 50),
        "beyond_upstream_p99_ms": (
            percentile(out.beyond_upstream_ms, 99)
            if out.ok and len(out.beyond_upstream_ms) == out.ok
            else None
        ),
    }


def steady_mean(samples: Sequence[int]) -> float:
    """The mean of the middle half of the samples: past the ramp-up, before the drain."""
    if not samples:
        return 0.0
    quarter = len(samples) // 4
    middle = samples[quarter : len(samples) - quarter] or samples
    return sum(middle) / len(middle)


def best_step(
    steps: Sequence[Step], directs: dict[float, Step], strict: bool = True
) -> Step | None:
    """The step at the highest rate passed (or, not `strict`, sustained) before the first that
    was not."""
    best = None
    limit = MAX_OVERHEAD_P99_MS if strict else SUSTAINED_OVERHEAD_P99_MS
    for step in sorted(steps, key=lambda s: s.rate):
        if not step.passes(directs.get(step.rate), limit):
            break
        best = step
    return best


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs
