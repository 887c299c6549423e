"""A tiny asyncio server on loopback whose handler scripts each connection byte by byte, for the
HTTP client's edge cases (truncated bodies, stale keep-alive, servers that never answer); and
the helpers its tests share: `run` (each test on asyncio and on uvloop), `get`, `open_stream`."""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest
import uvloop

from gateway.upstream import http1

Handler = Callable[["Conn"], Awaitable[None]]
_LENGTH = re.compile(rb"content-length: *(\d+)", re.IGNORECASE)


class Conn:
    """One accepted connection, as the handler sees it."""

    def __init__(self, server: ScriptedServer, index: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:  # fmt: skip
        self.server, self.index = server, index
        self.reader, self.writer = reader, writer

    async def read_request(self) -> bytes | None:
        """The next whole request (head and body), or None once the client has closed."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            match = _LENGTH.search(head)
            body = await self.reader.readexactly(int(match.group(1)) if match else 0)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.server.client_closed += 1
            return None
        self.server.requests.append(head + body)
        return head + body

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


class ScriptedServer:
    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.connections = 0  # accepted so far
        self.open_connections = 0
        self.most_open = 0  # the most open at once
        self.client_closed = 0  # connections the client closed (EOF where a request could be)
        self.requests: list[bytes] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    def url(self, path: str = "/v1/chat/completions") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Conn(self, self.connections, reader, writer)
        self.connections += 1
        self.open_connections += 1
        self.most_open = max(self.most_open, self.open_connections)
        try:
            await self.handler(conn)
        except ConnectionError:
            pass
        finally:
            self.open_connections -= 1
            writer.close()
            with suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


@asynccontextmanager
async def scripted(
    handler: Handler, tls: ssl.SSLContext | None = None
) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(handler, tls)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def response(body: bytes = b"hello", *, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 response with a Content-Length; `extra` is more header lines."""
    length = b"content-length: %d\r\n" % len(body)
    return b"HTTP/1.1 " + status + b"\r\n" + length + extra + b"\r\n" + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
LAST_CHUNK = b"0\r\n\r\n"


async def answer_all(conn: Conn, body: bytes = b"hello") -> None:
    """Answer every request on the connection, keeping it alive, until the client closes it."""
    while await conn.read_request() is not None:
        await conn.send(response(body))


async def hang(conn: Conn) -> None:
    await conn.read_request()
    await asyncio.sleep(3600)


JSON = [(b"content-type", b"application/json")]


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,  # what `floorgate serve` runs on; its transports differ
}


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test once on each event loop, each fresh and closed afterwards."""

    @functools.wraps(test)
    def wrapper(*args: Any, loop: str, **kwargs: Any) -> None:
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            runner.run(test(*args, **kwargs))

    # pytest reads the signature to inject arguments: the test's own, plus the loop.
    signature = inspect.signature(test)
    extra = inspect.Parameter("loop", inspect.Parameter.KEYWORD_ONLY)
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), extra]
    )
    each_loop: Callable[..., None] = pytest.mark.parametrize("loop", list(LOOPS))(wrapper)
    return each_loop


async def get(client: http1.Client, url: str, total: float = 5.0) -> http1.Response:
    return await client.request("POST", url, b"{}", JSON, connect_timeout=1, total_timeout=total)


async def open_stream(
    client: http1.Client, url: str, read: float = 5.0, total: float = 5.0
) -> http1.StreamResponse:
    return await client.stream(
        "POST", url, b"{}", JSON, connect_timeout=1, total_timeout=total, read_timeout=read
    )
