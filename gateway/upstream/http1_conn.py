"""One HTTP/1.1 client connection, and the client's errors; gateway/upstream/http1.py is the
interface. A connection is an asyncio Protocol feeding httptools, carrying one exchange at a
time; whoever waits on it sleeps on one future, woken by the parser's callbacks (or, piping a
streamed body, has each chunk handed to it by them, and is woken only when that ends)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import httptools

if TYPE_CHECKING:
    from gateway.upstream.http1_pool import Pool

RawHeaders = list[tuple[bytes, bytes]]
# A response's headers, names lower-cased, the first of a repeated name kept: bytes keys and
# values, so the collector never tracks the dict (a list of tuples was 1 + 1 a header, per
# stream held).
ResponseHeaders = dict[bytes, bytes]
# Takes a body chunk as it is parsed; False: take no more (they are buffered from then on).
Sink = Callable[[bytes], bool]
# A streaming consumer this far behind pauses the socket rather than buffer without bound.
_HIGH_WATER = 256 * 1024


class HTTPError(Exception):
    """Any failure of the HTTP client."""


class ConnectError(HTTPError):
    """No connection could be made (refused, unresolvable, TLS handshake, bad URL or header)."""


class Timeout(HTTPError):
    """Connecting, waiting for a pooled connection, a read or the whole exchange took too long."""


class Busy(HTTPError):
    """No connection to the upstream: every one is in use and the queue for them is full
    (`reason` "full"), or none came free within the queue's timeout ("timeout")."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProtocolError(HTTPError):
    """The response was malformed, or the connection ended before the response did."""


class Stale(ProtocolError):
    """The pooled connection closed before the request was written: it never left, so it may
    go on a fresh connection. (Closed after the write, unanswered, the server may have acted
    on it: for a POST to a model, a second billed generation. That is never replayed.)"""


_TIMER_CONTEXT = contextvars.Context()


def expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class Connection(asyncio.Protocol):
    """One socket to one origin. The parser's callbacks (on_*) fill in the current exchange."""

    # Slotted: a held stream holds its connection, and an instance dict is one more object
    # for every young collection to walk (docs/bench.md, issue 18).
    __slots__ = (
        "_active", "_body", "_body_bytes", "_buffered", "_dead", "_deadline", "_framed",
        "_head_bytes", "_headers_done", "_interim", "_keep_alive", "_loop", "_lost", "_parser",
        "_paused", "_pool", "_read_timeout", "_sink", "_started", "_streaming", "_timer",
        "_timer_at", "_wait_until", "_waiter", "complete", "error", "headers", "idle",
        "idle_since", "reused", "status", "transport",
    )  # fmt: skip

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.reused = False
        self.idle = False
        self.idle_since = 0.0
        self._dead = False
        self._lost: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[bool] | None = None
        self._wait_until = 0.0  # the deadline of the wait in progress
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._paused = False
        self._active = False
        self._sink: Sink | None = None
        self._read_timeout = 0.0  # while piping: each chunk moves the wait's deadline by it
        self._deadline = 0.0  # while piping: the exchange's
        # One parser for the connection's life: a reused connection is always at a message
        # boundary, where llhttp is ready for the next response.
        self._parser = httptools.HttpResponseParser(self)
        self._begin(streaming=False)

    def _begin(self, streaming: bool) -> None:
        self._streaming = streaming
        # The body received and not yet taken: an empty tuple while there is none (a piped
        # stream's, all its life), which the collector does not track, a list once there is.
        self._body: list[bytes] | tuple[()] = ()
        self._buffered = 0
        self._started = False  # a byte of the response arrived
        self._head_bytes = 0  # of the response's status line and headers
        self._body_bytes = 0  # of a whole (not streamed) body
        self._interim = False
        self._framed = False  # Content-Length or chunked; otherwise the body ends at EOF
        self._keep_alive = False
        self._headers_done = False
        self.status = 0
        self.headers: ResponseHeaders = {}
        self.complete = False
        self.error: HTTPError | None = None

    @property
    def reusable(self) -> bool:
        return self.complete and self._keep_alive and self.usable

    @property
    def usable(self) -> bool:
        return not self._dead and self.transport is not None and not self.transport.is_closing()

    async def exchange(self, data: bytes, deadline: float, read_timeout: float | None) -> None:
        """Write a request; wait for the whole response, or for its head when streaming."""
        if not self.usable:  # closed by the server between connecting and this write
            raise Stale("upstream closed the connection before the request")
        self._begin(streaming=read_timeout is not None)
        self._active = True
        assert self.transport is not None
        self.transport.write(data)
        # The future awaited here, not in _wait, as in pipe: a whole answer waits here all its
        # upstream's time, and _wait's coroutine would be one more object it holds.
        try:
            while not (self.complete or (self._streaming and self._headers_done)):
                if self.error is not None:
                    raise self.error
                if not await self._waiter_until(deadline, read_timeout):
                    raise Timeout("upstream did not answer in time")
                self._waiter = None
        finally:
            self._waiter = None

    async def next_chunk(self, deadline: float, read_timeout: float) -> bytes:
        """The body received since the last call; b"" once the body has ended."""
        while not self._body:
            if self.error is not None:
                raise self.error
            if self.complete:
                return b""
            await self._wait(deadline, read_timeout)
        # Data that keeps coming never waits, so the total budget is checked here as well.
        if not self.complete and self._loop.time() >= deadline:
            raise Timeout("upstream did not finish in time")
        return self.take_body()

    async def pipe(self, sink: Sink, deadline: float, read_timeout: float) -> bool:
        """Hand each body chunk to `sink` as it is parsed, in the protocol's callback, with no
        task woken for it; return True once `sink` has said no more (the body may go on),
        False once the body has ended. The read timeout holds between chunks as when waiting."""
        if self._body and not sink(self.take_body()):
            return True
        self._sink, self._deadline, self._read_timeout = sink, deadline, read_timeout
        try:
            while self._sink is not None:
                if self.error is not None:
                    raise self.error
                if self.complete:
                    return False
                # The future awaited here, not in _wait: a held stream waits here nearly all its
                # life, and _wait's coroutine would be one more object it holds.
                woken = await self._waiter_until(deadline, read_timeout)
                self._waiter = None
                if not woken:
                    raise Timeout("upstream did not answer in time")
            return True
        finally:
            self._sink = self._waiter = None

    def take_body(self) -> bytes:
        body, self._body, self._buffered = self._body, (), 0
        self._resume()
        return body[0] if len(body) == 1 else b"".join(body)

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()  # uvloop raises on a closed transport

    async def _wait(self, deadline: float, read_timeout: float | None) -> None:
        try:
            if not await self._waiter_until(deadline, read_timeout):
                raise Timeout("upstream did not answer in time")
        finally:
            self._waiter = None

    def _waiter_until(self, deadline: float, read_timeout: float | None) -> asyncio.Future[bool]:
        """The future the next wait sleeps on: True when the parser's callbacks wake it, False
        when the wait's deadline comes (the read timeout's, within `deadline`)."""
        # A bare future, and one timer per connection that is moved only when it would fire
        # too late: a chunk that arrives in time costs no timer of its own (a call_at and a
        # cancel per chunk were a tenth of a relayed chunk's CPU).
        loop = self._loop
        if read_timeout is not None:
            deadline = min(deadline, loop.time() + read_timeout)
        self._wait_until = deadline
        if self._timer is None or self._timer_at > deadline:
            self._arm(deadline)
        waiter = self._waiter = loop.create_future()
        return waiter

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        # In a context of its own that is never changed: _on_timer reads no context variable,
        # and call_at would otherwise copy the caller's for each timer (one more object each
        # held stream keeps).
        timer = self._loop.call_at(when, self._on_timer, context=_TIMER_CONTEXT)
        self._timer, self._timer_at = timer, when

    def _on_timer(self) -> None:
        """The timer went off at `_timer_at`: the wait in progress expires if its deadline has
        come, or the timer moves to it; with no wait in progress it stays off until the next."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._wait_until <= self._timer_at:
            waiter.set_result(False)
        else:
            self._arm(self._wait_until)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def _fail(self, error: HTTPError) -> None:
        if not self.complete and self.error is None:
            self.error = error
            self._wake()
        self.close()

    def finish(self) -> None:
        """The exchange is over: whatever the server sends from now on is out of turn. The
        read timer stays as it is: going off with no wait in progress it does nothing, and the
        next exchange's wait moves it on (a cancel here and a call_at at the next wait were
        3 µs an exchange)."""
        self._active = False
        self._body, self._buffered = (), 0
        self._resume()  # an idle connection must read, or it would never see the server's EOF

    def close(self) -> None:
        self._pool.discard(self)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()  # no flushing or TLS goodbye: we want it gone now

    async def wait_closed(self) -> None:
        self.close()
        if not self._dead and self.transport is not None:
            self._lost = self._loop.create_future()
            await self._lost

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._active:
            # Nothing was asked; a server talking out of turn can't be trusted with a request.
            self.close()
            return
        self._started = True
        if not self._headers_done:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("upstream tried to switch protocols"))
        except httptools.HttpParserError as exc:
            ours = exc.__context__  # what one of our callbacks raised to stop the parser
            if not isinstance(ours, ProtocolError):
                ours = ProtocolError(f"upstream sent a malformed response ({exc})")
            self._fail(ours)
            return
        if not self._headers_done and self._head_bytes > self._pool.max_header_bytes:
            limit = self._pool.max_header_bytes
            self._fail(ProtocolError(f"upstream sent more than {limit} bytes of headers"))

    def eof_received(self) -> None:
        return None  # the transport closes itself; connection_lost decides what EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        self._dead = True
        self._disarm()
        self._pool.discard(self)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if not self._active or self.complete:
            return
        if not self._started:
            self._fail(ProtocolError("upstream closed the connection without answering"))
        elif self._headers_done and not self._framed:
            self.complete = True  # a body without a length ends where the connection does
            self._wake()
        else:
            self._fail(ProtocolError("upstream closed the connection mid-response"))

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            # More after the response: the server is out of step. Stop parsing (the complete
            # response stands) and close, so no later request reads this one's leftovers.
            raise ProtocolError("upstream sent more than one response")

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name not in self.headers:
            self.headers[name] = value
        if name == b"content-length" or (
            name == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            self._framed = True
        elif name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            # We send accept-encoding: identity and pass bodies on as they are.
            raise ProtocolError("upstream sent an encoded body it was not asked for")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # interim (103 Early Hints...): the real response follows
            self._interim = True
            self.headers = {}
            self._framed = False
            return
        self.status = status
        self._keep_alive = self._parser.should_keep_alive()
        self._headers_done = True
        if self._streaming:
            self._wake()

    def on_body(self, body: bytes) -> None:
        sink = self._sink
        if sink is not None:  # piped: the chunk moves the wait's deadline, within the total
            self._wait_until = min(self._deadline, self._loop.time() + self._read_timeout)
            if not sink(body):
                self._sink = None
                self._wake()
            return
        if self._body:
            self._body.append(body)
        else:
            self._body = [body]
        if not self._streaming:
            self._body_bytes += len(body)
            if self._body_bytes > self._pool.max_body_bytes:
                limit = self._pool.max_body_bytes
                raise ProtocolError(f"upstream sent a body larger than {limit} bytes")
        else:
            self._buffered += len(body)
            if self._buffered > _HIGH_WATER and not self._paused:
                self._paused = True
                assert self.transport is not None
                self.transport.pause_reading()
            self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
        elif not self.complete and self.error is None:
            self.complete = True
            self._wake()
