"""Real servers on loopback for tests: the gateway under uvicorn in a thread, like httpx's tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from gateway.api.server import head_limited


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def recv_until(sock: socket.socket, marker: bytes, answer: bytes = b"") -> bytes:
    """What the socket sends until `marker` has come (appended to `answer`), or it closes."""
    while marker not in answer:
        piece = sock.recv(65536)
        if not piece:
            break
        answer += piece
    return answer


@contextmanager
def serve_in_thread(app: Any, port: int | None = None, http: Any = None) -> Iterator[str]:
    """Run `app` under a real uvicorn server; yield its base URL; stop it afterwards. Its
    protocol is `floorgate serve`'s (the streamed relay writes through it) unless `http`."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        http=http or head_limited(64 * 1024, 10.0),
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    # litellm's import (a policy with a litellm model): 5 s alone, 20 to 40 s on a loaded machine
    deadline = time.monotonic() + 120
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def post_and_leave(url: str, path: str, body: bytes, until: Callable[[], bool]) -> float:
    """POST `body` as JSON (with key-any) over a socket of its own, and hang up as soon as
    `until()` holds (within 10 s); returns when, by perf_counter()."""
    parts = urlsplit(url)
    head = (f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer key-any\r\ncontent-length: {len(body)}\r\n\r\n")  # fmt: skip
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        deadline = time.monotonic() + 10
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError("not within 10 s: the client was never to leave")
            time.sleep(0.005)
    return time.perf_counter()
