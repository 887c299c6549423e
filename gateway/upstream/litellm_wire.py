"""The HTTP client under the litellm path's OpenAI-SDK providers (litellm.aclient_session):
httpx, with the direct path's proxies (gateway/upstream/proxy.py) and its caps on a response's
headers and on a body read whole, so both paths reach the same places and hold no more.

A streamed (text/event-stream) 2xx body is relayed chunk by chunk and not capped, as on the
direct path; any other body, an error's included, is refused past the cap while it arrives,
instead of being held whole (a 300 MB reply was ~900 MB of memory).

litellm caches the SDK clients built on this one, so there is one for the process; each call
brings its gateway's limits and proxies in a context variable (`using`), and its connection
pools are per event loop (a pool's sockets belong to the loop that opened them).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx

from gateway.upstream.proxy import Proxies, Proxy, ProxyUnsupported


class ResponseTooLarge(httpx.RemoteProtocolError):
    """The upstream's headers or body went past the gateway's cap (the message is safe)."""


@dataclass(frozen=True, slots=True)
class WireLimits:
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 64 * 1024 * 1024
    proxies: Proxies = field(default_factory=Proxies.none)


_current: ContextVar[WireLimits | None] = ContextVar("floorgate_litellm_limits", default=None)
_DEFAULT = WireLimits()


@contextmanager
def using(limits: WireLimits) -> Iterator[None]:
    """The limits and proxies of the calls made within (those of the calling gateway)."""
    token = _current.set(limits)
    try:
        yield
    finally:
        _current.reset(token)


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, limit: int) -> None:
        self._inner, self._limit = inner, limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._inner:
            size += len(chunk)
            if size > self._limit:
                await self._inner.aclose()  # the upstream stops sending: nothing more is read
                raise ResponseTooLarge(f"upstream sent a body larger than {self._limit} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class CappedTransport(httpx.AsyncBaseTransport):
    """Routes each request as the direct path would (a proxy or none), caps what comes back."""

    def __init__(self) -> None:
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Proxy | None, httpx.AsyncHTTPTransport]
        ] = weakref.WeakKeyDictionary()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        limits = _current.get() or _DEFAULT
        response = await self._pool(request.url, limits.proxies).handle_async_request(request)
        head = sum(len(k) + len(v) + 4 for k, v in response.headers.raw)
        if head > limits.max_header_bytes:
            await response.aclose()
            raise ResponseTooLarge(
                f"upstream sent more than {limits.max_header_bytes} bytes of headers"
            )
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not (response.is_success and media == "text/event-stream"):
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = _CappedStream(response.stream, limits.max_body_bytes)
        return response

    def _pool(self, url: httpx.URL, proxies: Proxies) -> httpx.AsyncHTTPTransport:
        try:
            proxy = proxies.for_origin(url.scheme, url.host, url.port or _port(url))
        except ProxyUnsupported as exc:
            raise httpx.ConnectError(str(exc)) from None
        pools = self._pools.setdefault(asyncio.get_running_loop(), {})
        pool = pools.get(proxy)
        if pool is None:
            pool = pools[proxy] = httpx.AsyncHTTPTransport(
                proxy=_httpx_proxy(proxy), limits=httpx.Limits(max_connections=4096)
            )
        return pool


def _port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


def _httpx_proxy(proxy: Proxy | None) -> httpx.Proxy | None:
    if proxy is None:
        return None
    headers = {"proxy-authorization": proxy.authorization.decode()} if proxy.authorization else None
    return httpx.Proxy(proxy.address, headers=headers)


_shared: list[httpx.AsyncClient] = []


def client() -> httpx.AsyncClient:
    """The process's client for litellm, made on first need."""
    if not _shared:
        # follow_redirects as litellm's own client and the OpenAI SDK's default have it.
        transport = CappedTransport()
        _shared.append(
            httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=True)
        )
    return _shared[0]
