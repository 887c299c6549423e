"""The app factory: the raw-ASGI hot path in front of a FastAPI app for everything else."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, disable_created_metrics
from starlette.exceptions import HTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gateway import __version__
from gateway.api import admin, explain, feedback, openapi, ops
from gateway.api.boundary import INTERNAL, Boundary
from gateway.api.openai import MODELS_PATH, RESPONSES_PATH, OpenAIEndpoints
from gateway.errors import BadRequest, GatewayError, MethodNotAllowed, NotFound, error_body
from gateway.exchange import Receive, Scope, Send
from gateway.reload import PolicyReloader
from gateway.runtime import Runtime
from gateway.settings import Settings

log = logging.getLogger("floorgate")
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


class Floorgate:
    """Dispatches the OpenAI hot path without a framework and hands the rest to FastAPI, all
    behind the one boundary (gateway/api/boundary.py)."""

    def __init__(self, runtime: Runtime, rest: FastAPI, forwarded_from: str | None = None) -> None:
        self.runtime = runtime
        self.rest = rest
        # The proxy headers (X-Forwarded-For, -Proto) change a request's client and scheme,
        # which only the FastAPI part reads: applied there alone, the hot path skips the
        # middleware's call and its read of every header.
        self._rest: Handler = rest
        if forwarded_from is not None:
            self._rest = ProxyHeadersMiddleware(rest, trusted_hosts=forwarded_from)  # type: ignore[arg-type,assignment]
        endpoints = OpenAIEndpoints(runtime)
        self.by_id: list[tuple[str, Handler]] = [
            (RESPONSES_PATH, endpoints.get_response),
            (MODELS_PATH, endpoints.model),
        ]
        self.hot: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/chat/completions"): endpoints.chat_completions,
            ("POST", "/v1/embeddings"): endpoints.embeddings,
            ("POST", "/v1/responses"): endpoints.responses,
            ("POST", "/v1/completions"): endpoints.completions,
            ("GET", "/v1/models"): endpoints.models,
        }
        self.allowed = {path: method for method, path in self.hot}
        # The ASGI app as the server is given it (gateway/cli.py): this object's __call__
        # would be one more coroutine frame in every step of every request's task.
        self.boundary = Boundary(self._dispatch, runtime.metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.boundary(scope, receive, send)

    def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The handler's coroutine, to be awaited by the boundary. A plain function, not a
        coroutine of its own: that would be one more object every request in flight holds
        (and one more frame each step of its task goes through)."""
        if scope["type"] == "http":
            handler = self.hot.get((scope["method"], scope["path"]))
            if handler is None and scope["method"] == "GET":
                handler = self._by_prefix(scope["path"])
            if handler is not None:
                return handler(scope, receive, send)
            allowed = self.allowed.get(scope["path"])
            if allowed is not None:
                raise MethodNotAllowed(
                    f"{scope['path']} takes {allowed}, not {scope['method']}.",
                    headers={"allow": allowed},
                )
        return self._rest(scope, receive, send)

    def _by_prefix(self, path: str) -> Handler | None:
        """The GET endpoints whose path ends with an id."""
        for prefix, handler in self.by_id:
            if path.startswith(prefix) and len(path) > len(prefix):
                return handler
        return None


# Young collections every 10,000 net allocations instead of Python's 700. Nearly every object a
# request makes dies by reference counting, so a young collection walks about the same live
# requests either way, and the default paid that walk 14 times as often: -8.6 % CPU a request
# at c=64, the same loop lag and overhead at 2,000 held streams (docs/bench.md).
YOUNG_THRESHOLD = 10_000
# The middle generation collected every 100 young collections instead of every 10: at 2,000
# whole answers a second (1.5 s each) a young collection came every ~40 ms, so the middle one
# every 0.4 s walked again every object of the requests in flight that had outlived a young
# one, 12 ms a collection and up to 90 ms; every 4 s most of those requests have ended and
# their objects are gone by reference counting before it walks them (docs/bench.md, "Whole
# answers at 2,000 and 2,600 a second").
MIDDLE_THRESHOLD = 100


def settle_collector() -> None:
    """Move everything loaded so far (modules, policy, prices) out of the collector's reach (a
    full collection that scanned it all stalled the event loop for tens of ms), and collect the
    young and middle generations less often."""
    gc.freeze()
    _, _, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, old)


def create_app(
    settings: Settings,
    registry: CollectorRegistry | None = None,
    *,
    sighup: bool = False,
    forwarded_from: str | None = None,
) -> Floorgate:
    """`sighup`: reload the policy on SIGHUP (only in the main thread, as `floorgate serve`);
    `forwarded_from`: the proxies whose X-Forwarded-* headers the FastAPI part believes (as
    uvicorn's `forwarded_allow_ips`, when the server does not apply them itself)."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` doubles the series
    runtime = Runtime.build(settings, registry)
    reloader = PolicyReloader(runtime.policies, runtime.metrics, runtime.prepare)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.prepare(runtime.policies.current)
        # The price table is 3 MB of JSON: read it beside serving, not before.
        prices = asyncio.get_running_loop().run_in_executor(None, runtime.prices.load)
        prices.add_done_callback(lambda _: settle_collector())
        async with reloader.running(settings.policy_poll_s, sighup), runtime.background():
            yield
        await prices
        await runtime.transports.close()

    # No redirect to the slashed path: its Location would be built from the client's Host.
    rest = FastAPI(
        title="Floorgate", version=__version__, lifespan=lifespan, redirect_slashes=False
    )
    openapi.install(rest)  # the document names the hot path's endpoints too
    rest.state.runtime = runtime
    rest.state.reloader = reloader
    rest.include_router(ops.router)
    rest.include_router(explain.router)
    rest.include_router(admin.router)
    rest.include_router(feedback.router)
    rest.add_exception_handler(GatewayError, _render)  # type: ignore[arg-type]
    rest.add_exception_handler(HTTPException, _render_http)  # type: ignore[arg-type]
    rest.add_exception_handler(RequestValidationError, _render_validation)  # type: ignore[arg-type]
    # Starlette answers a bug with text/plain and re-raises it; the boundary logs it.
    rest.add_exception_handler(Exception, _render_internal)
    return Floorgate(runtime, rest, forwarded_from)


async def _render(request: Request, err: GatewayError) -> Response:
    return Response(error_body(err), err.status, err.headers, media_type="application/json")


async def _render_internal(request: Request, exc: Exception) -> Response:
    return await _render(request, INTERNAL)


async def _render_http(request: Request, exc: HTTPException) -> Response:
    where = f"{request.method} {request.url.path}"
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        err: GatewayError = NotFound(f"No endpoint {where}.")
    elif exc.status_code == 405:
        allowed = headers.get("allow") or headers.get("Allow") or ""
        err = MethodNotAllowed(f"{request.url.path} takes {allowed}, not {request.method}.")
    else:
        err = GatewayError(str(exc.detail))
        err.status = exc.status_code
        if exc.status_code < 500:
            err.type = "invalid_request_error"
    err.headers = headers
    return await _render(request, err)


async def _render_validation(request: Request, exc: RequestValidationError) -> Response:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"] if p != "body")
    return await _render(request, BadRequest(f"{field}: {first['msg']}", param=field or None))
