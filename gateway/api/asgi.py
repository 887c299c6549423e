"""Small raw-ASGI helpers for the hot path, where a framework's per-request cost shows."""

from __future__ import annotations

from gateway.deadline import within
from gateway.errors import GatewayError, PayloadTooLarge, RequestTimeout, error_body
from gateway.exchange import Headers, Receive, Scope, Send, send_response


def header(scope: Scope, name: bytes) -> str | None:
    """A request header's value (names arrive lower-cased from the server)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(scope: Scope, receive: Receive, limit: int, timeout_s: float) -> bytes:
    """The whole request body: a 413 before reading if its declared length is over `limit`
    (as soon as it is, if undeclared), a 408 if the client takes longer than `timeout_s`."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    try:
        return await within(timeout_s, _read(receive, limit))
    except TimeoutError:
        raise RequestTimeout(
            f"The request body did not arrive within {timeout_s:g} s; send it whole, promptly."
        ) from None


async def _read(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than {limit} bytes; send less context or raise "
        "FLOORGATE_MAX_BODY_BYTES."
    )


async def send_error(send: Send, err: GatewayError, headers: Headers) -> None:
    extra = [(k.encode(), v.encode()) for k, v in err.headers.items()]
    await send_response(send, err.status, error_body(err), [*headers, *extra])
