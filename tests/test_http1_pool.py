"""The HTTP/1.1 client's connection handling: stale keep-alive connections, early stops,
cancellation, timeouts, refused connections and TLS, against scripted loopback servers."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import pytest

from gateway.upstream import http1
from gateway.upstream.http1 import Client, ConnectError, ProtocolError, Timeout
from tests.scripted_server import (
    CHUNKED_HEAD,
    Conn,
    answer_all,
    chunk,
    get,
    hang,
    open_stream,
    response,
    run,
    scripted,
)
from tests.servers import free_port


async def answer_then_drop_the_next(conn: Conn) -> None:
    """The first connection answers once, then takes the next request and closes unanswered
    (a keep-alive connection the server timed out just as it was reused); later ones answer."""
    if conn.index == 0:
        await conn.read_request()
        await conn.send(response())
        await conn.read_request()
        return
    await answer_all(conn)


@run
async def test_a_request_a_reused_connection_took_unanswered_is_never_sent_again() -> None:
    # The server may have acted on it: for a POST to a model, a second billed generation.
    async with scripted(answer_then_drop_the_next) as server:
        client = Client()
        assert (await get(client, server.url())).status == 200
        with pytest.raises(ProtocolError, match="without answering"):
            await get(client, server.url())
        assert (await get(client, server.url())).status == 200  # the next goes on a fresh one
        await client.close()
    assert server.connections == 2
    assert len(server.requests) == 3  # each request went once


@run
async def test_a_stream_a_reused_connection_took_unanswered_is_never_sent_again() -> None:
    async with scripted(answer_then_drop_the_next) as server:
        client = Client()
        assert (await get(client, server.url())).status == 200
        with pytest.raises(ProtocolError, match="without answering"):
            await open_stream(client, server.url())
        await client.close()
    assert len(server.requests) == 2


@run
async def test_no_retry_once_a_byte_of_the_response_arrived() -> None:
    async def half_answer_the_second(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(response())
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\n")

    async with scripted(half_answer_the_second) as server:
        client = Client()
        await get(client, server.url())
        with pytest.raises(ProtocolError):
            await get(client, server.url())
        await client.close()
    assert len(server.requests) == 2


@run
async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async def answer_once(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(response())

    async with scripted(answer_once) as server:
        client = Client()
        for _ in range(3):
            assert (await get(client, server.url())).status == 200
            await asyncio.sleep(0.05)  # the server's FIN arrives while the connection is idle
        await client.close()
    assert (server.connections, len(server.requests)) == (3, 3)  # no stale retries needed


@run
async def test_a_stream_stopped_early_closes_its_connection() -> None:
    async def endless(conn: Conn) -> None:
        if await conn.read_request() is None:
            return
        await conn.send(CHUNKED_HEAD)
        while True:
            await conn.send(chunk(b"data: x\n\n"))
            await asyncio.sleep(0.01)

    async with scripted(endless) as server:
        client = Client()
        stream = await open_stream(client, server.url())
        assert await anext(stream) == b"data: x\n\n"
        stream.close()
        stream = await open_stream(client, server.url())
        await anext(stream)
        stream.close()
        await client.close()
    assert server.connections == 2


@run
async def test_a_cancelled_request_frees_its_connection() -> None:
    async def hang_first(conn: Conn) -> None:
        await (hang(conn) if conn.index == 0 else answer_all(conn))

    async with scripted(hang_first) as server:
        client = Client(max_connections=1)
        task = asyncio.create_task(get(client, server.url()))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert (await get(client, server.url(), total=1)).status == 200
        await client.close()
    assert server.connections == 2


@run
async def test_a_server_that_never_answers_times_out() -> None:
    async with scripted(hang) as server:
        client = Client()
        started = time.monotonic()
        with pytest.raises(Timeout):
            await get(client, server.url(), total=0.2)
        assert time.monotonic() - started < 1
        await client.close()


@run
async def test_a_stream_times_out_between_chunks_and_in_total() -> None:
    async def trickle(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(CHUNKED_HEAD + chunk(b"data: a\n\n"))
        while conn.index == 1:  # the second keeps sending, just never finishes
            await asyncio.sleep(0.005)
            await conn.send(chunk(b"data: b\n\n"))
        await asyncio.sleep(3600)

    async with scripted(trickle) as server:
        client = Client()
        stream = await open_stream(client, server.url(), read=0.2)
        assert await anext(stream) == b"data: a\n\n"
        with pytest.raises(Timeout):
            await anext(stream)
        with pytest.raises(Timeout):
            async with asyncio.timeout(2):  # were the total not kept, this would run forever
                async for _ in await open_stream(client, server.url(), read=1, total=0.3):
                    await asyncio.sleep(0.02)  # slower than the server: chunks always wait
        await client.close()


# The read timeout is 15 gaps: a loaded machine that holds the process for a moment wakes the
# client's read timer and the server's next send together (one event loop), and the timer runs
# before the chunk is read; at 4 gaps (0.2 s) a loaded run cut the stream after chunk 7 of 12.
GAP_S, CHUNKS, READ_S = 0.05, 30, 0.75  # 1.5 s of chunks: two read timeouts


async def trickle(conn: Conn) -> None:
    """CHUNKS chunks GAP_S apart, then silence."""
    await conn.read_request()
    await conn.send(CHUNKED_HEAD)
    for index in range(CHUNKS):
        await asyncio.sleep(GAP_S)
        await conn.send(chunk(b"data: %d\n\n" % index))
    await asyncio.sleep(3600)


async def trickled(piped: bool) -> list[bytes]:
    """What a stream of `trickle` gave, read or piped, before it raised Timeout."""
    async with scripted(trickle) as server:
        client = Client()
        received: list[bytes] = []
        try:
            stream = await open_stream(client, server.url(), read=READ_S)
            with pytest.raises(Timeout):
                if piped:
                    await stream.pipe(keeper(received, more=True))
                async for piece in stream:
                    received.append(piece)
        finally:
            await client.close()
    return received


@run
async def test_the_read_timeout_bounds_each_wait_for_a_chunk_not_the_stream() -> None:
    """Chunks that each come within the read timeout keep a stream going for several times
    its length (the connection's one timer moves on as they do); then a silence longer than
    it ends the stream with a Timeout, after the chunks that came. Piped (each chunk handed to
    a sink in the parser's callback, no wait per chunk), the same."""
    for piped in (False, True):
        received = await trickled(piped)
        assert b"".join(received) == b"".join(b"data: %d\n\n" % i for i in range(CHUNKS))


def keeper(into: list[bytes], more: bool) -> http1.Sink:
    """A sink that keeps what it is handed, and asks for more or not."""

    def keep(piece: bytes) -> bool:
        into.append(piece)
        return more

    return keep


@run
async def test_a_sink_that_takes_no_more_leaves_the_rest_to_be_read() -> None:
    async def three(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(CHUNKED_HEAD)
        for index in range(3):
            await conn.send(chunk(b"data: %d\n\n" % index))
            await asyncio.sleep(0.05)
        await conn.send(b"0\r\n\r\n")
        await asyncio.sleep(3600)

    async with scripted(three) as server:
        client = Client()
        try:
            stream = await open_stream(client, server.url(), read=5)
            taken: list[bytes] = []
            assert await stream.pipe(keeper(taken, more=False))
            rest = [piece async for piece in stream]
            assert not await stream.pipe(keeper(taken, more=True))  # read to its end already
        finally:
            await client.close()
    assert taken == [b"data: 0\n\n"]
    assert b"".join(rest) == b"data: 1\n\ndata: 2\n\n"


@run
async def test_connection_refused_is_a_connect_error() -> None:
    client = Client()
    with pytest.raises(ConnectError):
        await get(client, f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(ConnectError):
        await get(client, "ftp://127.0.0.1/v1")
    await client.close()


@run
async def test_plain_http_never_loads_the_ca_bundle() -> None:
    http1._tls_context.cache_clear()
    async with scripted(answer_all) as server:
        client = Client()
        await get(client, server.url())
        await client.close()
    assert http1._tls_context.cache_info().currsize == 0


@run
async def test_tls_is_verified_and_then_spoken(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    async with scripted(answer_all, tls=server_tls) as server:
        untrusting = Client()
        with pytest.raises(ConnectError):  # the system's CAs don't know this certificate
            await get(untrusting, server.url())
        await untrusting.close()
        client = Client(tls=ssl.create_default_context(cafile=str(cert)))
        assert (await get(client, server.url())).body == b"hello"
        assert (await get(client, server.url())).body == b"hello"
        await client.close()
    assert server.connections == 1  # one kept-alive; a failed handshake never reaches it


@run
async def test_close_waits_for_its_sockets() -> None:
    async with scripted(answer_all) as server:
        client = Client()
        await asyncio.gather(*(get(client, server.url()) for _ in range(4)))
        await client.close()
        await asyncio.sleep(0.05)
        assert server.client_closed == server.connections


@run
async def test_a_slow_reader_pauses_the_socket_and_still_gets_every_byte() -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB: well past the buffer's high-water mark

    async def big(conn: Conn) -> None:
        while await conn.read_request() is not None:
            await conn.send(response(payload))

    async with scripted(big) as server:
        client = Client()
        stream = await open_stream(client, server.url())
        received = []
        async for piece in stream:
            received.append(piece)
            await asyncio.sleep(0.002)
        assert b"".join(received) == payload
        assert max(map(len, received)) <= 512 * 1024  # high-water mark plus one socket read
        stream = await open_stream(client, server.url())  # the same connection, reused
        await anext(stream)
        stream.close()  # stopped early: that one is closed
        assert (await get(client, server.url())).body == payload
        await client.close()
    assert server.connections == 2


@run
async def test_a_server_that_hangs_up_at_once_is_a_protocol_error() -> None:
    async def hang_up(conn: Conn) -> None:
        return

    async with scripted(hang_up) as server:
        client = Client()
        for _ in range(3):
            with pytest.raises(ProtocolError):
                await get(client, server.url(), total=2)
            await asyncio.sleep(0.01)  # and once with the server's FIN already in
        await client.close()


@run
async def test_endless_response_headers_are_refused_at_the_cap() -> None:
    async def endless_headers(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\n")
        for i in range(10_000):
            await conn.send(b"x-filler-%d: %s\r\n" % (i, b"y" * 100))

    async with scripted(endless_headers) as server:
        client = Client(max_header_bytes=16 * 1024)
        with pytest.raises(ProtocolError, match="more than 16384 bytes of headers"):
            await get(client, server.url())
        with pytest.raises(ProtocolError, match="more than 16384 bytes of headers"):
            await open_stream(client, server.url())
        await client.close()


@run
async def test_a_whole_body_past_the_cap_is_refused_but_a_stream_is_not_held() -> None:
    async with scripted(lambda conn: answer_all(conn, b"x" * 100_000)) as server:
        client = Client(max_body_bytes=10_000)
        with pytest.raises(ProtocolError, match="body larger than 10000 bytes"):
            await get(client, server.url())
        stream = await open_stream(client, server.url())
        assert len(await stream.read()) == 100_000  # relayed chunk by chunk, never held
        stream = await open_stream(client, server.url())
        assert len(await stream.read(limit=1000)) == 1000  # an error body: its first bytes
        await client.close()


@pytest.mark.parametrize(
    "url",
    ["http://a..b/v1", "http://" + "x" * 64 + ".example/v1", "ftp://example.com/v1",
     "http://[::1/v1", "http://example.com:99999/v1"],
)  # fmt: skip
@run
async def test_a_bad_upstream_url_is_a_connect_error(url: str) -> None:
    client = Client()
    with pytest.raises(ConnectError):
        await get(client, url)
    await client.close()


@run
async def test_a_header_that_is_not_latin_1_is_a_connect_error() -> None:
    async with scripted(answer_all) as server:
        client = Client()
        with pytest.raises(ConnectError, match="latin-1"):
            await client.request(
                "POST", server.url(), b"{}", {"x-key": "sk-\u2603"},
                connect_timeout=1, total_timeout=5,
            )  # fmt: skip
        await client.close()
