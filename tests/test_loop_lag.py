"""The event-loop lag histogram: a stalled loop shows in it, and a serving gateway keeps it on
/metrics (docs/metrics.md)."""

from __future__ import annotations

import asyncio
import time

import httpx
import uvloop
from prometheus_client import CollectorRegistry, Histogram

from gateway.app import Floorgate
from gateway.loop_lag import BUCKETS, watch

STALL_S = 0.2


def test_a_stalled_loop_is_observed_as_lag() -> None:
    registry = CollectorRegistry()
    lag = Histogram("lag_seconds", "test", buckets=BUCKETS, registry=registry)

    async def stall_once() -> None:
        watcher = asyncio.create_task(watch(lag, 0.01))
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


def test_a_serving_gateway_exports_its_loop_lag(gateway: str, gateway_app: Floorgate) -> None:
    registry = gateway_app.runtime.metrics.registry
    first = registry.get_sample_value("floorgate_event_loop_lag_seconds_count") or 0
    time.sleep(0.2)
    later = registry.get_sample_value("floorgate_event_loop_lag_seconds_count") or 0
    assert later > first, "the lifespan runs the watch"
    text = httpx.get(f"{gateway}/metrics").text
    assert "floorgate_event_loop_lag_seconds_bucket{le=" in text
