"""The review server: a small Starlette app over one ReviewDesk. Loopback by default; bound
elsewhere it asks for a token (in the URL the command prints, then in a cookie) on every path.

Every response forbids inline script and anything not from this server (Content-Security-Policy),
so even a rendering bug could not run or fetch what a model wrote."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.api.asgi import header
from gateway.errors import GatewayError, PermissionDenied, Unauthorized, error_body
from gateway.eval.results import Results
from gateway.exchange import Receive, Scope, Send, send_response
from gateway.review.desk import ReviewDesk
from gateway.review.markdown import code_css

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
STATIC = {  # the page's files, shipped as package data: nothing is fetched at run time
    "review.js": "text/javascript",
    "review.css": "text/css",
    "report.js": "text/javascript",
    "common.js": "text/javascript",
}
PAGES = {"/": "review.html", "/report": "report.html"}
COOKIE = "floorgate_review"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def create_review_app(
    path: Path, token: str | None = None, report: Callable[[Results], Any] | None = None
) -> Starlette:
    """The app for one results file; with `token`, every request must carry it."""
    holder: dict[str, ReviewDesk] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Opened in the server's own thread: the results file's connections stay in it.
        holder["desk"] = ReviewDesk(Results.open(path))
        yield
        holder.pop("desk").close()

    def desk() -> ReviewDesk:
        return holder["desk"]

    async def post_mark(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(GatewayError("the body is not JSON", code="invalid_json"), 400)
        try:
            return JSONResponse(desk().save(body))
        except GatewayError as err:
            return _error(err)

    async def get_report(request: Request) -> Response:
        if report is None:
            return JSONResponse({"report": None})
        return JSONResponse({"report": report(desk().results)})

    # Every endpoint is async: the results file's connections belong to the loop's thread.
    async def get_items(request: Request) -> Response:
        return JSONResponse(desk().items_json())

    async def get_marks(request: Request) -> Response:
        return JSONResponse(desk().marks_json())

    routes = [
        *(Route(url, _page(name)) for url, name in PAGES.items()),
        Route("/static/code.css", _code_css),
        Route("/favicon.ico", _no_icon),
        Route("/static/{name}", _static),
        Route("/api/items", get_items),
        Route("/api/marks", get_marks),
        Route("/api/marks", post_mark, methods=["POST"]),
        Route("/api/report", get_report),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(Guard, token=token)
    return app


def new_token(host: str) -> str | None:
    """A token for a server others can reach; none on loopback."""
    return None if host in LOOPBACK else secrets.token_urlsafe(18)


def _error(err: GatewayError, status: int | None = None) -> Response:
    return Response(error_body(err), status or err.status, media_type="application/json")


def _read(name: str) -> bytes:
    return resources.files("gateway.review").joinpath("static", name).read_bytes()


def _page(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        return Response(_read(name), media_type="text/html; charset=utf-8")

    return page


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        return _error(GatewayError(f"no file '{name}'"), 404)
    return Response(_read(name), media_type=f"{STATIC[name]}; charset=utf-8")


async def _no_icon(request: Request) -> Response:
    return Response(status_code=204)


async def _code_css(request: Request) -> Response:
    return Response(code_css(".md pre"), media_type="text/css; charset=utf-8")


class Guard:
    """Security headers on every response; with a token, nothing without it. The token comes
    in the URL once (`?token=`) and is then kept in a same-site, script-invisible cookie."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self._refusal(scope)
        if refused is not None:
            await send_response(send, refused.status, error_body(refused), _HEADERS)
            return

        async def send_secured(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
                if self.token is not None:
                    cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    message["headers"].append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_secured)

    def _refusal(self, scope: Scope) -> GatewayError | None:
        """Why this request may not in, or None. Without a token the server is loopback's
        alone: a page elsewhere could still reach it through a name it rebinds to 127.0.0.1
        (so the Host must be a loopback name) or post a form to it (so a mark must be JSON,
        which no cross-site form sends, from this origin)."""
        if self.token is not None:
            if secrets.compare_digest(self._given(scope) or "", self.token):
                return None
            return Unauthorized("open the review page with the URL `floorgate eval review` "
                                "printed: it carries the token")  # fmt: skip
        host = header(scope, b"host") or ""
        if _hostname(host) not in LOOPBACK:
            return PermissionDenied(
                f"the review server answers only to a loopback name, not '{host}'; bind it "
                "with --host to serve others"
            )
        if scope["method"] == "POST":
            kind = (header(scope, b"content-type") or "").split(";")[0].strip()
            origin = header(scope, b"origin")
            if kind != "application/json" or origin not in (None, f"http://{host}"):
                return PermissionDenied("marks come from the review page: JSON, same origin")
        return None

    def _given(self, scope: Scope) -> str | None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query:
            return str(query["token"][0])
        for part in (header(scope, b"cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
        return None


def _hostname(host: str) -> str:
    """`127.0.0.1:8090` -> `127.0.0.1`, `[::1]:8090` -> `::1`."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
