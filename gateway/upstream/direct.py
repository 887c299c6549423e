"""The direct path: OpenAI-wire upstreams called over the gateway's own pooled HTTP/1.1 client
(gateway/upstream/http1.py), whose errors are translated here into UpstreamError kinds."""

from __future__ import annotations

from collections.abc import Coroutine
from contextlib import suppress
from typing import Any

import orjson

from gateway import __version__
from gateway.policy.compiled import ModelTarget
from gateway.upstream import http1
from gateway.upstream.base import (
    QueueWatch,
    Reply,
    UpstreamError,
    parse_retry_after,
    redact,
    relayed,
)
from gateway.upstream.dialect import for_upstream
from gateway.upstream.proxy import Proxies

# Gateway-only fields, never sent upstream.
_PRIVATE_FIELDS = ("metadata",)
_BASE_HEADERS: http1.RawHeaders = [
    (b"content-type", b"application/json"),
    (b"user-agent", f"floorgate/{__version__}".encode()),
]


def wire_body(target: ModelTarget, body: dict[str, Any]) -> bytes:
    """The client's (already checked) body, addressed to the upstream's own model name, in
    its dialect."""
    out = for_upstream(target, body)
    out = dict(out) if out is body else out  # the dialect's rewrite is a copy already
    for name in _PRIVATE_FIELDS:
        out.pop(name, None)
    out["model"] = target.spec.model
    out.update(target.params)
    return orjson.dumps(out)


ERROR_BODY_MAX = 64 * 1024  # an error's message is in its first bytes; the rest is not read


class DirectTransport:
    def __init__(
        self,
        max_header_bytes: int = 64 * 1024,
        max_body_bytes: int = 64 * 1024 * 1024,
        proxies: Proxies | None = None,
        watch: QueueWatch | None = None,
    ) -> None:
        self._limits = (max_header_bytes, max_body_bytes)
        self._proxies = proxies or Proxies.none()
        self._watch = watch
        # One client per connection limit and queue bound (ModelSpec.max_connections,
        # max_queued), each with a pool per origin: models that share an upstream and both
        # limits share its connections and its queue.
        self._clients: dict[tuple[int, int], http1.Client] = {}
        # (model, queue timeout) -> how its requests wait for a connection: made once.
        self._queues: dict[tuple[str, float], http1.Queue] = {}
        # (api_base, api_key) -> its base URL and headers: built once, not on every request.
        self._endpoints: dict[tuple[str | None, str | None], tuple[str, http1.RawHeaders]] = {}

    def _http(self, target: ModelTarget) -> http1.Client:
        # Created on first use so that its pools bind to the server's running event loop.
        limits = (target.spec.max_connections, target.spec.max_queued)
        client = self._clients.get(limits)
        if client is None:
            header_max, body_max = self._limits
            client = self._clients[limits] = http1.Client(
                max_connections=limits[0],
                max_header_bytes=header_max,
                max_body_bytes=body_max,
                proxies=self._proxies,
                max_queued=limits[1],
            )
        return client

    def _queue(self, target: ModelTarget) -> http1.Queue:
        key = (target.name, target.spec.queue_timeout_s)
        queue = self._queues.get(key)
        if queue is None:
            if len(self._queues) >= 256:  # only after many reloads that renamed models
                self._queues.clear()
            watch, name = self._watch, target.name
            on_wait = (lambda delta: watch.upstream_waiting(name, delta)) if watch else None
            queue = self._queues[key] = http1.Queue(key[1], on_wait)
        return queue

    def _failed(self, target: ModelTarget, exc: http1.HTTPError) -> UpstreamError:
        if isinstance(exc, http1.Busy) and self._watch is not None:
            self._watch.upstream_queue_refused(target.name, exc.reason)
        return _transport_error(exc)

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    def _endpoint(self, target: ModelTarget) -> tuple[str, http1.RawHeaders]:
        key = (target.api_base, target.api_key)
        found = self._endpoints.get(key)
        if found is None:
            if len(self._endpoints) >= 256:  # only after many reloads that changed keys
                self._endpoints.clear()
            found = self._endpoints[key] = (_base(target), _headers(target))
        return found

    # Plain functions handing back _post's coroutine: one coroutine fewer each whole answer
    # in flight holds (docs/bench.md, "Fewer coroutines a whole answer").

    def complete(self, target: ModelTarget, body: dict[str, Any]) -> Coroutine[Any, Any, Reply]:
        return self._post(target, "/chat/completions", body, "choices", "a chat completion")

    def embed(self, target: ModelTarget, body: dict[str, Any]) -> Coroutine[Any, Any, Reply]:
        return self._post(target, "/embeddings", body, "data", "a list of embeddings")

    def respond(self, target: ModelTarget, body: dict[str, Any]) -> Coroutine[Any, Any, Reply]:
        return self._post(target, "/responses", body, "output", "a response")

    async def _post(
        self, target: ModelTarget, path: str, body: dict[str, Any], items: str, what: str
    ) -> Reply:
        """The answer to a POST, which must be a JSON object with a list under `items`."""
        spec = target.spec
        base, headers = self._endpoint(target)
        try:
            resp = await self._http(target).request(
                "POST",
                base + path,
                wire_body(target, body),
                headers,
                connect_timeout=spec.connect_timeout_s,
                total_timeout=spec.timeout_s,
                queue=self._queue(target),
            )
        except http1.HTTPError as exc:
            raise self._failed(target, exc) from exc
        if resp.status >= 400:
            raise _status_error(target, resp.status, resp.header(b"retry-after"), resp.body)
        return Reply(resp.body, _parse(resp.body, items, what))

    def stream(
        self, target: ModelTarget, body: dict[str, Any], responses: bool = False
    ) -> DirectStream:
        return DirectStream(self, target, body, responses)

    async def open_stream(
        self, target: ModelTarget, body: dict[str, Any], responses: bool
    ) -> http1.StreamResponse:
        """The stream's response once its head has come and says it is an event stream."""
        spec = target.spec
        base, headers = self._endpoint(target)
        try:
            resp = await self._http(target).stream(
                "POST",
                base + ("/responses" if responses else "/chat/completions"),
                wire_body(target, body),
                headers,
                connect_timeout=spec.connect_timeout_s,
                total_timeout=spec.timeout_s,
                read_timeout=spec.first_token_timeout_s,
                queue=self._queue(target),
            )
        except http1.HTTPError as exc:
            raise self._failed(target, exc) from exc
        try:
            if resp.status >= 400:
                retry_after = resp.header(b"retry-after")
                raw = await resp.read(ERROR_BODY_MAX)
                raise _status_error(target, resp.status, retry_after, raw)
            media_type = _media_type(resp.header(b"content-type"))
            if media_type != "text/event-stream":
                raise UpstreamError("protocol", f"upstream answered a stream with {media_type}")
        except BaseException as exc:
            resp.close()
            if isinstance(exc, http1.HTTPError):
                raise _transport_error(exc) from exc
            raise
        return resp


class DirectStream:
    """A stream's SSE bytes as they arrive; `pipe` hands them to a sink instead, with no task
    woken per chunk (gateway/streaming.py). The request goes out on the first read. Close it
    with `aclose()`: back to the pool if the body was read to its end, closed otherwise (a
    client that went away, [DONE] seen before the end), which stops the upstream's work."""

    __slots__ = ("_opening", "_resp")

    def __init__(
        self, transport: DirectTransport, target: ModelTarget, body: dict[str, Any], responses: bool
    ) -> None:
        self._opening: tuple[DirectTransport, ModelTarget, dict[str, Any], bool] | None = (
            transport, target, body, responses
        )  # fmt: skip
        self._resp: http1.StreamResponse | None = None

    def __aiter__(self) -> DirectStream:
        return self

    async def __anext__(self) -> bytes:
        resp = self._resp
        if resp is None:
            if self._opening is None:  # closed
                raise StopAsyncIteration
            transport, target, body, responses = self._opening
            self._opening = None
            resp = self._resp = await transport.open_stream(target, body, responses)
        try:
            return await resp.__anext__()
        except http1.HTTPError as exc:
            raise _transport_error(exc) from exc

    async def pipe(self, sink: http1.Sink) -> bool:
        """Each chunk to `sink` as it arrives: True once `sink` has said no more and the body
        may go on (read on, or pipe again), False once it has ended."""
        assert self._resp is not None, "read the stream's first bytes before piping it"
        try:
            return await self._resp.pipe(sink)
        except http1.HTTPError as exc:
            raise _transport_error(exc) from exc

    async def aclose(self) -> None:
        self._opening = None
        if self._resp is not None:
            self._resp.close()


def _base(target: ModelTarget) -> str:
    return (target.api_base or "").rstrip("/")


def _headers(target: ModelTarget) -> http1.RawHeaders:
    key = target.api_key
    if not key:
        return _BASE_HEADERS
    if not (key.isascii() and key.isprintable()):  # a CR or LF would let it add headers
        raise UpstreamError("protocol", "the model's API key is not a valid header value")
    return [*_BASE_HEADERS, (b"authorization", b"Bearer " + key.encode())]


def _media_type(value: bytes | None) -> str:
    return (value or b"").split(b";", 1)[0].strip().lower().decode("latin-1")


def _parse(raw: bytes, items: str, what: str) -> dict[str, Any]:
    """The upstream's JSON answer, which must be an object with a list under `items`."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError("protocol", "upstream returned malformed JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get(items), list):
        raise UpstreamError("protocol", f"upstream returned JSON that is not {what}")
    return data


def _status_error(
    target: ModelTarget, status: int, retry_after: bytes | None, raw: bytes
) -> UpstreamError:
    message = raw.decode("utf-8", "replace")
    error: object = None
    with suppress(orjson.JSONDecodeError, AttributeError):
        error = orjson.loads(raw).get("error")
    if isinstance(error, dict):
        message = str(error.get("message", message))
    elif isinstance(error, str):
        message = error
    return UpstreamError(
        "status",
        redact(message, target.api_key),
        status=status,
        retry_after=parse_retry_after(retry_after.decode("latin-1") if retry_after else None),
        **relayed(error),
    )


def _transport_error(exc: http1.HTTPError) -> UpstreamError:
    # Connect and timeout messages stay generic: the upstream's address is not the client's
    # business. Protocol messages say what was wrong with the response, which helps them.
    if isinstance(exc, http1.Timeout):
        return UpstreamError("timeout", "upstream did not answer in time")
    if isinstance(exc, http1.ConnectError):
        return UpstreamError("connect", "could not connect to the upstream")
    if isinstance(exc, http1.Busy):  # its own retries would only join the queue again
        return UpstreamError("busy", f"no connection to the upstream came free ({exc})")
    return UpstreamError("protocol", str(exc))
