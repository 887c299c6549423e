"""What a benchmark run measured, and the figures derived from it (medians over runs)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.load import LoadResult

MOCK = "mock"
FLOOR = "floor"
FLOORGATE = "floorgate"
FLOORGATE_LITELLM = "floorgate-litellm"
FLOORGATE_AGAINST = "floorgate-against"  # --against DIR: another checkout's gateway
FLOORGATE_LIMITS = "floorgate+limits"  # the same process as FLOORGATE, a workflow with limits
FLOORGATE_REDIS = "floorgate-redis"  # --redis: state (and limits) in Redis
FLOORGATE_REDIS_LIMITS = "floorgate-redis+limits"
# (limits off, limits on): each pair is one process, measured in the same rounds
LIMIT_PAIRS = ((FLOORGATE, FLOORGATE_LIMITS), (FLOORGATE_REDIS, FLOORGATE_REDIS_LIMITS))
LITELLM_PROXY = "litellm-proxy"


@dataclass(frozen=True)
class Spread:
    """The median of several runs, with their min and max."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        if not values:
            return None
        return cls(statistics.median(values), min(values), max(values))

    def text(self, digits: int) -> str:
        return f"{self.median:.{digits}f} [{self.low:.{digits}f}-{self.high:.{digits}f}]"


@dataclass(frozen=True)
class Sample:
    """One wrk run against one target at one concurrency."""

    load: LoadResult
    cpu_ms_per_request: float | None


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[rank]


@dataclass
class Results:
    """Everything measured, keyed by target name; lists hold one entry per run."""

    loads: dict[tuple[str, int], list[Sample]] = field(default_factory=dict)
    ready_s: dict[str, list[float]] = field(default_factory=dict)
    rss_mib: dict[str, list[float]] = field(default_factory=dict)
    ttfb_p50_ms: dict[str, list[float]] = field(default_factory=dict)

    def add_load(self, target: str, connections: int, sample: Sample) -> None:
        self.loads.setdefault((target, connections), []).append(sample)

    def samples(self, target: str, connections: int) -> list[Sample]:
        return self.loads.get((target, connections), [])

    def targets(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.loads))

    def connections(self, target: str) -> list[int]:
        return sorted(c for name, c in self.loads if name == target)

    def rps(self, target: str, connections: int) -> Spread | None:
        return Spread.of([s.load.rps for s in self.samples(target, connections)])

    def latency(self, target: str, connections: int, pct: int) -> Spread | None:
        return Spread.of([latency_ms(s.load, pct) for s in self.samples(target, connections)])

    def cpu(self, target: str, connections: int) -> Spread | None:
        values = [s.cpu_ms_per_request for s in self.samples(target, connections)]
        return Spread.of([v for v in values if v is not None])

    def cpu_delta_us(self, off: str, on: str, connections: int) -> Spread | None:
        """CPU per request with limits on minus off, round by round (µs)."""
        pairs = zip(self.samples(on, connections), self.samples(off, connections), strict=False)
        return Spread.of(
            [
                (a.cpu_ms_per_request - b.cpu_ms_per_request) * 1000
                for a, b in pairs
                if a.cpu_ms_per_request is not None and b.cpu_ms_per_request is not None
            ]
        )

    def cpu_ratio(self, target: str, base: str, connections: int) -> Spread | None:
        """CPU per request of `target` over `base`'s, round by round."""
        pairs = zip(
            self.samples(target, connections), self.samples(base, connections), strict=False
        )
        return Spread.of(
            [
                a.cpu_ms_per_request / b.cpu_ms_per_request
                for a, b in pairs
                if a.cpu_ms_per_request is not None and b.cpu_ms_per_request
            ]
        )

    def errors(self, target: str) -> int:
        return sum(
            s.load.errors for (name, _), runs in self.loads.items() if name == target for s in runs
        )

    def ready(self, target: str) -> Spread | None:
        return Spread.of(self.ready_s.get(target, []))

    def rss(self, target: str) -> Spread | None:
        return Spread.of(self.rss_mib.get(target, []))

    def ttfb(self, target: str) -> Spread | None:
        return Spread.of(self.ttfb_p50_ms.get(target, []))

    def overhead(self, target: str, connections: int, pct: int) -> Spread | None:
        """Target latency minus the mock's, run by run, at the same concurrency."""
        pairs = zip(
            self.samples(target, connections), self.samples(MOCK, connections), strict=False
        )
        return Spread.of([latency_ms(t.load, pct) - latency_ms(m.load, pct) for t, m in pairs])

    def ttfb_overhead(self, target: str) -> Spread | None:
        pairs = zip(self.ttfb_p50_ms.get(target, []), self.ttfb_p50_ms.get(MOCK, []), strict=False)
        return Spread.of([t - m for t, m in pairs])

    def ttfb_overhead_ratio(self, target: str, base: str) -> Spread | None:
        """Streaming TTFB overhead of `target` over `base`'s, round by round."""
        rounds = zip(
            self.ttfb_p50_ms.get(target, []),
            self.ttfb_p50_ms.get(base, []),
            self.ttfb_p50_ms.get(MOCK, []),
            strict=False,
        )
        return Spread.of([(t - m) / (b - m) for t, b, m in rounds if b > m])


def latency_ms(load: LoadResult, pct: int) -> float:
    return {50: load.p50_ms, 90: load.p90_ms, 99: load.p99_ms}[pct]


def median(spread: Spread | None) -> float | None:
    return None if spread is None else spread.median


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
