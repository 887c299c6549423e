"""A stream's opening: its bytes up to its first data event, read and checked before the client
has a byte (its response headers wait for them). Until then anything that goes wrong (an error
event, a cut, bytes that are not SSE, no data in time) is a failure the failover can still
act on: a retry, the route's next model, or an OpenAI-shaped error with its HTTP status.

Providers and routers send keep-alive comments before the first token (OpenRouter's
`: OPENROUTER PROCESSING`, `: ping`); an opening made of those alone is not one yet. They are
not relayed (to a client still waiting for its headers they would say nothing), and they do
not stretch the wait: the first data event must come within the model's
`first_token_timeout_s` of the call, comments or not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.policy.compiled import ModelTarget
from gateway.sse import Event, Framer
from gateway.upstream.base import UpstreamError
from gateway.upstream.in_band import check_opening


@dataclass(frozen=True, slots=True)
class Opening:
    """A stream whose first data event has come and passed its check (in_band.check_opening)."""

    first: bytes  # the bytes that completed the first data event
    events: list[Event]  # the whole events of `first` from that one on, checked, data parsed
    framer: Framer  # past `first`: the rest of the stream is framed with it
    chunks: AsyncIterator[bytes]  # the rest


async def read_opening(chunks: AsyncIterator[bytes], target: ModelTarget, asked: float) -> Opening:
    """The opening of a stream called at `asked` (time.monotonic()). UpstreamError if it
    reports an error, ends, or sends no data event in time; FramingError for data that is
    not JSON."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise UpstreamError("protocol", "upstream ended the stream before any data") from None
    framer = Framer()
    events = check_opening(first, target, framer)
    if events and events[0].data is not None:  # nearly always: data in the first bytes
        return Opening(first, events, framer, chunks)
    return await _past_comments(first, events, framer, chunks, target, asked)


async def _past_comments(
    first: bytes,
    events: list[Event],
    framer: Framer,
    chunks: AsyncIterator[bytes],
    target: ModelTarget,
    asked: float,
) -> Opening:
    """Read on to the first data event; what came before it (comments, events without data,
    an event not whole yet) is dropped or framed on, never relayed."""
    budget = target.spec.first_token_timeout_s
    while True:
        for at, event in enumerate(events):
            if event.data is not None:
                return Opening(first, events[at:], framer, chunks)
        left = asked + budget - time.monotonic()
        if left <= 0:  # checked here too: a read of bytes already come never waits for a timer
            raise _no_data(budget)
        try:
            async with asyncio.timeout(left):
                first = await anext(chunks)
        except TimeoutError:
            raise _no_data(budget) from None
        except StopAsyncIteration:
            raise UpstreamError(
                "protocol", "upstream ended the stream before any data (after comments)"
            ) from None
        events = check_opening(first, target, framer)


def _no_data(budget: float) -> UpstreamError:
    return UpstreamError("timeout", f"upstream sent no data in {budget:g} s, only comments")
