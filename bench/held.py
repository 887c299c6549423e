"""Held streams: can one gateway process hold 2,000 streams in flight, apart from how many chunks
a second it can relay.

The default streams of `make bench-vs-peers` (100 chunks 20 ms apart) at ~2,000 in flight are
88,000 chunks a second, more than this machine's two cores carry through the mock and the load
generator alone (docs/bench.md). Held streams are the same 100 chunks further apart (200 ms:
~20 s a stream), so 2,000 in flight are ~100 arrivals and ~10,000 chunks a second: what is left
to measure is what holding them costs (connections, memory, timers, the garbage collector, the
event loop's lag). A level is a count of streams in flight; its rate is the level over a
stream's length, and its arrivals last long enough to reach that count and hold it. Latency,
in-flight and the loop's lag are read over the steady part alone: from the first stream's end
(in flight has reached the level) to the last arrival (it starts to drain).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench import cpus, openloop
from bench.peer_figures import Step, generated, percentile
from bench.procs import cpu_seconds
from bench.watch import OWN_LAG_SERIES, Watch, lag_buckets, lag_p99_ms

SETTLE_S = 0.5  # past the first stream's end before the window opens
START_S = 1.0  # from asking the generator to start to its first arrival


@dataclass(frozen=True)
class Window:
    """The steady part of a step, in seconds from its first arrival."""

    start_s: float
    end_s: float

    @classmethod
    def of(cls, stream_s: float, duration_s: float) -> Window:
        return cls(stream_s + SETTLE_S, duration_s)

    def ended_within(self, latency_ms: Sequence[float], ended_s: Sequence[float]) -> list[float]:
        """The latencies of the requests that ended inside the window."""
        pairs = zip(latency_ms, ended_s, strict=True)
        return [ms for ms, end in pairs if self.start_s <= end <= self.end_s]

    def samples(self, in_flight: Sequence[int]) -> list[int]:
        """The in-flight samples (one every openloop.SAMPLE_S from the start) inside it."""
        first, last = (int(t / openloop.SAMPLE_S) for t in (self.start_s, self.end_s))
        return list(in_flight[first:last])


def rate_of(level: int, stream_s: float) -> float:
    """The arrival rate that keeps `level` streams of `stream_s` in flight."""
    return level / stream_s


def level_of(rate: float, stream_s: float) -> int:
    return round(rate * stream_s)


class LagWindow(threading.Thread):
    """Scrape Floorgate's loop-lag histograms (the lag, and the lag less the loop's wait for a
    CPU) as the window opens and as it closes."""

    def __init__(self, metrics_url: str, start_at: float, window: Window) -> None:
        super().__init__(daemon=True)
        self._url, self._start_at, self._window = metrics_url, start_at, window
        self.before: dict[float, float] = {}
        self.after: dict[float, float] = {}
        self.own_before: dict[float, float] = {}
        self.own_after: dict[float, float] = {}

    def run(self) -> None:
        time.sleep(max(0.0, self._start_at + self._window.start_s - time.time()))
        self.before = lag_buckets(self._url)
        self.own_before = lag_buckets(self._url, OWN_LAG_SERIES)
        time.sleep(max(0.0, self._start_at + self._window.end_s - time.time()))
        self.after = lag_buckets(self._url)
        self.own_after = lag_buckets(self._url, OWN_LAG_SERIES)

    def p99_ms(self) -> float | None:
        self.join()
        return lag_p99_ms(self.before, self.after) if self.before else None

    def own_p99_ms(self) -> float | None:
        self.join()
        return lag_p99_ms(self.own_before, self.own_after) if self.own_before else None


@dataclass(frozen=True)
class Held:
    """Who is loaded, and where its figures come from."""

    name: str
    plan: openloop.Plan
    pid: int
    probe: str
    metrics: str = ""


def step(target: Held, window: Window, baseline_mib: float, mock_pid: int, workers: int) -> Step:
    """One level: its figures over the window, but success over every request, CPU over the
    whole step and RSS against `baseline_mib`, the process's before the ladder began (a
    process keeps the memory its last peak needed, so the RSS just before a higher level
    would hide what the streams it already held took)."""
    start_at = time.time() + START_S
    lag = LagWindow(target.metrics, start_at, window) if target.metrics else None
    if lag is not None:
        lag.start()
    before, mock_before = cpu_seconds(target.pid), cpu_seconds(mock_pid)
    machine_before, wall_before = cpus.machine_seconds(), time.perf_counter()
    with Watch(target.probe, target.pid) as watch:
        out = openloop.run(target.plan, workers, start_at)
    machine_after, wall = cpus.machine_seconds(), time.perf_counter() - wall_before
    latency = window.ended_within(out.latency_ms, out.ended_s)
    in_flight = window.samples(out.in_flight)
    return Step(
        **generated(out),
        target=target.name,
        rate=target.plan.rate,
        latency_p50_ms=percentile(latency, 50),
        latency_p99_ms=percentile(latency, 99),
        in_flight=sum(in_flight) / len(in_flight) if in_flight else 0.0,
        server_cpu_s=cpu_seconds(target.pid) - before,
        rss_idle_mib=baseline_mib,
        rss_peak_mib=watch.rss_peak_mib,
        probe_p99_ms=percentile(watch.probe_ms, 99),
        mock_cpu_s=cpu_seconds(mock_pid) - mock_before,
        loop_lag_p99_ms=lag.p99_ms() if lag is not None else None,
        loop_lag_own_p99_ms=lag.own_p99_ms() if lag is not None else None,
        machine_cpu_s=machine_after[0] - machine_before[0],
        softirq_cpu_s=machine_after[1] - machine_before[1],
        cpu_wall_s=wall,
    )
