"""SSE passthrough: chunks go to the client as they arrive; a failure after the first byte
ends the stream with an in-band error event (the SDKs raise on it), never a silent cut;
a client that disconnects cancels the upstream call."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import Protocol

from gateway.api.asgi import Receive, Send
from gateway.chat_stream import ChatStreamFixer, needs_fixing
from gateway.classify import classify_completion
from gateway.contract_stream import ContractFilter
from gateway.errors import GatewayError, UpstreamFailed, stream_error_event
from gateway.pipeline import Call
from gateway.runtime import Runtime
from gateway.sse import StreamCopy
from gateway.upstream.base import UpstreamError

log = logging.getLogger("floorgate.stream")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
DONE = b"data: [DONE]"


class Reshape(Protocol):
    """Another endpoint's stream made from the chat stream (the Responses API's events)."""

    def feed(self, chunk: bytes) -> bytes: ...

    def failed(self, err: GatewayError) -> bytes: ...


async def relay(
    rt: Runtime,
    call: Call,
    receive: Receive,
    send: Send,
    started: float,
    reshape: Reshape | None = None,
) -> tuple[str, int]:
    """Stream the completion to the client; returns (serving model, status for metrics).

    Failures before the first byte raise GatewayError (fallback already happened).
    """
    opening = time.perf_counter()
    target, (first, chunks) = await rt.failover.open_stream(
        call.identity.route, call.candidates, call.body
    )
    upstream_s = time.perf_counter() - opening
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*SSE_HEADERS, *call.headers(target.name)],
        }
    )
    first_token_s = time.perf_counter() - started
    watcher = _cancel_on_disconnect(receive)
    copy = StreamCopy()
    fixer = ChatStreamFixer(call.body) if needs_fixing(call.body) else None
    translate = _chain(
        ContractFilter().feed if call.contract == "translate" else None,
        fixer.feed if fixer is not None else None,
        reshape.feed if reshape is not None else None,
    )
    try:
        failed = reshape.failed if reshape is not None else stream_error_event
        await _pump(rt, target.name, first, chunks, send, copy, translate, failed)
    except asyncio.CancelledError:
        if not _cancelled_by(watcher):
            raise
        # The client went away (closing `chunks` below ends the upstream call); if that was
        # after [DONE], the stream had already succeeded and copy.status says so.
    finally:
        watcher.cancel()
        with suppress(Exception):
            await chunks.aclose()  # type: ignore[attr-defined]
    answered = call.answered(target.name)
    rt.metrics.timing(
        answered.workflow, answered.route, target.name, first_token_s - upstream_s, first_token_s
    )
    if copy.status == 200:  # classified once the stream is over, off the critical path
        completion = copy.completion()
        if completion["usage"] is None and fixer is not None:
            completion["usage"] = fixer.usage  # the one counted for the client, if any
        rt.answered(answered, classify_completion(completion))
        rt.used(answered, target, completion)
    return target.name, copy.status


async def _pump(
    rt: Runtime,
    model: str,
    first: bytes,
    chunks: AsyncIterator[bytes],
    send: Send,
    copy: StreamCopy,
    translate: Callable[[bytes], bytes] | None,
    failed: Callable[[GatewayError], bytes],
) -> None:
    try:
        tail = b""
        chunk = first
        while True:
            copy.feed(chunk)
            tail = (tail + chunk)[-64:]
            # Once [DONE] is out the stream has succeeded, whatever the client does next:
            # don't wait on the upstream's EOF, the client may hang up first.
            done = DONE in tail
            if done:
                copy.status = 200
            out = translate(chunk) if translate else chunk
            await send({"type": "http.response.body", "body": out, "more_body": not done})
            if done:
                return
            chunk = await anext(chunks, b"")
            if not chunk:
                break
        error = UpstreamError("protocol", "upstream ended the stream without [DONE]")
    except UpstreamError as exc:
        error = exc
    rt.metrics.upstream_error(model, error.kind)
    log.warning("stream from %s broke after the first byte: %s", model, error.message)
    event = failed(UpstreamFailed(f"The model's stream broke: {error.message}"))
    copy.status = UpstreamFailed.status
    await send({"type": "http.response.body", "body": event})


def _chain(*steps: Callable[[bytes], bytes] | None) -> Callable[[bytes], bytes] | None:
    """The stream rewrites that apply, one after the other; None when none does."""
    used = [s for s in steps if s is not None]
    if len(used) <= 1:
        return used[0] if used else None

    def chained(chunk: bytes) -> bytes:
        for step in used:
            chunk = step(chunk)
        return chunk

    return chained


def _cancel_on_disconnect(receive: Receive) -> asyncio.Task[None]:
    task = asyncio.current_task()
    assert task is not None

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        task.cancel()

    return asyncio.create_task(watch())


def _cancelled_by(watcher: asyncio.Task[None]) -> bool:
    """True if the only cancellation of this task came from the disconnect watcher."""
    task = asyncio.current_task()
    return watcher.done() and not watcher.cancelled() and task is not None and task.uncancel() == 0
