"""What made the loop late, tick by tick, and what made the slowest streams late, in a held step
(bench/held_objects.py): each tick of the gateway's lag timer over LATE_MS in the steady window
put beside the collections (gc.callbacks) and the loop thread's wait for a CPU over its
interval, each of the slowest streams beside the collections of LATE_MS or more at its first
byte and at its end.

A tick is late because of a collection that ran while it was due and lasted at least half its
lateness (its generation named), else
the loop thread's wait for a CPU (at least half the lateness), else the loop's own work (a long
batch of callbacks). A census (the bench's own `gc.get_objects()`) is named apart, and left out
of the p99s.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

LATE_MS = 5.0
SLACK_S = 0.001  # the timer's granularity (uvloop's clock ticks in ms)
FIRST_CHUNK_MS = 300.0  # the held shape's time to the first chunk
SLOWEST = 0.01  # the streams whose latency makes the p99


@dataclass(frozen=True)
class Tick:
    at: float  # wall clock when it ran
    late_ms: float
    wait_ms: float  # the loop thread's wait for a CPU since the tick before
    cpu_ms: float  # its CPU time since the tick before


@dataclass(frozen=True)
class Pause:
    """A collection or a census: what stopped the loop, from `at` for `ms`."""

    at: float
    ms: float
    name: str

    def overlaps(self, start: float, end: float) -> bool:
        return self.at < end and self.at + self.ms / 1e3 > start


@dataclass(frozen=True)
class Streams:
    """The streams that ended in the window: wall-clock start, latency and TTFB, ms."""

    start: Sequence[float]
    latency_ms: Sequence[float]
    ttfb_ms: Sequence[float]


def tick_cause(tick: Tick, pauses: Sequence[Pause]) -> str:
    due = tick.at - tick.late_ms / 1e3 - SLACK_S
    for pause in pauses:
        if pause.ms >= tick.late_ms / 2 and pause.overlaps(due, tick.at):
            return pause.name
    return "CPU wait" if tick.wait_ms >= tick.late_ms / 2 else "loop busy"


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else float("nan")


def _worst(ticks: list[Tick], shown: int = 8) -> str:
    return ", ".join(f"{t.late_ms:.1f}" for t in sorted(ticks, key=lambda t: -t.late_ms)[:shown])


def ticks_report(ticks: Sequence[Tick], pauses: Sequence[Pause]) -> list[str]:
    """The window's ticks: the p99s, and every tick over LATE_MS by cause."""
    causes = [(t, tick_cause(t, pauses)) for t in ticks]
    kept = [t for t, cause in causes if cause != "census"]
    if not kept:
        return ["  no lag ticks in the window"]
    lines = [
        f"  lag ticks in the window: {len(kept)} (censuses' left out); lag p99"
        f" {_p99([t.late_ms for t in kept]):.1f} ms, less CPU wait"
        f" {_p99([max(0.0, t.late_ms - t.wait_ms) for t in kept]):.1f} ms;"
        f" loop thread CPU {sum(t.cpu_ms for t in kept) / 1e3:.1f} s,"
        f" CPU wait {sum(t.wait_ms for t in kept) / 1e3:.2f} s"
    ]
    late: dict[str, list[Tick]] = {}
    for tick, cause in causes:
        if tick.late_ms > LATE_MS and cause != "census":
            late.setdefault(cause, []).append(tick)
    summary = "; ".join(
        f"{cause} {len(ts)} ({_worst(ts)} ms)"
        for cause, ts in sorted(late.items(), key=lambda item: -len(item[1]))
    )
    lines.append(
        f"  ticks over {LATE_MS:g} ms late: {sum(map(len, late.values()))}: {summary or 'none'}"
    )
    return lines


def stream_cause(start: float, latency_ms: float, ttfb_ms: float, pauses: Sequence[Pause]) -> str:
    """Where the late part of a stream's latency came: its first byte's wait or its end's,
    and a collection (or census) at that moment if one ran."""
    first = (start, start + ttfb_ms / 1e3)
    end = start + latency_ms / 1e3
    pauses = [pause for pause in pauses if pause.ms >= LATE_MS]
    for pause in pauses:
        if pause.overlaps(*first):
            return f"first byte: {pause.name}"
    for pause in pauses:
        if pause.overlaps(end - 0.25, end):
            return f"last chunk: {pause.name}"
    return "first byte: other" if ttfb_ms - FIRST_CHUNK_MS > 5.0 else "last chunk: other"


def streams_report(streams: Streams, pauses: Sequence[Pause]) -> list[str]:
    """The slowest 1 % of the streams that ended in the window, by where they were late."""
    order = sorted(range(len(streams.latency_ms)), key=lambda i: -streams.latency_ms[i])
    slow = order[: max(1, round(len(order) * SLOWEST))] if order else []
    if not slow:
        return ["  no streams ended in the window"]
    causes = Counter(
        stream_cause(streams.start[i], streams.latency_ms[i], streams.ttfb_ms[i], pauses)
        for i in slow
    )
    ttfb = statistics.median(streams.ttfb_ms[i] for i in slow)
    everyone = statistics.median(streams.ttfb_ms)
    return [
        f"  the slowest {len(slow)} of {len(order)} streams ended in the window (latency"
        f" {streams.latency_ms[slow[-1]]:,.0f} to {streams.latency_ms[slow[0]]:,.0f} ms;"
        f" their TTFB median {ttfb:.1f} ms against {everyone:.1f} ms for all):"
        f" {', '.join(f'{c} {n}' for c, n in causes.most_common())}"
    ]
