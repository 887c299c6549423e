"""The one ASGI boundary in front of every endpoint, hot path and FastAPI route alike (as
Starlette's ServerErrorMiddleware sits in front of its app): it gives each request its id,
counts it in flight and in the request metrics, and alone turns an exception that reaches it
into the OpenAI-shaped error, knowing whether the response has already started.

Handlers label the request as they learn about it, on the Exchange (gateway/exchange.py)
found in the scope.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from gateway.api.asgi import send_error
from gateway.errors import GatewayError
from gateway.exchange import BODY_WRITER, Exchange, Receive, Scope, Send
from gateway.metrics import Metrics
from gateway.plan import new_request_id

log = logging.getLogger("floorgate.api")
INTERNAL = GatewayError("Floorgate failed to handle the request; it has been logged.")
# Probes and scrapes come every few seconds: counted as requests they would drown the traffic.
UNCOUNTED = frozenset(("/healthz", "/readyz", "/metrics"))
SCOPE_KEY = "floorgate.exchange"
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


def exchange(scope: Scope) -> Exchange:
    """The Exchange the boundary opened for this request."""
    ex: Exchange = scope[SCOPE_KEY]
    return ex


class Boundary:
    def __init__(self, app: Handler, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Counted here and read by the gauge when scraped: a Gauge's inc and dec take its lock.
        self.in_flight = 0
        metrics.in_flight.set_function(lambda: self.in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ex = scope[SCOPE_KEY] = Exchange(new_request_id(), time.perf_counter())
        ex.writer = scope.get(BODY_WRITER)
        ex.server_send = send  # the app sends through ex.send, which notes the response's start
        counted = scope["path"] not in UNCOUNTED
        if counted:
            self.in_flight += 1
        try:
            await self.app(scope, receive, ex.send)
        except Exception as exc:  # the top-level handler: answer, log what is a bug, go on
            await self._failed(ex, exc, send)
        finally:
            # The server's send is its cycle's, whose scope holds `ex`: let go of it, or the
            # request would end in a reference cycle (tests/test_request_cycles.py).
            ex.server_send = None
            if counted:
                self.in_flight -= 1
                elapsed = time.perf_counter() - ex.started
                m = self.metrics
                m.request(ex.workflow, ex.route, ex.model, ex.status, ex.stream, elapsed)

    async def _failed(self, ex: Exchange, exc: Exception, send: Send) -> None:
        err = exc if isinstance(exc, GatewayError) else INTERNAL
        if err is INTERNAL:
            log.error("request %s failed", ex.request_id, exc_info=exc)
        if ex.responded:  # too late for an error response: the client sees the stream end
            if err is not INTERNAL:
                log.warning("request %s failed after its response started: %s", ex.request_id,
                            err.message)  # fmt: skip
            return
        ex.status = err.status
        await send_error(send, err, ex.error_headers())
