"""The protocol `floorgate serve` runs writes a response's head with its body's first bytes, in
one send, and still sends a head at once when no body follows it in the same turn of the loop
(a stream waiting for its first chunk, a HEAD request), and a 100 Continue before the body is
read. The connection's transport is recorded beneath the real protocol and server."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from prometheus_client import CollectorRegistry
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from gateway.api.server import HeadWithBody, head_limited
from gateway.app import create_app
from gateway.exchange import Receive, Scope, Send
from gateway.settings import Settings
from tests.conftest import UPSTREAM_KEY, client_for
from tests.servers import recv_until, serve_in_thread

Writes = list[bytes]


class Recorder:
    """A connection's transport, with every write kept in the order made."""

    def __init__(self, transport: asyncio.Transport, writes: Writes) -> None:
        self._transport = transport
        self.writes = writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._transport.write(data)

    def writelines(self, parts: Any) -> None:
        parts = list(parts)
        self.writes.append(b"".join(parts))
        self._transport.writelines(parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def recorded_protocol(connections: list[Writes]) -> type:
    """`floorgate serve`'s protocol, each connection's writes appended to `connections`."""

    class Recorded(head_limited(64 * 1024, 10.0)):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            connections.append([])
            super().connection_made(Recorder(transport, connections[-1]))  # type: ignore[arg-type]

    return Recorded


@pytest.fixture(scope="module")
def recorded(policy_path: Path) -> Iterator[tuple[str, list[Writes]]]:
    os.environ["FAKE_UPSTREAM_KEY"] = UPSTREAM_KEY
    settings = Settings(policies=policy_path, api_keys="key-any=*", _env_file=None)  # type: ignore[call-arg]
    connections: list[Writes] = []
    app = create_app(settings, CollectorRegistry())
    with serve_in_thread(app, http=recorded_protocol(connections)) as url:
        yield url, connections


def heads(writes: Writes) -> list[bytes]:
    return [w for w in writes if w.startswith(b"HTTP/1.1 ")]


def test_a_whole_answer_is_one_write_head_and_body(recorded: tuple[str, list[Writes]]) -> None:
    url, connections = recorded
    with client_for(url) as client:
        reply = client.chat.completions.create(
            model="workflow/bulk-summarization", messages=[{"role": "user", "content": "hi"}]
        )
    assert reply.choices[0].message.content
    writes = connections[-1]
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"}")  # the completion's JSON, whole, after the head


def test_a_stream_head_goes_with_its_first_events(recorded: tuple[str, list[Writes]]) -> None:
    url, connections = recorded
    with client_for(url) as client:
        chunks = list(
            client.chat.completions.create(
                model="workflow/bulk-summarization",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            )
        )
    assert chunks
    (head,) = heads(connections[-1])
    assert head is connections[-1][0]
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\n\r\n" in head and b"data: {" in head.split(b"\r\n\r\n", 1)[1]


def raw_exchange(url: str, request: bytes, body: bytes = b"") -> bytes:
    """Send `request` (a head); with `body`, send it once the 100 Continue has come. The
    answer's bytes up to the end of its head, and its body's first bytes if they came along."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(request)
        if body:
            assert recv_until(sock, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(body)
        return recv_until(sock, b"\r\n\r\n")


def test_a_head_request_gets_its_head(recorded: tuple[str, list[Writes]]) -> None:
    url, connections = recorded
    answer = raw_exchange(url, b"HEAD /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 405 ")  # GET only; what matters is that it came
    assert b"content-length: " in answer and answer.endswith(b"\r\n\r\n")  # a head alone
    assert len(heads(connections[-1])) == 1


def test_100_continue_goes_first_then_the_answer_in_one_write(
    recorded: tuple[str, list[Writes]],
) -> None:
    url, connections = recorded
    body = (
        b'{"model": "workflow/bulk-summarization", "messages": [{"role": "user", "content": "."}]}'
    )
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer key-any\r\n"
        b"content-type: application/json\r\nexpect: 100-continue\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    )
    answer = raw_exchange(url, request, body)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    writes = connections[-1]
    assert writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert len(writes) == 2 and writes[1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[1].endswith(b"}")


def test_a_head_whose_body_waits_is_sent_at_once() -> None:
    """An app that starts its response and sends the body only once the client has the
    head: were the head held for the body, neither would come."""
    got_head = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.to_thread(got_head.wait, 5)  # the test's thread sets it
        await send({"type": "http.response.body", "body": b"late"})

    connections: list[Writes] = []
    with serve_in_thread(app, http=recorded_protocol(connections)) as url:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            answer = recv_until(sock, b"\r\n\r\n")
            got_head.set()
            answer = recv_until(sock, b"late\r\n0\r\n\r\n", answer)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert [w.startswith(b"HTTP/1.1 200") for w in connections[-1]] == [True, False]


def test_a_served_request_leaves_no_reference_cycle(recorded: tuple[str, list[Writes]]) -> None:
    """The head's holder and uvicorn's cycle, which holds it, are freed by reference counting
    as the request ends (the cycle holds the request's scope, and so its whole state)."""
    url, connections = recorded
    writes = sum(map(len, connections))
    gc.collect()
    gc.disable()  # no automatic collection may free a cycle before it is looked for
    try:
        with client_for(url) as client:
            for stream in (False, True, False):
                reply = client.chat.completions.create(
                    model="workflow/bulk-summarization",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=stream,
                )
                if stream:
                    list(reply)  # type: ignore[call-overload]
        time.sleep(0.2)  # the connection's close reaches the server
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [
            type(o).__name__
            for o in gc.garbage
            if isinstance(o, HeadWithBody | RequestResponseCycle)
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert sum(map(len, connections)) >= writes + 3  # three answers, each a write or more
    assert left == []
