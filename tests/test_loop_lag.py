"""The event-loop lag histograms: a stalled loop shows in them (a stall of the loop's own work
is its own lag, not a wait for a CPU), and a serving gateway keeps them on /metrics
(docs/metrics.md)."""

from __future__ import annotations

import asyncio
import time

import httpx
import uvloop
from prometheus_client import CollectorRegistry, Histogram

from bench.watch import OWN_LAG_SERIES, lag_buckets
from gateway.app import Floorgate
from gateway.loop_lag import BUCKETS, CpuWait, watch

STALL_S = 0.2


def test_a_stalled_loop_is_observed_as_lag_and_as_its_own() -> None:
    registry = CollectorRegistry()
    lag = Histogram("lag_seconds", "test", buckets=BUCKETS, registry=registry)
    own = Histogram("own_seconds", "test", buckets=BUCKETS, registry=registry)

    async def stall_once() -> None:
        watcher = asyncio.create_task(watch(lag, 0.01, own=own))
        await asyncio.sleep(0.05)
        time.sleep(STALL_S)  # noqa: ASYNC251  # holding the loop, as a CPU-bound callback would
        await asyncio.sleep(0.05)
        watcher.cancel()

    uvloop.run(stall_once())
    count = registry.get_sample_value("lag_seconds_count") or 0
    within_tenth = registry.get_sample_value("lag_seconds_bucket", {"le": "0.1"}) or 0
    assert count >= 5, "one observation per interval while the loop runs"
    assert count - within_tenth >= 1, "the stall is an observation beyond 100 ms"
    assert (registry.get_sample_value("lag_seconds_sum") or 0) >= STALL_S / 2
    # The loop's thread slept through the stall rather than wait for a CPU: all of it is its own.
    own_count = registry.get_sample_value("own_seconds_count") or 0
    own_within_tenth = registry.get_sample_value("own_seconds_bucket", {"le": "0.1"}) or 0
    assert own_count == count, "the kernel reports the wait on Linux: one each"
    assert own_count - own_within_tenth >= 1, "the stall is the loop's own lag"


def test_the_wait_for_a_cpu_is_read_from_the_kernel_and_only_grows() -> None:
    waited = CpuWait()
    first = waited.seconds()
    sum(range(2_000_000))  # some running, during which other work may hold the CPU
    later = waited.seconds()
    waited.close()
    assert first is not None and later is not None, "Linux counts it in schedstat"
    assert 0 <= first <= later
    assert waited.seconds() is None, "closed"
    assert CpuWait("/nonexistent/schedstat").seconds() is None, "no schedstat: nothing to say"


def test_a_serving_gateway_exports_its_loop_lag(gateway: str, gateway_app: Floorgate) -> None:
    registry = gateway_app.runtime.metrics.registry
    first = registry.get_sample_value("floorgate_event_loop_lag_seconds_count") or 0
    time.sleep(0.2)
    later = registry.get_sample_value("floorgate_event_loop_lag_seconds_count") or 0
    assert later > first, "the lifespan runs the watch"
    text = httpx.get(f"{gateway}/metrics").text
    assert "floorgate_event_loop_lag_seconds_bucket{le=" in text
    assert "floorgate_event_loop_lag_own_seconds_bucket{le=" in text
    own = lag_buckets(f"{gateway}/metrics", OWN_LAG_SERIES)  # as bench/held.py reads it
    assert set(own) == {*BUCKETS, float("inf")} and own[float("inf")] > 0
