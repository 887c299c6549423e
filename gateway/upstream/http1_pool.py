"""The HTTP/1.1 client's keep-alive pool for one origin (gateway/upstream/http1.py is the
interface): bounded, most recently used connection first, idle ones expire. A request that
finds every connection in use waits in a bounded queue, for a bounded time."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway.deadline import within
from gateway.upstream.http1_conn import Busy, ConnectError, Connection, Timeout, expire
from gateway.upstream.http1_tunnel import open_tunnel
from gateway.upstream.proxy import Proxy


@dataclass(frozen=True, slots=True)
class Queue:
    """How a request waits for a connection: until `timeout` seconds have passed (or the
    request's own deadline, if sooner); `on_wait(+1)` as it starts waiting, `(-1)` as it stops."""

    timeout: float = float("inf")
    on_wait: Callable[[int], None] | None = None


NO_QUEUE_LIMIT = Queue()


class Pool:
    """Keep-alive connections to one origin: at most `limit` open, the most recent reused first."""

    def __init__(
        self,
        origin: tuple[str, str, int],
        tls: ssl.SSLContext | None,
        limit: int,
        expiry: float,
        max_header_bytes: int = 64 * 1024,
        max_body_bytes: int = 64 * 1024 * 1024,
        proxy: Proxy | None = None,
        max_queued: int = 2**31,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self._proxy = proxy
        self._max_queued = max_queued  # requests that may wait for a connection at once
        self._queued = 0
        self.max_header_bytes = max_header_bytes  # a response's status line and headers
        self.max_body_bytes = max_body_bytes  # a response read whole (streams are not held)
        self.origin = origin
        self._tls = tls
        self._limit = limit
        self._expiry = expiry
        self._idle: deque[Connection] = deque()
        self._open: set[Connection] = set()
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._closed = False

    async def acquire(
        self, deadline: float, connect_timeout: float, fresh: bool, queue: Queue = NO_QUEUE_LIMIT
    ) -> Connection:
        queue_deadline = self.loop.time() + queue.timeout
        while True:
            if not fresh:
                conn = self._take_idle()
                if conn is not None:
                    return conn
            elif len(self._open) >= self._limit and self._idle:
                self._idle[0].close()  # make room: a fresh connection was asked for
            if len(self._open) < self._limit:
                return await self._connect(deadline, connect_timeout)
            await self._wait_for_slot(deadline, queue_deadline, queue.on_wait)

    def release(self, conn: Connection) -> None:
        conn.finish()
        if conn.reusable and not self._closed:
            conn.idle, conn.idle_since = True, self.loop.time()
            self._idle.append(conn)
            self._wake_one()
        else:
            conn.close()

    def discard(self, conn: Connection) -> None:
        if conn in self._open:
            self._open.remove(conn)
            if conn.idle:
                conn.idle = False
                self._idle.remove(conn)
            self._wake_one()

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*(conn.wait_closed() for conn in list(self._open)))

    def _take_idle(self) -> Connection | None:
        idle, oldest = self._idle, self.loop.time() - self._expiry
        while idle and idle[0].idle_since < oldest:
            idle[0].close()
        while idle:
            conn = idle.pop()
            conn.idle = False
            if conn.usable:
                conn.reused = True
                return conn
            conn.close()
        return None

    async def _connect(self, deadline: float, connect_timeout: float) -> Connection:
        conn = Connection(self)
        self._open.add(conn)
        _, host, port = self.origin
        timeout = min(connect_timeout, deadline - self.loop.time())
        # Through a proxy, messages name the proxy (never its credentials): it is what failed.
        where = f"{host}:{port}" if self._proxy is None else f"the proxy {self._proxy.address}"
        try:
            # A bare timer (gateway/deadline.py), not asyncio.timeout's context manager: every
            # new upstream connection passes here, thousands at once when a burst of new
            # clients arrives (docs/bench.md, "Whole answers at 2,000 and 2,600 a second").
            await within(timeout, self._dial(conn, host, port))
        except TimeoutError:
            self.discard(conn)
            raise Timeout(f"connecting to {where} took too long") from None
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            self.discard(conn)
            raise ConnectError(f"could not connect to {where} ({exc})") from exc
        except BaseException:
            self.discard(conn)
            raise
        return conn

    async def _dial(self, conn: Connection, host: str, port: int) -> None:
        proxy = self._proxy
        if proxy is not None and self._tls is not None:
            await open_tunnel(conn, proxy, host, port, self._tls, self.max_header_bytes)
            return
        if proxy is not None:  # an http:// origin: absolute-form requests to the proxy
            host, port = proxy.host, proxy.port
        await self.loop.create_connection(
            lambda: conn, host, port, ssl=self._tls, server_hostname=host if self._tls else None
        )

    async def _wait_for_slot(
        self, deadline: float, queue_deadline: float, on_wait: Callable[[int], None] | None
    ) -> None:
        if self._queued >= self._max_queued:
            raise Busy("full", f"{self._queued} requests already wait for a connection")
        waiter = self.loop.create_future()
        self._waiters.append(waiter)
        self._queued += 1
        if on_wait is not None:
            on_wait(1)
        timer = self.loop.call_at(min(deadline, queue_deadline), expire, waiter)
        try:
            if not await waiter:
                if queue_deadline < deadline:
                    raise Busy("timeout", "no connection to the upstream came free in time")
                raise Timeout("no connection to the upstream came free in time")
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self._wake_one()  # woken, then cancelled: pass the free slot on
            raise
        finally:
            timer.cancel()
            self._queued -= 1
            if on_wait is not None:
                on_wait(-1)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return
