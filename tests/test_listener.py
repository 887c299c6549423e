"""`floorgate serve`'s listening sockets (gateway/api/listener.py): connections queued in the
kernel's accept queue are all taken up in one turn of the event loop, where uvloop's own server
takes up one a turn; and the sockets are bound as asyncio binds a host."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from gateway.api.listener import Acceptor, listening_sockets

QUEUED = 200


class Counted(asyncio.Protocol):
    """A connection that notes the loop turn it was made in."""

    def __init__(self, turns: list[int], clock: list[int], all_made: asyncio.Future[None]) -> None:
        self.turns, self.clock, self.all_made = turns, clock, all_made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.turns.append(self.clock[0])
        self.transport = transport
        if len(self.turns) == QUEUED:
            self.all_made.set_result(None)


def queued() -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket with QUEUED connections in its accept queue, and their clients:
    blocking connects on the loop's own thread, so the kernel completes each handshake into
    the queue while the loop cannot run."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(QUEUED)
    listener.setblocking(False)
    return listener, [socket.create_connection(listener.getsockname()) for _ in range(QUEUED)]


Listen = Callable[[socket.socket, Callable[[], asyncio.Protocol]], Awaitable[object]]


def turns_to_take_up(listen: Listen) -> list[int]:
    """The loop turn in which each of QUEUED connections, queued before the loop could read
    its listening socket, was made."""

    async def run() -> list[int]:
        loop = asyncio.get_running_loop()
        turns: list[int] = []
        clock = [0]
        all_made: asyncio.Future[None] = loop.create_future()
        listener, clients = queued()

        def tick() -> None:  # runs once a turn: the loop's clock
            clock[0] += 1
            loop.call_soon(tick)

        server = await listen(listener, lambda: Counted(turns, clock, all_made))
        start = clock[0]
        loop.call_soon(tick)
        await asyncio.wait_for(all_made, 30)
        for client in clients:
            client.close()
        server.close()  # type: ignore[attr-defined]
        return [turn - start for turn in turns]

    return uvloop.run(run())


async def acceptor(sock: socket.socket, factory: Callable[[], asyncio.Protocol]) -> Acceptor:
    return Acceptor([sock], factory)


async def uvloops_own(sock: socket.socket, factory: Callable[[], asyncio.Protocol]) -> object:
    return await asyncio.get_running_loop().create_server(factory, sock=sock)


def test_every_queued_connection_is_taken_up_in_one_turn() -> None:
    turns = turns_to_take_up(acceptor)
    assert len(set(turns)) == 1, f"made over turns {sorted(set(turns))}"


def test_uvloops_own_server_takes_up_one_connection_a_turn() -> None:
    """Why the Acceptor exists (libuv >= 1.45): if this fails, uvloop accepts in a loop again."""
    turns = turns_to_take_up(uvloops_own)
    assert len(set(turns)) == QUEUED, "one connection made a turn"


class Told(logging.Handler):
    """The records logged, and an event set by the first."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.first = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.first.set()


def test_out_of_descriptors_the_queue_waits_and_is_taken_up_after() -> None:
    """EMFILE: the listener is left for a second (not polled at once by a loop that finds it
    still readable), then every queued connection is taken up."""
    log = logging.getLogger("uvicorn.error")

    async def run(told: Told) -> int:
        loop = asyncio.get_running_loop()
        turns: list[int] = []
        all_made: asyncio.Future[None] = loop.create_future()
        listener, clients = queued()
        limits = resource.getrlimit(resource.RLIMIT_NOFILE)
        lowest_free = os.dup(0)
        os.close(lowest_free)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, limits[1]))  # no new one
        try:
            acceptor = Acceptor([listener], lambda: Counted(turns, [0], all_made))
            await asyncio.wait_for(told.first.wait(), 30)  # the accept has failed
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
        await asyncio.wait_for(all_made, 30)
        acceptor.close()
        for client in clients:
            client.close()
        return len(turns)

    told = Told()
    log.addHandler(told)
    try:
        made = uvloop.run(run(told))
    finally:
        log.removeHandler(told)
    assert made == QUEUED
    assert "cannot accept a connection" in told.records[0].getMessage()
    assert len(told.records) == 1, "one failure, then one retry that took them all"


def test_a_host_is_bound_as_asyncio_binds_it() -> None:
    (v4,) = listening_sockets("127.0.0.1", 0, 100)
    with v4:
        assert v4.family == socket.AF_INET and not v4.getblocking()
        assert v4.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
    try:
        (v6,) = listening_sockets("::1", 0, 100)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with v6:
        assert v6.family == socket.AF_INET6
        assert v6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), "v4 is a socket of its own"
    everywhere = listening_sockets("", 0, 100)
    try:
        assert {s.family for s in everywhere} <= {socket.AF_INET, socket.AF_INET6}
        assert all(s.getsockname()[0] in ("0.0.0.0", "::") for s in everywhere)
    finally:
        for sock in everywhere:
            sock.close()


def test_a_port_in_use_is_refused() -> None:
    (taken,) = listening_sockets("127.0.0.1", 0, 100)
    with taken, pytest.raises(OSError):
        listening_sockets("127.0.0.1", taken.getsockname()[1], 100)
