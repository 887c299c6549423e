"""What a caller is told about its limits: OpenAI's x-ratelimit-* headers and Retry-After.

OpenAI sends `x-ratelimit-limit-requests`, `-remaining-requests`, `-reset-requests` and the
`-tokens` equivalents on every response, resets as durations (`1s`, `6m0s`, `120ms`); its SDKs
wait `retry-after-ms`, else `retry-after` (seconds), before retrying a 429. Where a workflow
and a key both limit the same thing, the one with less left is reported.
"""

from __future__ import annotations

import math

from gateway.state.counters import DAY, MINUTE, Check, Counted

Headers = list[tuple[bytes, bytes]]
SLOT_RETRY_S = 1.0  # a slot frees when a request ends: try again soon


def duration(seconds: float) -> str:
    """OpenAI's reset format: `850ms`, `12s`, `1m30s`, `2h5m0s`."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def window_wait(check: Check, counted: Counted, now: float) -> float:
    """Seconds until `check.cost` more fits in the sliding minute (math.inf: never, the
    request alone is above the limit)."""
    previous, current = counted
    room = check.limit - check.cost
    if room < 0:
        return math.inf
    elapsed = now % MINUTE
    if current <= room:  # this minute: wait for the previous one's weight to decay
        if previous == 0:
            return 0.0
        return max(0.0, MINUTE * (1 - (room - current) / previous) - elapsed)
    # the next minute, where this one's count becomes the decaying previous
    return (MINUTE - elapsed) + MINUTE * (1 - room / current)


def window_reset(counted: Counted, now: float) -> float:
    """Seconds until the whole window is free again."""
    previous, current = counted
    elapsed = now % MINUTE
    if current > 0:
        return 2 * MINUTE - elapsed
    return MINUTE - elapsed if previous > 0 else 0.0


def day_reset(now: float) -> float:
    return DAY - now % DAY


def wait(check: Check, counted: Counted, now: float) -> float:
    """How long a refused request should wait before it is worth sending again."""
    if check.kind == "window":
        return window_wait(check, counted, now)
    return day_reset(now) if check.kind == "day" else SLOT_RETRY_S


def retry_after(seconds: float) -> dict[str, str]:
    if math.isinf(seconds):
        return {}
    return {"retry-after": str(max(1, math.ceil(seconds))), "retry-after-ms": str(
        max(1, math.ceil(seconds * 1000))
    )}  # fmt: skip


def rate_headers(kind: str, limit: int, remaining: int, reset_s: float) -> Headers:
    return [
        (b"x-ratelimit-limit-" + kind.encode(), str(limit).encode()),
        (b"x-ratelimit-remaining-" + kind.encode(), str(max(0, remaining)).encode()),
        (b"x-ratelimit-reset-" + kind.encode(), duration(reset_s).encode()),
    ]
