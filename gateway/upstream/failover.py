"""Retries with backoff on one model, then fallback along the pool: the one place that retries.

Both paths (direct and litellm) go through here, so clients see the same behaviour.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import suppress
from typing import Any, TypeVar

from gateway.errors import (
    BadRequest,
    GatewayError,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    Unprocessable,
    UpstreamFailed,
    UpstreamTimeout,
)
from gateway.policy.compiled import ModelTarget
from gateway.sse import FramingError
from gateway.upstream.base import Reply, Transport, UpstreamError
from gateway.upstream.opening import Opening, read_opening

T = TypeVar("T")
A = TypeVar("A")  # what a call is given besides its transport and target
MAX_BACKOFF_S = 2.0
BUSY_RETRY_S = 1  # what a client refused for want of an upstream connection is told to wait
NO_ROUTE = "none"  # what the outcome reports for a call that no route made


class Failover:
    """Calls a route's candidates in order; reports each outcome to `on_outcome`."""

    def __init__(
        self,
        transport_for: Callable[[ModelTarget], Transport],
        on_outcome: Callable[[ModelTarget, UpstreamError | None, str | None], None],
    ) -> None:
        self._transport_for = transport_for
        # (target, error or None, the route it falls back within, if it does)
        self._on_outcome = on_outcome

    # Each call below is a plain function handing back _first_success's coroutine, with a
    # module-level function for the attempt instead of a closure: while a whole answer is
    # awaited, a coroutine of its own and a closure (its function, cells and their tuple)
    # would be five more objects each request in flight holds for the young collections to
    # walk, and one more frame each step of its task goes through (docs/bench.md, "Fewer
    # coroutines a whole answer").

    def complete(
        self, route: str, candidates: Sequence[ModelTarget], body: dict[str, Any]
    ) -> Coroutine[Any, Any, tuple[ModelTarget, Reply]]:
        return self._first_success(route, candidates, _complete, body)

    def respond(
        self, route: str, candidates: Sequence[ModelTarget], body: dict[str, Any]
    ) -> Coroutine[Any, Any, tuple[ModelTarget, Reply]]:
        """A Responses API call passed through to models that serve it."""
        return self._first_success(route, candidates, _respond, body)

    async def embed(self, target: ModelTarget, body: dict[str, Any]) -> Reply:
        """Embeddings from one model, with its retries and no fallback: another model's
        vectors would not be comparable with those the caller already holds."""
        return (await self._first_success(NO_ROUTE, [target], _embed, body))[1]

    def open_stream(
        self,
        route: str,
        candidates: Sequence[ModelTarget],
        body: dict[str, Any],
        responses: bool = False,
    ) -> Coroutine[Any, Any, tuple[ModelTarget, Opening]]:
        """Start a stream (a Responses API one with `responses`) and wait for its first data
        event (gateway/upstream/opening.py); until then, failures fall back, an error event or
        a cut after keep-alive comments among them."""
        return self._first_success(route, candidates, _open, (body, responses))

    async def _first_success(
        self,
        route: str,
        candidates: Sequence[ModelTarget],
        call: Callable[[Transport, ModelTarget, A], Awaitable[T]],
        arg: A,
    ) -> tuple[ModelTarget, T]:
        """Each candidate in turn, each with its retries (here, not in a coroutine of its own:
        one frame fewer a request), until one answers."""
        last: tuple[ModelTarget, UpstreamError] | None = None
        for i, target in enumerate(candidates):
            retries = target.spec.retries
            for attempt in range(retries + 1):
                try:
                    result = await call(self._transport_for(target), target, arg)
                except UpstreamError as err:
                    if err.retryable and attempt < retries:
                        await asyncio.sleep(_backoff(attempt, err.retry_after))
                        continue
                    last = (target, err)
                    break
                self._on_outcome(target, None, None)
                return target, result
            assert last is not None and last[0] is target
            failed = last[1]
            if failed.client_fault:  # the request's fault: the model is fine, no other helps
                self._on_outcome(target, None, None)
                break
            more = i + 1 < len(candidates)
            self._on_outcome(target, failed, route if more else None)
            if not more:
                break
        assert last is not None, "candidates is never empty"
        raise gateway_error(last[1], last[0].name)


def _complete(transport: Transport, target: ModelTarget, body: dict[str, Any]) -> Awaitable[Reply]:
    return transport.complete(target, body)


def _respond(transport: Transport, target: ModelTarget, body: dict[str, Any]) -> Awaitable[Reply]:
    return transport.respond(target, body)


def _embed(transport: Transport, target: ModelTarget, body: dict[str, Any]) -> Awaitable[Reply]:
    return transport.embed(target, body)


async def _open(
    transport: Transport, target: ModelTarget, asked_for: tuple[dict[str, Any], bool]
) -> Opening:
    body, responses = asked_for
    asked = time.monotonic()
    chunks = transport.stream(target, body, responses)
    try:
        return await read_opening(chunks, target, asked)
    except BaseException as exc:
        with suppress(Exception):
            await chunks.aclose()  # type: ignore[attr-defined]
        if isinstance(exc, FramingError):
            raise UpstreamError("protocol", str(exc)) from None
        raise


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_BACKOFF_S)
    jitter: float = 0.5 + random.random() / 2
    return min(0.1 * 2.0**attempt, MAX_BACKOFF_S) * jitter


def gateway_error(err: UpstreamError, name: str) -> GatewayError:
    """Translate the last upstream failure into the status the client should see."""
    if err.client_fault:  # relayed with the upstream's own code and param, which clients act on
        cls = {413: PayloadTooLarge, 422: Unprocessable}.get(err.status or 0, BadRequest)
        return cls(
            f"The model refused the request: {err.message}",
            code=err.code or "upstream_rejected",
            param=err.param,
        )
    if err.kind == "status" and err.status == 429:
        # Whole seconds, rounded up: a client told 0 would come straight back.
        headers = {"retry-after": str(max(1, math.ceil(err.retry_after or 1)))}
        return RateLimited(f"Model '{name}' is rate limited: {err.message}", headers=headers)
    if err.kind == "busy":  # every connection in use: come back once one may be free
        return Unavailable(
            f"Model '{name}' is busy: {err.message}", headers={"retry-after": str(BUSY_RETRY_S)}
        )
    if err.kind == "timeout":
        return UpstreamTimeout(f"Model '{name}' did not answer in time.")
    return UpstreamFailed(f"No model could answer; the last, '{name}', failed: {err.message}")
