"""A forward proxy on loopback for tests: CONNECT tunnels and absolute-form http:// requests,
as squid or tinyproxy serve them, with optional Basic credentials (407 without them).

It records what it was asked (`.asked`: method and target) and the local port of every
connection it opened to an origin (`.origin_ports`), so a test can check that the requests
an upstream received came through it. A forwarded (not tunnelled) connection stays with the
origin of its first request; each request on it is stripped of the proxy's own headers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
from urllib.parse import urlsplit


class ProxyServer:
    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.port = 0
        self.asked: list[tuple[str, str]] = []
        self.refused = 0  # asked without (the right) credentials
        self.origin_ports: set[int] = set()
        self._expected = (
            b"Basic " + base64.b64encode(":".join(credentials).encode()) if credentials else None
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def url(self, credentials: str = "") -> str:
        return f"http://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}"

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the test proxy did not start")

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await self._stopped.wait()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        line, *fields = head.decode("latin-1").split("\r\n")
        method, target, _ = line.split(" ", 2)
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields if f)
        }
        self.asked.append((method, target))
        if self._expected and headers.get("proxy-authorization", "").encode() != self._expected:
            self.refused += 1
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b"proxy-authenticate: Basic realm=test\r\ncontent-length: 0\r\n\r\n"
            )
            await writer.drain()
            writer.close()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            await self._tunnel(reader, writer, host.strip("[]"), int(port), b"")
            return
        url = urlsplit(target)
        await self._tunnel(reader, writer, url.hostname or "", url.port or 80, head)

    async def _tunnel(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int,
        first: bytes,
    ) -> None:  # fmt: skip
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            writer.close()
            return
        self.origin_ports.add(up_writer.get_extra_info("sockname")[1])
        if first:
            requests = _forward(first, reader, up_writer, self.asked)
        else:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            requests = _pipe(reader, up_writer)
        await asyncio.gather(requests, _pipe(up_reader, writer))


async def _forward(
    head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
    asked: list[tuple[str, str]],
) -> None:  # fmt: skip
    """Each request in origin form, without the proxy's headers, its body after it."""
    with contextlib.suppress(OSError, asyncio.CancelledError, asyncio.IncompleteReadError):
        while True:
            line, *fields = head.decode("latin-1").split("\r\n")
            method, target, _ = line.split(" ", 2)
            url = urlsplit(target)
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            kept = [f for f in fields if f and not f.lower().startswith("proxy-")]
            length = next((int(f.split(":")[1]) for f in kept
                           if f.lower().startswith("content-length:")), 0)  # fmt: skip
            writer.write(
                "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "", ""]).encode("latin-1")
            )
            writer.write(await reader.readexactly(length))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            asked.append((method, target))
    with contextlib.suppress(OSError):
        writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.CancelledError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()
