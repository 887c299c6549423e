"""Retries with backoff on one model, then fallback along the pool: the one place that retries.

Both paths (direct and litellm) go through here, so clients see the same behaviour.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
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

    async def complete(
        self, route: str, candidates: Sequence[ModelTarget], body: dict[str, Any]
    ) -> tuple[ModelTarget, Reply]:
        def call(target: ModelTarget) -> Awaitable[Reply]:
            return self._transport_for(target).complete(target, body)

        return await self._first_success(route, candidates, call)

    async def respond(
        self, route: str, candidates: Sequence[ModelTarget], body: dict[str, Any]
    ) -> tuple[ModelTarget, Reply]:
        """A Responses API call passed through to models that serve it."""

        def call(target: ModelTarget) -> Awaitable[Reply]:
            return self._transport_for(target).respond(target, body)

        return await self._first_success(route, candidates, call)

    async def embed(self, target: ModelTarget, body: dict[str, Any]) -> Reply:
        """Embeddings from one model, with its retries and no fallback: another model's
        vectors would not be comparable with those the caller already holds."""

        def call(target: ModelTarget) -> Awaitable[Reply]:
            return self._transport_for(target).embed(target, body)

        return (await self._first_success(NO_ROUTE, [target], call))[1]

    async def open_stream(
        self,
        route: str,
        candidates: Sequence[ModelTarget],
        body: dict[str, Any],
        responses: bool = False,
    ) -> tuple[ModelTarget, Opening]:
        """Start a stream (a Responses API one with `responses`) and wait for its first data
        event (gateway/upstream/opening.py); until then, failures fall back, an error event or
        a cut after keep-alive comments among them."""

        async def call(target: ModelTarget) -> Opening:
            asked = time.monotonic()
            chunks = self._transport_for(target).stream(target, body, responses)
            try:
                return await read_opening(chunks, target, asked)
            except BaseException as exc:
                with suppress(Exception):
                    await chunks.aclose()  # type: ignore[attr-defined]
                if isinstance(exc, FramingError):
                    raise UpstreamError("protocol", str(exc)) from None
                raise

        return await self._first_success(route, candidates, call)

    async def _first_success(
        self,
        route: str,
        candidates: Sequence[ModelTarget],
        call: Callable[[ModelTarget], Awaitable[T]],
    ) -> tuple[ModelTarget, T]:
        last: tuple[ModelTarget, UpstreamError] | None = None
        for i, target in enumerate(candidates):
            try:
                result = await _with_retries(target, call)
            except UpstreamError as err:
                last = (target, err)
                if err.client_fault:  # the request's fault: the model is fine, no other helps
                    self._on_outcome(target, None, None)
                    break
                more = i + 1 < len(candidates)
                self._on_outcome(target, err, route if more else None)
                if not more:
                    break
                continue
            self._on_outcome(target, None, None)
            return target, result
        assert last is not None, "candidates is never empty"
        raise gateway_error(last[1], last[0].name)


async def _with_retries(target: ModelTarget, call: Callable[[ModelTarget], Awaitable[T]]) -> T:
    for attempt in range(target.spec.retries + 1):
        try:
            return await call(target)
        except UpstreamError as err:
            if not err.retryable or attempt == target.spec.retries:
                raise
            await asyncio.sleep(_backoff(attempt, err.retry_after))
    raise AssertionError("unreachable")


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
