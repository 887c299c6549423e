"""A small pooled HTTP/1.1 client on asyncio protocols, parsed by httptools: the direct path's wire.

It does what an OpenAI-wire upstream needs and no more: a request with a body, a whole or a
streamed response, keep-alive pools per origin, TLS, timeouts. aiohttp's client cost more CPU
per request than the rest of the gateway's hot path; this one costs one write, one future and
one timer per request (the parser lives as long as its connection).

Proxies (gateway/upstream/proxy.py decides which, from the environment, as httpx does): an
http:// proxy, reached with absolute-form requests for http:// origins and a CONNECT tunnel for
https:// ones; its credentials go to the proxy only, never through the tunnel.

Not supported, because no upstream of ours needs them: HEAD requests (a HEAD response would be
read as having a body), 101 upgrades, Expect: 100-continue, https:// or SOCKS proxies, HTTP/2,
content codings (we ask for identity and refuse anything else), trailers (llhttp drops them).

Errors (all raised as HTTPError subclasses, never a foreign type):

    HTTPError
    ├── ConnectError    no connection: refused, unresolvable, TLS handshake, bad URL
    ├── Timeout         connect, a read, or the whole request took too long
    ├── Busy            every connection in use, and the queue for one full or too slow
    └── ProtocolError   malformed response, or the connection ended before the response did
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from gateway.upstream.http1_conn import (
    Busy,
    ConnectError,
    Connection,
    HTTPError,
    ProtocolError,
    RawHeaders,
    ResponseHeaders,
    Sink,
    Stale,
    Timeout,
)
from gateway.upstream.http1_pool import NO_QUEUE_LIMIT, Pool, Queue
from gateway.upstream.proxy import Proxies, Proxy, ProxyUnsupported

__all__ = [
    "Busy",
    "Client",
    "ConnectError",
    "HTTPError",
    "ProtocolError",
    "Queue",
    "RawHeaders",
    "Response",
    "ResponseHeaders",
    "Sink",
    "StreamResponse",
    "Timeout",
]

Headers = RawHeaders | Mapping[str, str]
# The client frames the message and never decodes content, so these are its own to send.
_RESERVED = frozenset(
    (b"host", b"content-length", b"transfer-encoding", b"connection", b"accept-encoding",
     b"proxy-authorization")
)  # fmt: skip
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_GOOD_NAMES: set[bytes] = set()
_MAX_CACHED_URLS = 1024
_HEADS: dict[tuple[object, ...], bytes] = {}  # (method, target, *headers) -> the request's head


@dataclass(slots=True)
class Response:
    status: int
    headers: ResponseHeaders  # names lower-cased, the first of a repeated one
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return self.headers.get(name)


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host, port: the pool key
    head: bytes  # " <path> HTTP/1.1\r\nhost: <host>\r\naccept-encoding: identity\r\n"
    proxy: Proxy | None  # decided by the origin, so one pool has one way there


class StreamResponse:
    """Status and headers as they arrived; iterate for the body's chunks as they arrive.

    The connection goes back to the pool only once the body has been read to its end; `close()`
    before that (or an error, or cancellation) closes it, so the server stops sending.
    """

    def __init__(self, pool: Pool, conn: Connection, deadline: float, read_timeout: float) -> None:
        self.status = conn.status
        self.headers = conn.headers
        self._pool: Pool | None = pool
        self._conn = conn
        self._deadline = deadline
        self._read_timeout = read_timeout

    def header(self, name: bytes) -> bytes | None:
        return self.headers.get(name)

    def __aiter__(self) -> StreamResponse:
        return self

    async def __anext__(self) -> bytes:
        if self._pool is None:
            raise StopAsyncIteration
        try:
            chunk = await self._conn.next_chunk(self._deadline, self._read_timeout)
        except BaseException:
            self.close()
            raise
        if not chunk:
            self.close()
            raise StopAsyncIteration
        return chunk

    async def pipe(self, sink: Sink) -> bool:
        """Hand the body's chunks to `sink` as they arrive (http1_conn.Connection.pipe): True
        once `sink` has said no more and the body may go on, False once it has ended."""
        if self._pool is None:
            return False
        try:
            more = await self._conn.pipe(sink, self._deadline, self._read_timeout)
        except BaseException:
            self.close()
            raise
        if not more:
            self.close()
        return more

    async def read(self, limit: int | None = None) -> bytes:
        """The rest of the body; past `limit` bytes, what came so far (and the stream closed)."""
        chunks, size = [], 0
        async for chunk in self:
            chunks.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                self.close()
                return b"".join(chunks)[:limit]
        return b"".join(chunks)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.release(self._conn)
            self._pool = None


class Client:
    """Keep-alive pools, one per (scheme, host, port), each of at most `max_connections`.

    https upstreams are verified against the system's CAs unless `tls` says otherwise.
    """

    def __init__(
        self,
        max_connections: int = 512,
        keepalive_expiry: float = 15.0,
        tls: ssl.SSLContext | None = None,
        max_header_bytes: int = 64 * 1024,
        max_body_bytes: int = 64 * 1024 * 1024,
        proxies: Proxies | None = None,
        max_queued: int = 2**31,
    ) -> None:
        self._max_connections = max_connections
        self._max_queued = max_queued  # per pool: requests waiting for one of its connections
        self._proxies = proxies or Proxies.none()
        # Past these a response is refused (ProtocolError), instead of growing until the
        # total timeout: its head, and a body read whole.
        self._limits = (max_header_bytes, max_body_bytes)
        self._tls = tls
        # Idle connections are dropped here before most servers drop them (nginx: after 75 s);
        # one that a quicker server (uvicorn: 5 s) closed is caught by the stale retry.
        self._keepalive_expiry = keepalive_expiry
        self._pools: dict[tuple[str, str, int], Pool] = {}
        self._targets: dict[str, _Target] = {}

    async def request(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: Headers,
        *,
        connect_timeout: float,
        total_timeout: float,
        queue: Queue = NO_QUEUE_LIMIT,
    ) -> Response:
        """Send the request and read the whole response."""
        pool, data, deadline = self._prepare(method, url, body, headers, total_timeout)
        conn = await self._send(pool, data, (deadline, connect_timeout), None, queue)
        response = Response(conn.status, conn.headers, conn.take_body())
        pool.release(conn)
        return response

    async def stream(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: Headers,
        *,
        connect_timeout: float,
        total_timeout: float,
        read_timeout: float,
        queue: Queue = NO_QUEUE_LIMIT,
    ) -> StreamResponse:
        """Send the request; return once the status and headers have arrived.

        `read_timeout` bounds the wait for the headers and then for each chunk; `total_timeout`
        bounds the whole exchange, body included. Close the result when done with it.
        """
        pool, data, deadline = self._prepare(method, url, body, headers, total_timeout)
        conn = await self._send(pool, data, (deadline, connect_timeout), read_timeout, queue)
        return StreamResponse(pool, conn, deadline, read_timeout)

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(pool.close() for pool in pools))

    def _prepare(
        self, method: str, url: str, body: bytes, headers: Headers, total_timeout: float
    ) -> tuple[Pool, bytes, float]:
        target = self._targets.get(url) or self._parse(url)
        pool = self._pools.get(target.origin)
        if pool is None:
            https = target.origin[0] == "https"
            context = (self._tls or _tls_context()) if https else None
            pool = Pool(
                target.origin, context, self._max_connections, self._keepalive_expiry,
                *self._limits, proxy=target.proxy, max_queued=self._max_queued,
            )  # fmt: skip
            self._pools[target.origin] = pool
        deadline = asyncio.get_running_loop().time() + total_timeout
        return pool, _encode(method, target, body, headers), deadline

    async def _send(
        self,
        pool: Pool,
        data: bytes,
        timeouts: tuple[float, float],  # the request's deadline, the connect timeout
        read_timeout: float | None,
        queue: Queue,
    ) -> Connection:
        """A connection with the request written and, if streaming, the headers read.

        A pooled connection found closed before the request was written takes the request to
        a fresh one: it never left. Once written, it is never sent again (a POST to a model
        could be billed twice); a close without an answer is a ProtocolError.
        """
        fresh = False
        deadline, connect_timeout = timeouts
        while True:
            conn = await pool.acquire(deadline, connect_timeout, fresh, queue)
            try:
                await conn.exchange(data, deadline, read_timeout)
            except Stale:
                pool.release(conn)
                if fresh:
                    raise ProtocolError("upstream closed the connection unused") from None
                fresh = True
                continue
            except BaseException:
                pool.release(conn)
                raise
            return conn

    def _parse(self, url: str) -> _Target:
        try:
            parts = urlsplit(url)
            scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
        except ValueError as exc:
            raise ConnectError(f"invalid upstream URL: {exc}") from exc
        if scheme not in ("http", "https") or not host:
            raise ConnectError("the upstream URL must be absolute, http:// or https://")
        try:
            host = host.encode("idna").decode("ascii")  # bücher.example: xn--bcher-kva.example
        except UnicodeError as exc:
            raise ConnectError("the upstream URL's host is not a valid host name") from exc
        default = 443 if scheme == "https" else 80
        try:
            proxy = self._proxies.for_origin(scheme, host, port or default)
        except ProxyUnsupported as exc:
            raise ConnectError(str(exc)) from None
        authority = f"[{host}]" if ":" in host else host
        if port not in (None, default):
            authority += f":{port}"
        path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        if parts.query:
            path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
        head = _head(scheme, authority, path, proxy)
        target = _Target((scheme, host, port or default), head, proxy)
        if len(self._targets) >= _MAX_CACHED_URLS:
            self._targets.clear()
        self._targets[url] = target
        return target


def _head(scheme: str, authority: str, path: str, proxy: Proxy | None) -> bytes:
    """The request line's target and the client's own headers. Through a proxy, an http://
    origin is asked for in absolute form, with the proxy's credentials; an https:// one goes
    through a tunnel (http1_pool.py), so its requests are as if direct."""
    extra = b""
    if proxy is not None and scheme == "http":
        path = f"http://{authority}{path}"
        if proxy.authorization:
            extra = b"proxy-authorization: " + proxy.authorization + b"\r\n"
    head = f" {path} HTTP/1.1\r\nhost: {authority}\r\naccept-encoding: identity\r\n"
    return head.encode("ascii") + extra


def _encode(method: str, target: _Target, body: bytes, headers: Headers) -> bytes:
    # A model's requests share their method, target and headers (its key among them): their
    # head is checked and encoded once, and kept, as the target URLs are.
    key = (method, target.head, *(headers if isinstance(headers, list) else headers.items()))
    head = _HEADS.get(key)
    if head is None:
        head = _head_of(method, target, headers)
        if len(_HEADS) >= _MAX_CACHED_URLS:
            _HEADS.clear()
        _HEADS[key] = head
    return b"%bcontent-length: %d\r\n\r\n%b" % (head, len(body), body)


def _head_of(method: str, target: _Target, headers: Headers) -> bytes:
    parts = [method.encode("ascii"), target.head]
    for name, value in headers if isinstance(headers, list) else headers.items():
        try:
            key = name if isinstance(name, bytes) else name.encode("latin-1")
            val = value if isinstance(value, bytes) else value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise ConnectError("a header is not latin-1 text") from exc
        # A CR or LF in a value from the policy (an API key) must not be able to add a header.
        if (key not in _GOOD_NAMES and not _good_name(key)) or _unsafe(val):
            raise ConnectError(f"header {key!r} is not allowed or not valid")
        parts += (key, b": ", val, b"\r\n")
    return b"".join(parts)


def _good_name(name: bytes) -> bool:
    good = _TOKEN.fullmatch(name) is not None and name.lower() not in _RESERVED
    if good and len(_GOOD_NAMES) < 256:  # names come from code: a handful, checked once
        _GOOD_NAMES.add(name)
    return good


def _unsafe(value: bytes) -> bool:
    return 13 in value or 10 in value or 0 in value  # CR, LF, NUL; ints: 10x faster than b"\r"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds: only when an https upstream is used.
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context
