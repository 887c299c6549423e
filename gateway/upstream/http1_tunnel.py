"""The HTTP/1.1 client's way through an http:// proxy to an https:// origin: a CONNECT
tunnel, then TLS with the origin inside it (gateway/upstream/http1.py is the interface)."""

from __future__ import annotations

import asyncio
import ssl

from gateway.upstream.http1_conn import ConnectError, Connection, ProtocolError
from gateway.upstream.proxy import Proxy


class _Handshake(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT, up to the blank line that ends its head."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_head: int) -> None:
        self._head = bytearray()
        self._max_head = max_head
        self.done: asyncio.Future[int] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > self._max_head:
                self.done.set_exception(ProtocolError("the proxy's answer to CONNECT is too long"))
            return
        if end + 4 != len(self._head):  # the origin spoke before TLS began: out of turn
            self.done.set_exception(ProtocolError("the proxy sent data after its answer"))
            return
        parts = bytes(self._head).split(b"\r\n", 1)[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            self.done.set_exception(ProtocolError("the proxy's answer to CONNECT is not HTTP"))
            return
        self.done.set_result(int(parts[1]))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectError("the proxy closed the connection on CONNECT"))


def connect_request(proxy: Proxy, host: str, port: int) -> bytes:
    authority = (f"[{host}]" if ":" in host else host) + f":{port}"
    head = f"CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n".encode("ascii")
    if proxy.authorization:
        head += b"proxy-authorization: " + proxy.authorization + b"\r\n"
    return head + b"\r\n"


async def open_tunnel(
    conn: Connection, proxy: Proxy, host: str, port: int, tls: ssl.SSLContext, max_head: int
) -> None:
    """Connect `conn` to https://host:port through `proxy`; raises ConnectError (refused,
    or the proxy said no) or ProtocolError (the proxy's answer was not one)."""
    loop = asyncio.get_running_loop()
    handshake = _Handshake(loop, max_head)
    raw, _ = await loop.create_connection(lambda: handshake, proxy.host, proxy.port)
    try:
        raw.write(connect_request(proxy, host, port))
        status = await handshake.done
        if not 200 <= status < 300:
            # 407: the proxy wants (other) credentials, which are never named here.
            raise ConnectError(f"the proxy {proxy.address} refused the tunnel ({status})")
        secure = await loop.start_tls(raw, conn, tls, server_hostname=host)
    except BaseException:
        raw.abort()
        raise
    if secure is None:  # only for a transport already closing
        raise ConnectError("the proxy closed the tunnel")
    conn.connection_made(secure)
