"""SSE passthrough: chunks go to the client as they arrive; a failure after the first byte
ends the stream with an in-band error event (the SDKs raise on it), never a silent cut;
a client that disconnects cancels the upstream call."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from gateway.chat_stream import ChatStreamFixer, needs_fixing
from gateway.contract_stream import ContractFilter
from gateway.deadline import within
from gateway.errors import GatewayError, UpstreamFailed, stream_error_event
from gateway.exchange import BodyWriter, Exchange, Send
from gateway.plan import Call
from gateway.policy.compiled import ModelTarget
from gateway.responses.events import NativeEvents
from gateway.runtime import Runtime
from gateway.sse import DONE, UNPARSED, Event, FramingError, StreamCopy, check_json
from gateway.sse import event as sse_event
from gateway.upstream.base import UpstreamError
from gateway.upstream.in_band import IN_BAND, raise_in_band_error
from gateway.upstream.opening import Opening

log = logging.getLogger("floorgate.stream")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
DRAIN_S = 1.0  # after [DONE], how long the end of the upstream body may take to arrive


class Reshape(Protocol):
    """Another endpoint's stream made from the chat stream's events (the Responses API's)."""

    finished: bool  # True once the stream's last event was made: no [DONE] will end it

    def data(self, data: dict[str, Any]) -> bytes: ...

    def done(self) -> bytes: ...

    def failed(self, err: GatewayError) -> bytes: ...


@dataclass(slots=True)
class Streamed:
    """How a stream went, for what follows it (gateway/pipeline.py's after_upstream)."""

    target: ModelTarget  # the model that served it
    status: int  # for the request metric: 200, or 502 if it broke, 499 if the client left
    completion: dict[str, Any] | None  # as if not streamed, if the client got it whole
    first_token_s: float
    overhead_s: float


async def relay(
    rt: Runtime,
    call: Call,
    ex: Exchange,
    send: Send,
    reshape: Reshape | NativeEvents | None = None,
) -> Streamed:
    """Stream the completion to the client; returns how it went, for the record.
    With NativeEvents, the upstream is asked through the Responses API and its events are
    passed through.

    The first byte waits for the upstream's first data event (gateway/upstream/opening.py:
    keep-alive comments before it are not relayed). Failures before it raise GatewayError
    (fallback already happened); the client
    leaving then cancels the request (gateway/exchange.py's Disconnect), after it ends the
    stream here.
    """
    native = reshape if isinstance(reshape, NativeEvents) else None
    asked = time.perf_counter()
    target, opening = await rt.failover.open_stream(
        call.identity.route,
        call.candidates,
        call.body if native is None else native.body,
        responses=native is not None,
    )
    chunks = opening.chunks
    upstream_s = time.perf_counter() - asked
    try:  # the head bound to no name: its list and tuples are not held for the stream's life
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*SSE_HEADERS, *call.headers(target.name)],
            }
        )
    except BaseException:
        await _close(chunks)  # nothing else would: the stream holds its pooled connection
        raise
    first_token_s = time.perf_counter() - ex.started
    copy = StreamCopy()
    fixer = ChatStreamFixer(call.body) if native is None and needs_fixing(call.body) else None
    translate = ContractFilter() if call.contract == "translate" else None
    step = _Step(target, _Events(copy, translate, fixer, reshape), opening)
    first = opening.first
    # Its events (their parsed JSON) are the first feed's alone: not held for the stream's life,
    # where each young collection would walk them (docs/bench.md, issue 18).
    del opening
    try:
        last = await _pump(rt, step, first, chunks, send, ex.writer)
        if last is not None:  # [DONE]: the stream has succeeded, whatever the client does next
            copy.status = 200
            ex.stop_watching()
            await send({"type": "http.response.body", "body": last})
            await _drain(chunks)
    except asyncio.CancelledError:
        if ex.disconnect is None or not ex.disconnect.caused():
            raise
        # The client went away; closing `chunks` below ends the upstream call.
    finally:
        await _close(chunks)
    completion = None
    if copy.status == 200:  # classified once the stream is over, off the critical path
        completion = copy.completion() if native is None else native.completion()
        if completion["usage"] is None and fixer is not None:
            completion["usage"] = fixer.usage  # the one counted for the client, if any
    return Streamed(target, copy.status, completion, first_token_s, first_token_s - upstream_s)


class _Events:
    """What the client gets for each upstream event: the event itself, or what the stream's
    rewrites (the contract's translation, then the chat fixes) and its reshaping into another
    endpoint's events make of its data. Each data event is copied, as the upstream sent it,
    for the classifier."""

    __slots__ = ("copy", "fixer", "plain", "reshape", "rewrites")

    def __init__(
        self,
        copy: StreamCopy,
        translate: ContractFilter | None,
        fixer: ChatStreamFixer | None,
        reshape: Reshape | None,
    ) -> None:
        self.copy, self.fixer = copy, fixer
        self.reshape: Reshape = reshape or _CHAT
        # A tuple: a plain stream's is the empty one, which the collector does not track.
        self.rewrites = tuple(r.rewrite for r in (translate, fixer) if r is not None)
        # The common case: each event relayed as it came (_Step.feed does it in line).
        self.plain = not self.rewrites and self.reshape is _CHAT

    def out(self, event: Event) -> bytes:
        """What the rewrites and the reshaping make of an event (a stream not `plain`)."""
        if event.data is not None:
            self.copy.feed(event.data)  # the bytes: the rewrites change the JSON in place
        data = event.json()
        if not isinstance(data, dict):
            return event.wire() if self.reshape is _CHAT else b""
        datas = [data]
        for rewrite in self.rewrites:
            datas = [d for each in datas for d in rewrite(each)]
        return b"".join(self.reshape.data(d) for d in datas)

    def done(self) -> bytes:
        """The end of the stream, with what the fixes add before [DONE]."""
        if self.fixer is None and self.reshape is _CHAT:  # the common case, with no call
            return _CHAT_DONE
        extra = self.fixer.finish() if self.fixer is not None else []
        return b"".join(self.reshape.data(d) for d in extra) + self.reshape.done()


class _ChatShape:
    """The chat stream as it is."""

    finished = False

    def data(self, data: dict[str, Any]) -> bytes:
        return sse_event(orjson.dumps(data))

    def done(self) -> bytes:
        return sse_event(DONE)

    def failed(self, err: GatewayError) -> bytes:
        return stream_error_event(err)


_CHAT = _ChatShape()
_CHAT_DONE = _CHAT.done()


class _Step:
    """What the client gets for each chunk of the upstream's bytes, its events checked on the
    way; `ending` is set, to what ends the stream, once the stream's last event has come."""

    __slots__ = ("ending", "events", "framer", "opened", "target")

    def __init__(self, target: ModelTarget, events: _Events, opening: Opening) -> None:
        self.target, self.events = target, events
        self.framer = opening.framer
        # The whole events of the first bytes were framed and checked before this model was
        # chosen (Failover.open_stream): the first feed sends them on as they are.
        self.opened: list[Event] | None = opening.events
        self.ending: bytes | None = None

    def feed(self, chunk: bytes) -> bytes:
        events, opened, self.opened = self.events, self.opened, None
        # A stream whole in its first bytes (their events hold its [DONE]) is classified as
        # soon as they are sent: the copy keeps their JSON as parsed. A longer stream's copy
        # keeps bytes, which hold less (and nothing the collector walks) while it is in flight.
        # (Event.done and _Events.out are written out in line here: on the way to the first
        # byte, as for every chunk after it, each Python call an event costs.)
        parsed = opened is not None and DONE in [event.data for event in opened]
        copy = events.copy if events.plain else None
        out: list[bytes] = []
        for event in self.framer.feed(chunk) if opened is None else opened:
            data = event.data
            if data == DONE:
                self.ending = events.done()
                break
            if opened is None:
                check_json(event)
                if data is not None and IN_BAND in data:  # raise_in_band_error's first test
                    raise_in_band_error(event, self.target)
            if copy is not None:  # relayed as it came; the copy may keep the JSON its check parsed
                if data is not None:
                    copy.feed(data, event.value if parsed else UNPARSED)
                out.append(b"\n".join(event.lines) + b"\n\n")  # Event.wire()
                continue
            out.append(events.out(event))
            if events.reshape.finished:  # a Responses stream ends at its last event
                self.ending = b""
                break
        return out[0] if len(out) == 1 else b"".join(out)


class _Piped:
    """The sink a piped upstream hands each chunk to as it arrives, in its protocol's callback:
    the chunk's events go to the client at once, through the server's BodyWriter, with no task
    woken for them. It takes no more at the stream's end, at a failure, or while the client
    takes no more data; what it did not write is `held`, for the relay's task to send."""

    __slots__ = ("failure", "held", "step", "writer")

    def __init__(self, step: _Step, writer: BodyWriter) -> None:
        self.step, self.writer = step, writer
        self.held = b""
        self.failure: Exception | None = None

    def take(self, chunk: bytes) -> bool:
        try:
            out = self.step.feed(chunk)
        except Exception as exc:  # FramingError, UpstreamError, or a bug: raised in the task
            self.failure = exc
            return False
        if self.step.ending is None and (not out or self.writer.write_body(out)):
            return True
        self.held = out
        return False


async def _pump(
    rt: Runtime,
    step: _Step,
    first: bytes,
    chunks: AsyncIterator[bytes],
    send: Send,
    writer: BodyWriter | None,
) -> bytes | None:
    """Relay events until [DONE]; return the bytes that end the stream, not yet sent. On a
    failure, send the in-band error event that ends the stream, and return None.

    After the first bytes, an upstream that can pipe its chunks (the direct path's) hands them
    to a _Piped sink that writes them to the client as they arrive; the task wakes only when
    that stops (the end, a failure, a client that takes no more), to send what was held
    through the ASGI send, which waits for a slow client, and then reads on."""
    target, events = step.target, step.events
    pipe = getattr(chunks, "pipe", None) if writer is not None else None
    chunk = first  # its events are the opening's, framed already
    try:
        while chunk:
            out = step.feed(chunk)
            if step.ending is not None:
                return out + step.ending
            if out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
            if pipe is None:
                chunk = await anext(chunks, b"")
                continue
            assert writer is not None
            piped = _Piped(step, writer)
            more = await pipe(piped.take)
            if piped.failure is not None:
                raise piped.failure
            if step.ending is not None:
                return piped.held + step.ending
            if piped.held:  # the client took no more: this send waits until it does
                await send({"type": "http.response.body", "body": piped.held, "more_body": True})
            chunk = await anext(chunks, b"") if more else b""
        error = UpstreamError("protocol", "upstream ended the stream without [DONE]")
    except FramingError as exc:
        error = UpstreamError("protocol", str(exc))
    except UpstreamError as exc:
        error = exc
    rt.metrics.upstream_error(target.name, error.kind)
    log.warning("stream from %s broke after the first byte: %s", target.name, error.message)
    ending = events.reshape.failed(UpstreamFailed(f"The model's stream broke: {error.message}"))
    events.copy.status = UpstreamFailed.status
    await send({"type": "http.response.body", "body": ending})
    return None


async def _close(chunks: AsyncIterator[bytes]) -> None:
    with suppress(Exception):
        await chunks.aclose()  # type: ignore[attr-defined]


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read briefly past [DONE] to the end of the body: a body read to its end gives its
    connection back to the pool, where closing it early would cost the next stream a handshake."""
    with suppress(Exception):
        await within(DRAIN_S, _read_all(chunks))


async def _read_all(chunks: AsyncIterator[bytes]) -> None:
    async for _ in chunks:
        pass
