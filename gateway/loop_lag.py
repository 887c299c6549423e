"""The event loop's lag: how late a timer due every INTERVAL_S runs. A request whose bytes have
arrived waits about as long before the gateway reads them, so this is the wait that CPU
saturation, or one slow callback, adds to every request at once (Node's
monitorEventLoopDelay, for asyncio).

On a machine shared with other work the lag also holds the time the loop's thread was ready but
waited for a CPU that other processes had: the kernel counts that wait per thread
(/proc/thread-self/schedstat, Linux), so the lag less that wait is what the gateway's own work
made late (docs/bench.md, "What makes the loop late")."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from prometheus_client import Histogram

INTERVAL_S = 0.025  # 40 wake-ups a second, under 10 µs of CPU each: 0.03 % of a core
# From the timer's own granularity (uvloop's clock ticks in milliseconds) to a stall of seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


SCHEDSTAT = "/proc/thread-self/schedstat"


class CpuWait:
    """Seconds the calling thread has been ready to run but waiting for a CPU, as the kernel
    counts them (the second field of schedstat, in ns); None where the kernel does not say.
    Opened once and re-read with a pread (under 1 µs), so that 40 reads a second cost nothing."""

    def __init__(self, path: str = SCHEDSTAT) -> None:
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY)
        except OSError:
            self._fd = None

    def seconds(self) -> float | None:
        if self._fd is None:
            return None
        try:
            return int(os.pread(self._fd, 128, 0).split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


async def watch(
    lag: Histogram,
    interval_s: float = INTERVAL_S,
    then: Callable[[float, float], None] | None = None,
    own: Histogram | None = None,
) -> None:
    """Observe, until cancelled, how much later than asked each sleep of `interval_s` ends;
    tell `then` (due, ran) each time (gateway/overload.py judges it). `own`, if given, gets
    each lag less the time the loop's thread waited for a CPU over that interval."""
    waited = CpuWait() if own is not None else None  # opened here: the loop's thread
    try:
        while True:
            due = time.perf_counter() + interval_s
            wait_before = waited.seconds() if waited is not None else None
            await asyncio.sleep(interval_s)
            now = time.perf_counter()
            late = max(0.0, now - due)
            lag.observe(late)
            if own is not None and waited is not None and wait_before is not None:
                wait_after = waited.seconds()
                if wait_after is not None:
                    own.observe(max(0.0, late - (wait_after - wait_before)))
            if then is not None:
                then(due, now)
    finally:
        if waited is not None:
            waited.close()
