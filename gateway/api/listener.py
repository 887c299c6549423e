"""The gateway's listening sockets, taken up until the kernel's accept queue is empty each time
the event loop finds them readable.

uvloop 0.23 (libuv 1.52) accepts one connection a turn of the loop: a loop busy with thousands
of streams' chunks takes up new connections at the pace of its turns, so under overload even
the 503s that refuse them wait seconds in the accept queue (docs/bench.md, "One connection a
turn"). Here the listening socket is read by the loop's reader (`add_reader`) and every queued
connection is accepted at once, each handed to the same protocol through
`loop.connect_accepted_socket`, as libuv itself did before 1.45.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("uvicorn.error")
# Out of descriptors or buffers, the queue is left to wait this long (as asyncio's own server
# does) rather than polled again at once by a loop that would find it still readable.
ACCEPT_RETRY_S = 1.0
Factory = Callable[[], asyncio.Protocol]


def listening_sockets(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Bound as asyncio's `create_server` binds a host and port: one socket for each address
    the host names (all interfaces for ""), IPv6 ones v6-only, with SO_REUSEADDR."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Acceptor:
    """What uvicorn's shutdown asks of a server (`close`, `wait_closed`), over sockets whose
    every queued connection is accepted at each wake-up."""

    def __init__(self, sockets: list[socket.socket], factory: Factory) -> None:
        self.sockets = sockets
        self._factory = factory
        self._loop = asyncio.get_running_loop()
        self._closed = False
        for sock in sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, sock: socket.socket) -> None:
        loop = self._loop
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # the queue is empty
            except ConnectionAbortedError:
                continue  # reset by its client while it waited
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ENOMEM
                log.error("cannot accept a connection (%s); retrying in %g s", exc, ACCEPT_RETRY_S)
                loop.remove_reader(sock.fileno())
                loop.call_later(ACCEPT_RETRY_S, self._resume, sock)
                return
            _step(loop.connect_accepted_socket(self._factory, conn))

    def _resume(self, sock: socket.socket) -> None:
        if not self._closed:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        """Stop accepting: the connections still queued are reset by the kernel, as they are
        when any server closes its socket; those taken up are left to uvicorn to drain."""
        if self._closed:
            return
        self._closed = True
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()

    async def wait_closed(self) -> None:
        return None


def _step(coro: Coroutine[Any, Any, object], _: object = None) -> None:
    """Run `coro` to its next wait, and on when what it waits for is done: a task without the
    Task. connect_accepted_socket makes the transport and protocol in its first step, and the
    loop calls connection_made in the next turn, as for a connection it accepted itself; as a
    task, that first step would itself wait for the next turn."""
    try:
        waited = coro.send(None)
    except StopIteration:
        return
    except (Exception, asyncio.CancelledError) as exc:
        # The connection closed before it was made (the loop logs a protocol's own error).
        log.debug("an accepted connection was not taken up: %r", exc)
        return
    if waited is None:  # a bare yield: on in the next turn
        asyncio.get_running_loop().call_soon(_step, coro)
    else:
        waited.add_done_callback(partial(_step, coro))


class Server(uvicorn.Server):
    """uvicorn's server, listening through an Acceptor; TLS, a unix socket or an inherited
    descriptor are not set up (`floorgate serve` uses none of them)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        config = self.config
        try:
            listeners = listening_sockets(config.host, config.port, config.backlog)
        except OSError as exc:
            log.error(exc)
            await self.lifespan.shutdown()
            sys.exit(STARTUP_FAILURE)

        def protocol() -> Any:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        self.servers = [Acceptor(listeners, protocol)]  # type: ignore[list-item]
        self._log_started_message(listeners)
        self.started = True
