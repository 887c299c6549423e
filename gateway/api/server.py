"""The HTTP server's protocol: uvicorn's httptools one, with a cap on a request's head and a
deadline for it, and each response's head written with its body. uvicorn has neither cap nor
deadline: one 128 MB header stalled /healthz for 5 s, and a client sending its head a byte at
a time was held open for ever. It also tells a request that its client went away (the scope's
Leaving), keeps one keep-alive timer a connection instead of one a request, and tells the
overload rule how long each new connection waited in the kernel's accept queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from gateway.accept_wait import accept_wait
from gateway.api.cycle import QuickHeadCycle
from gateway.errors import GatewayError, HeadersTooLarge, RequestTimeout, error_body
from gateway.exchange import BODY_WRITER, CLIENT_GONE, Leaving

Accepted = Callable[[float, float], None]  # (seconds waited in the accept queue, now)
REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def head_limited(
    max_bytes: int, timeout_s: float, accepted: Accepted | None = None
) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's `http=`: a head over `max_bytes` is a 431, one that
    takes longer than `timeout_s` from its first byte a 408; either closes the connection.
    `accepted`, if given, is told how long each new connection waited in the kernel's accept
    queue (gateway/overload.py judges it)."""
    told = staticmethod(accepted) if accepted is not None else None  # not bound to the protocol
    limits = {"max_bytes": max_bytes, "timeout_s": timeout_s, "accepted": told}
    return type("HeadLimited", (HeadLimited,), limits)


class HeadLimited(HttpToolsProtocol):
    max_bytes = 64 * 1024
    timeout_s = 10.0
    _head_bytes = 0  # of the head being read; 0 until its first byte
    _head_since = 0.0  # when its first byte came
    _reading_head = True  # between requests too: the next byte starts a head
    _head_timer: asyncio.TimerHandle | None = None
    _refused = False  # answered and closing: nothing more is parsed
    _leaving: Leaving | None = None  # the request in progress's, told if the client goes
    _idle_since: float | None = None  # when the last response ended, if none has begun since
    _idle_timer: asyncio.TimerHandle | None = None
    accepted: Accepted | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.accepted is not None:  # once a connection, not a request: ~2 us
            waited = accept_wait(transport)
            if waited is not None:
                self.accepted(waited, time.perf_counter())

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_head:
            if not self._head_bytes:
                self._head_since = self.loop.time()
            self._head_bytes += len(data)
        super().data_received(data)
        if self._reading_head and self._head_bytes:  # a head begun and still coming
            if self._head_bytes > self.max_bytes:
                self._too_large()  # httptools would hold it all
            elif self._head_timer is None:
                # Armed only for a head that did not come whole in its first read: nearly
                # every head does, and needs no timer of its own.
                deadline = self._head_since + self.timeout_s
                self._head_timer = self.loop.call_at(deadline, self._too_slow)

    def on_headers_complete(self) -> None:
        self._reading_head, self._head_bytes = False, 0
        self._stop_timer()
        # The head arrived whole in one read: measure what it was made of (a loop: a generator
        # in sum() cost the path to the first byte a step of it a header, 0.48 against 0.69 µs).
        size = len(self.url)
        for name, value in self.headers:
            size += len(name) + len(value) + 4
        if size > self.max_bytes:
            self._too_large()
            return
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:  # a new request's
            if type(cycle) is RequestResponseCycle:  # its task has not run yet: send is ours
                cycle.__class__ = QuickHeadCycle
            writer = HeadWithBody(self.transport, self.flow)
            cycle.transport = writer  # type: ignore[assignment]
            self.scope[BODY_WRITER] = writer  # type: ignore[literal-required]
            self._leaving = self.scope[CLIENT_GONE] = Leaving()  # type: ignore[literal-required]

    def _too_large(self) -> None:
        self._refuse(HeadersTooLarge(
            f"The request's headers are larger than {self.max_bytes} bytes; send fewer or "
            "shorter ones, or raise FLOORGATE_MAX_HEADER_BYTES."
        ))  # fmt: skip

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()
        self._reading_head = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        super().connection_lost(exc)
        cycle = self.cycle
        if self._leaving is not None and cycle is not None and not cycle.response_complete:
            self._leaving.gone()  # as uvicorn marks the cycle disconnected

    # Keep-alive: uvicorn arms a timer (call_later) as each response ends and cancels it at the
    # next request's first byte, 3 µs a request under uvloop. Here one timer a connection, armed
    # as it first goes idle and moved on when it fires early, closes it after the same idle
    # time (uvicorn's timeout_keep_alive).

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None  # uvicorn calls it as bytes arrive: the connection is busy

    def on_response_complete(self) -> None:
        """uvicorn's (0.54), with the idle time noted instead of a timer armed."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:  # a pipelined request waits: start it
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = now = self.loop.time()
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_at(now + self.timeout_keep_alive, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        idle_since = self._idle_since
        if idle_since is None:  # busy: armed again when its response ends
            return
        due = idle_since + self.timeout_keep_alive
        if due <= self.loop.time():
            self.timeout_keep_alive_handler()
        else:
            self._idle_timer = self.loop.call_at(due, self._idle_check)

    def _too_slow(self) -> None:
        self._head_timer = None
        self._refuse(RequestTimeout(
            f"The request's headers did not arrive within {self.timeout_s:g} s."
        ))  # fmt: skip

    def _stop_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, err: GatewayError) -> None:
        self._stop_timer()
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        body = error_body(err)
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (err.status, REASONS[err.status], len(body), body)
        )
        self.transport.close()


# Past this a body goes in its own buffer beside the head (one writev) instead of being copied.
_JOIN_MAX = 64 * 1024
# The one write a cycle makes before its response's head, from receive(): never held.
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HeadWithBody:
    """The connection as a response's cycle (uvicorn's RequestResponseCycle) writes to it: the
    response's head, the cycle's first write but a 100 Continue, waits for the body's first
    bytes and goes with them in one send. uvicorn writes them apart, and the event loop sends
    each write at once: two sends, two TCP segments and two wake-ups of the client for every
    response. A head whose body does not follow in the same turn of the loop (a stream waiting
    for its first chunk, a HEAD request's) is sent at the turn's end. It holds no reference to
    the cycle, which holds it: a reference cycle would keep each request's state for the
    collector to find.

    It is also the streamed relay's way to the client (gateway/streaming.py): `write_body`
    writes a body chunk at once, with none of the ASGI send's task machinery."""

    __slots__ = ("_flow", "_held", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, flow: FlowControl) -> None:
        self._transport = transport
        self._flow = flow
        self._held: bytes | None = None
        self._started = False  # the head has been written (held, or sent)

    def write_body(self, body: bytes) -> bool:
        """One chunk of a response whose head went through the ASGI send without a length
        (so chunked, as uvicorn frames it), written now; False, writing nothing, while the
        client takes no more (its socket's buffer is full, or it has gone): the ASGI send then
        waits for it, or drops what it is given."""
        if self._flow.write_paused or self._transport.is_closing():
            return False
        self.write(b"%x\r\n%b\r\n" % (len(body), body))
        return True

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) <= _JOIN_MAX:
                self._transport.write(held + data)
            else:
                self._transport.writelines((held, data))
        elif not self._started and data != _CONTINUE:
            self._started = True
            self._held = data
            asyncio.get_running_loop().call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
