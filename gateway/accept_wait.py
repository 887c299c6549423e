"""How long a new connection waited in the kernel's accept queue before the gateway took it up.

The kernel completes a client's handshake and queues its request's bytes whatever the process
is doing; the process takes them up when its event loop next wakes for the listening socket
(every queued one since gateway/api/listener.py; uvloop's own server took one a turn). With the
loop saturated, connections waited there for seconds while the loop's own timer was late by
only tens of milliseconds (docs/bench.md, "Where 600 streams/s queued"), so neither the loop's
lag nor a clock read in the process sees that wait. TCP_INFO
does: `tcpi_last_data_recv` is the milliseconds since the socket last received data, or since
its handshake completed if none came yet (Linux; counted in the kernel's ticks, 4 ms at HZ=250)."""

from __future__ import annotations

import asyncio
import socket
import struct

TCP_INFO = getattr(socket, "TCP_INFO", None)  # Linux only
# struct tcp_info (linux/tcp.h): eight one-byte fields, then u32s; tcpi_last_data_recv is the
# fourteenth of those, at byte 52.
_LAST_DATA_RECV = struct.Struct("52xI")


def accept_wait(transport: asyncio.BaseTransport) -> float | None:
    """Seconds since the connection's request bytes (or its handshake) reached the kernel, read
    as the gateway takes it up: one getsockopt, about 1.5 us, once a connection. None where the
    kernel does not say."""
    sock = transport.get_extra_info("socket")
    if TCP_INFO is None or sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, _LAST_DATA_RECV.size)
    except OSError:  # not a TCP socket
        return None
    if len(raw) < _LAST_DATA_RECV.size:
        return None
    ms: int = _LAST_DATA_RECV.unpack(raw)[0]
    return ms / 1000
