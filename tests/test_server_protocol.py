"""What `floorgate serve`'s protocol (gateway/api/server.py) does in place of uvicorn's per-request
timers and tasks: an idle keep-alive connection is closed after uvicorn's keep-alive time, one
kept busy is not, however long it lives; and a client that leaves before its answer cancels the
request's task, told by the protocol (no watching task), as the watching task does under
uvicorn's own protocol."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateway.api.server import head_limited
from gateway.exchange import CLIENT_GONE, Disconnect, Receive, Scope, Send
from tests.servers import recv_until, serve_in_thread

KEEP_ALIVE_S = 0.5
REQUEST = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"


class ShortKeepAlive(head_limited(64 * 1024, 10.0)):  # type: ignore[misc]
    """The protocol `floorgate serve` runs, with a keep-alive time short enough to wait out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = KEEP_ALIVE_S


class Left:
    """An app whose POSTs wait for ever once their body is read; what became of each."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.told: list[bool] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        while (await receive()).get("more_body"):
            pass
        self.told.append(CLIENT_GONE in scope)
        disconnect = Disconnect(receive, scope.get(CLIENT_GONE))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.outcomes.append("left" if disconnect.caused() else "cancelled")
            raise
        finally:
            disconnect.stop()


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def exchange(sock: socket.socket) -> bytes:
    sock.sendall(REQUEST)
    return recv_until(sock, b"ok")


@pytest.fixture(scope="module")
def short_keep_alive() -> Iterator[str]:
    with serve_in_thread(Left(), http=ShortKeepAlive) as url:
        yield url


def test_an_idle_connection_is_closed_after_the_keep_alive_time(short_keep_alive: str) -> None:
    with connect(short_keep_alive) as sock:
        assert exchange(sock).startswith(b"HTTP/1.1 200 OK\r\n")
        # The server closes it; the socket's timeout (10 s) bounds the wait.
        assert sock.recv(1) == b""


def test_a_connection_kept_busy_stays_open_past_the_keep_alive_time(
    short_keep_alive: str,
) -> None:
    with connect(short_keep_alive) as sock:
        until = time.monotonic() + 4 * KEEP_ALIVE_S
        served = 0
        while time.monotonic() < until:  # one request after another, never idle for long
            assert exchange(sock).startswith(b"HTTP/1.1 200 OK\r\n")
            served += 1
        assert served > 1
        assert sock.recv(1) == b""  # and once idle, it goes


@pytest.mark.parametrize("http", ["floorgate", "httptools"])
def test_a_client_that_leaves_cancels_its_request(http: str) -> None:
    app = Left()
    protocol = head_limited(64 * 1024, 10.0) if http == "floorgate" else "httptools"
    with serve_in_thread(app, http=protocol) as url, connect(url) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        deadline = time.monotonic() + 10
        while not app.told and time.monotonic() < deadline:
            time.sleep(0.01)
        sock.close()
        while not app.outcomes and time.monotonic() < deadline:
            time.sleep(0.01)
    assert app.told == [http == "floorgate"]  # told by the protocol, or watched by a task
    assert app.outcomes == ["left"]
