"""Streaming time to first byte: sequential requests, one kept-alive connection per target.

The targets are taken in turn (a, b, c, a, b, c, ...) so that drift on the machine touches each
of them alike, each stream half a millisecond after the last one ended; the first body byte of
each stream is what is timed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

HEADERS = {"content-type": "application/json"}
WARMUP = 20
# Before each stream: what the last target does after its response (a gateway's record of it,
# its drain) ends first. Without it the target after a Floorgate read 0.07 to 0.11 ms slower
# than the same code after the floor (docs/bench.md); 2 ms let the CPUs idle and slowed all.
GAP_S = 0.0005
TIMEOUT = aiohttp.ClientTimeout(total=10)


class StreamError(RuntimeError):
    """A stream did not answer 200 or did not end in `data: [DONE]`."""


@dataclass(frozen=True)
class StreamTarget:
    name: str
    url: str
    body: bytes


async def first_byte_ms(session: aiohttp.ClientSession, target: StreamTarget) -> float:
    started = time.perf_counter()
    async with session.post(target.url, data=target.body, headers=HEADERS) as response:
        first = await response.content.readany()
        elapsed = (time.perf_counter() - started) * 1000
        rest = await response.content.read()
        if response.status != 200 or b"data: [DONE]" not in first + rest:
            raise StreamError(f"{target.name}: status {response.status}, body {(first + rest)!r}")
    return elapsed


async def sample(targets: list[StreamTarget], count: int) -> dict[str, list[float]]:
    """`count` first-byte times in ms per target, after a short warm-up."""
    connector = aiohttp.TCPConnector(limit_per_host=1)
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
        for i in range(WARMUP + count):
            for target in targets:
                await asyncio.sleep(GAP_S)
                elapsed = await first_byte_ms(session, target)
                if i >= WARMUP:
                    samples[target.name].append(elapsed)
    return samples


def measure(targets: list[StreamTarget], count: int) -> dict[str, list[float]]:
    try:
        return asyncio.run(sample(targets, count))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StreamError(f"a streaming request failed: {exc!r}") from exc
