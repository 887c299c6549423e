"""The direct path: OpenAI-wire upstreams called with one shared, pooled aiohttp session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from gateway.policy.compiled import ModelTarget
from gateway.upstream.base import Reply, UpstreamError, parse_retry_after, redact

# Gateway-only fields, never sent upstream.
_PRIVATE_FIELDS = ("metadata",)


def wire_body(target: ModelTarget, body: dict[str, Any]) -> bytes:
    """The client's (already checked) body, addressed to the upstream's own model name."""
    out = {k: v for k, v in body.items() if k not in _PRIVATE_FIELDS}
    out["model"] = target.spec.model
    out.update(target.params)
    return orjson.dumps(out)


class DirectTransport:
    def __init__(self, max_connections: int = 512) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use so it binds to the server's running event loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ttl_dns_cache=300, keepalive_timeout=30
            )
            self._session = aiohttp.ClientSession(
                connector=connector, json_serialize=lambda o: orjson.dumps(o).decode()
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _request(
        self, target: ModelTarget, body: dict[str, Any], timeout: aiohttp.ClientTimeout
    ) -> Any:
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        url = f"{(target.spec.api_base or '').rstrip('/')}/chat/completions"
        return self._client().post(
            url, data=wire_body(target, body), headers=headers, timeout=timeout
        )

    async def complete(self, target: ModelTarget, body: dict[str, Any]) -> Reply:
        spec = target.spec
        timeout = aiohttp.ClientTimeout(total=spec.timeout_s, sock_connect=spec.connect_timeout_s)
        try:
            async with self._request(target, body, timeout) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise _status_error(target, resp, raw)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc) from exc
        return Reply(raw, _parse_completion(raw))

    async def stream(self, target: ModelTarget, body: dict[str, Any]) -> AsyncIterator[bytes]:
        spec = target.spec
        timeout = aiohttp.ClientTimeout(
            total=spec.timeout_s,
            sock_connect=spec.connect_timeout_s,
            sock_read=spec.first_token_timeout_s,
        )
        try:
            async with self._request(target, body, timeout) as resp:
                if resp.status >= 400:
                    raise _status_error(target, resp, await resp.read())
                if not resp.content_type.startswith("text/event-stream"):
                    raise UpstreamError(
                        "protocol", f"upstream answered a stream with {resp.content_type}"
                    )
                async for chunk in resp.content.iter_any():
                    yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc) from exc


def _parse_completion(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError("protocol", "upstream returned malformed JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise UpstreamError("protocol", "upstream returned JSON that is not a chat completion")
    return data


def _status_error(target: ModelTarget, resp: aiohttp.ClientResponse, raw: bytes) -> UpstreamError:
    message = raw.decode("utf-8", "replace")
    try:
        error = orjson.loads(raw).get("error")
        message = error.get("message", message) if isinstance(error, dict) else message
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return UpstreamError(
        "status",
        redact(str(message), target.api_key),
        status=resp.status,
        retry_after=parse_retry_after(resp.headers.get("retry-after")),
    )


def _transport_error(exc: BaseException) -> UpstreamError:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamError("timeout", "upstream did not answer in time")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError("connect", "could not connect to the upstream")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return UpstreamError("protocol", "upstream closed the connection mid-response")
    return UpstreamError("connect", f"upstream connection failed ({type(exc).__name__})")
