"""The response head `floorgate serve`'s protocol writes (gateway/api/cycle.py) is uvicorn's,
byte for byte: the gateway's own headers as uvicorn would write them, and any other head (an
unknown header name, a value uvicorn refuses) by uvicorn itself. Both servers answer the same
request over a real socket; only the date line (the clock's) is set aside."""

from __future__ import annotations

import re
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateway.exchange import Receive, Scope, Send
from tests.servers import serve_in_thread

OURS = [
    (b"content-type", b"application/json"),
    (b"x-floorgate-request-id", b"fg-0123456789abcdef01234567"),
    (b"x-floorgate-workflow", b"bulk"),
    (b"x-floorgate-verdict-source", b"none"),
]
CASES: dict[str, list[tuple[bytes, bytes]]] = {
    "known, with a length": [*OURS, (b"content-length", b"2")],
    "known, chunked": OURS,
    "two lengths, the first counts": [(b"content-length", b"2"), (b"content-length", b"9")],
    "an unknown name": [*OURS, (b"x-other", b"1"), (b"content-length", b"2")],
    "a name in capitals": [(b"Content-Type", b"text/plain"), (b"content-length", b"2")],
    "a value with a line feed": [(b"x-floorgate-model", b"a\nb"), (b"content-length", b"2")],
    "a value with a tab": [(b"x-floorgate-model", b"a\tb"), (b"content-length", b"2")],
    "no headers": [],
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = CASES[scope["path"].strip("/").replace("_", " ")]
    await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
    await send({"type": "http.response.body", "body": b"ok"})


def answer(url: str, request: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):  # each request below ends with the connection
            received += chunk
    return re.sub(rb"date: [^\r]*\r\n", b"", received)


@pytest.fixture(scope="module")
def servers() -> Any:
    with serve_in_thread(app) as ours, serve_in_thread(app, http="httptools") as theirs:
        yield ours, theirs


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(
    "request_line", [b"GET /{} HTTP/1.1", b"HEAD /{} HTTP/1.1", b"GET /{} HTTP/1.0"]
)
def test_the_head_on_the_wire_is_uvicorn_s(
    servers: tuple[str, str], case: str, request_line: bytes
) -> None:
    line = request_line.replace(b"{}", case.replace(" ", "_").encode())
    request = line + b"\r\nhost: x\r\nconnection: close\r\n\r\n"
    ours, theirs = (answer(url, request) for url in servers)
    assert ours == theirs
    refused = case == "a value with a line feed"  # uvicorn raises: no response, a closed socket
    assert ours.startswith(b"HTTP/1.1 200 OK\r\n") != refused
