"""The event loop's lag: how late a timer due every INTERVAL_S runs. A request whose bytes have
arrived waits about as long before the gateway reads them, so this is the wait that CPU
saturation, or one slow callback, adds to every request at once (Node's
monitorEventLoopDelay, for asyncio)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import Histogram

INTERVAL_S = 0.025  # 40 wake-ups a second, under 10 µs of CPU each: 0.03 % of a core
# From the timer's own granularity (uvloop's clock ticks in milliseconds) to a stall of seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


async def watch(
    lag: Histogram,
    interval_s: float = INTERVAL_S,
    then: Callable[[float, float], None] | None = None,
) -> None:
    """Observe, until cancelled, how much later than asked each sleep of `interval_s` ends;
    tell `then` (due, ran) each time (gateway/overload.py judges it)."""
    while True:
        due = time.perf_counter() + interval_s
        await asyncio.sleep(interval_s)
        now = time.perf_counter()
        lag.observe(max(0.0, now - due))
        if then is not None:
            then(due, now)
