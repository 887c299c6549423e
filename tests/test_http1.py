"""The direct path's HTTP/1.1 client against real loopback servers: the fake upstream, and
scripted servers for the edge cases (framing, truncation, stale keep-alive, timeouts, TLS)."""

from __future__ import annotations

import asyncio
import gc
import time

import orjson
import pytest

from gateway.upstream.http1 import Client, ConnectError, ProtocolError, Timeout
from tests.fake_upstream import FakeUpstream
from tests.scripted_server import (
    CHUNKED_HEAD,
    JSON,
    LAST_CHUNK,
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


def chat(model: str, stream: bool = False) -> bytes:
    messages = [{"role": "user", "content": "hi"}]
    return orjson.dumps({"model": model, "messages": messages, "stream": stream})


@run
async def test_whole_and_streamed_answers_from_the_fake_upstream(upstream: FakeUpstream) -> None:
    url = upstream.base_url + "/chat/completions"
    client = Client()
    try:
        resp = await client.request(
            "POST", url, chat("ok"), JSON, connect_timeout=1, total_timeout=5
        )
        assert resp.status == 200
        assert orjson.loads(resp.body)["choices"][0]["message"]["content"] == "fake answer"
        limited = await client.request(
            "POST", url, chat("status:429"), JSON, connect_timeout=1, total_timeout=5
        )
        assert (limited.status, limited.header(b"retry-after")) == (429, b"1")
        stream = await client.stream(
            "POST", url, chat("ok", True), JSON, connect_timeout=1, total_timeout=5, read_timeout=5
        )
        assert stream.header(b"content-type") == b"text/event-stream"
        chunks = [c async for c in stream]
        assert len(chunks) > 2, "chunks are handed over as they arrive, not buffered"
        assert b"".join(chunks).endswith(b"data: [DONE]\n\n")
    finally:
        await client.close()


@run
async def test_a_cut_stream_raises_after_the_chunks_that_arrived(upstream: FakeUpstream) -> None:
    client = Client()
    received: list[bytes] = []
    try:
        stream = await client.stream(
            "POST",
            upstream.base_url + "/chat/completions",
            chat("cut", True),
            JSON,
            connect_timeout=1,
            total_timeout=5,
            read_timeout=5,
        )
        with pytest.raises(ProtocolError):
            async for piece in stream:
                received.append(piece)
    finally:
        await client.close()
    assert b"data: " in b"".join(received)


@run
async def test_the_request_on_the_wire() -> None:
    async with scripted(answer_all) as server:
        client = Client()
        try:
            headers = {"authorization": "Bearer k", "content-type": "application/json"}
            await client.request(
                "POST", server.url() + "?a=1", b'{"x":1}', headers, connect_timeout=1,
                total_timeout=5,
            )  # fmt: skip
        finally:
            await client.close()
    head, body = server.requests[0].split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions?a=1 HTTP/1.1"
    assert f"host: 127.0.0.1:{server.port}".encode() in lines
    assert {b"authorization: Bearer k", b"content-length: 7"} <= set(lines)
    assert body == b'{"x":1}'


@run
async def test_a_header_value_cannot_smuggle_another_header() -> None:
    client = Client()
    with pytest.raises(ConnectError):  # the client's own error tree, not a ValueError
        await client.request(
            "POST", "http://127.0.0.1:1/", b"", {"x-key": "k\r\nx-evil: 1"}, connect_timeout=1,
            total_timeout=1,
        )  # fmt: skip
    await client.close()


@run
async def test_keep_alive_reuses_one_connection_and_close_ends_it() -> None:
    async with scripted(answer_all) as server:
        client = Client()
        for _ in range(5):
            assert (await get(client, server.url())).body == b"hello"
        stream = await open_stream(client, server.url())
        assert await stream.read() == b"hello"
        assert (await get(client, server.url())).status == 200
        await client.close()
        await asyncio.sleep(0.05)
    assert server.connections == 1
    assert server.client_closed == 1


@run
async def test_the_pool_never_opens_more_than_its_limit() -> None:
    async def slow(conn: Conn) -> None:
        while await conn.read_request() is not None:
            await asyncio.sleep(0.02)
            await conn.send(response())

    async with scripted(slow) as server:
        client = Client(max_connections=2)
        try:
            replies = await asyncio.gather(*(get(client, server.url()) for _ in range(8)))
        finally:
            await client.close()
    assert [r.status for r in replies] == [200] * 8
    assert server.connections == 2 and server.most_open == 2


@run
async def test_waiting_for_a_free_connection_times_out() -> None:
    async with scripted(hang) as server:
        client = Client(max_connections=1)
        first = asyncio.create_task(get(client, server.url(), total=10))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(Timeout):
            await get(client, server.url(), total=0.2)
        assert time.monotonic() - started < 1
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await client.close()


@run
async def test_chunked_and_content_length_bodies() -> None:
    async def both(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(CHUNKED_HEAD + chunk(b"data: a\n\n"))
        await asyncio.sleep(0.05)
        await conn.send(chunk(b"data: b\n\n") + LAST_CHUNK)
        await conn.read_request()
        await conn.send(response(b'{"ok":true}', extra=b"content-type: application/json\r\n"))
        await answer_all(conn)

    async with scripted(both) as server:
        client = Client()
        stream = await open_stream(client, server.url())
        assert [c async for c in stream] == [b"data: a\n\n", b"data: b\n\n"]
        resp = await get(client, server.url())
        assert (resp.body, resp.header(b"content-type")) == (b'{"ok":true}', b"application/json")
        await client.close()
    assert server.connections == 1


CLOSING = {
    "body until EOF": b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello world",
    "content-length, connection left open": response(
        b"hello world", extra=b"connection: close\r\n"
    ),
    "HTTP/1.0": b"HTTP/1.0 200 OK\r\ncontent-length: 11\r\n\r\nhello world",
}


@pytest.mark.parametrize("reply", CLOSING.values(), ids=CLOSING.keys())
@run
async def test_a_connection_the_server_means_to_close_is_not_reused(reply: bytes) -> None:
    async def answer_once(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(reply[:20])
        await conn.send(reply[20:])
        if b"content-length" in reply:
            await asyncio.sleep(3600)  # a reused connection would wait here forever

    async with scripted(answer_once) as server:
        client = Client()
        assert (await get(client, server.url(), total=2)).body == b"hello world"
        assert (await get(client, server.url(), total=2)).body == b"hello world"
        await client.close()
    assert server.connections == 2


@run
async def test_an_interim_response_is_skipped() -> None:
    async def early_hints(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n")
        await asyncio.sleep(0.02)
        await conn.send(response(b"final"))

    async with scripted(early_hints) as server:
        client = Client()
        resp = await get(client, server.url())
        await client.close()
    assert (resp.status, resp.body, resp.header(b"link")) == (200, b"final", None)


@run
async def test_a_repeated_header_reads_as_its_first_and_the_headers_are_not_tracked() -> None:
    """A held stream keeps its response's headers: bytes in a dict, which the collector never
    tracks (docs/bench.md, issue 18); a name sent twice reads as its first value."""

    async def repeated(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(response(b"ok", extra=b"Retry-After: 1\r\nretry-after: 9\r\n"))

    async with scripted(repeated) as server:
        client = Client()
        resp = await get(client, server.url())
        await client.close()
    assert (resp.header(b"retry-after"), resp.header(b"content-length")) == (b"1", b"2")
    assert not gc.is_tracked(resp.headers)


@pytest.mark.parametrize("delay", [0, 0.02], ids=["with the response", "once idle"])
@run
async def test_a_server_out_of_step_is_not_trusted_with_another_request(delay: float) -> None:
    async def unasked(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(response(b"one"))
        if conn.index == 0:
            await asyncio.sleep(delay)
            await conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")  # body to follow
        await conn.read_request()
        await conn.send(b"WRONG" + response(b"two"))

    async with scripted(unasked) as server:
        client = Client()
        assert (await get(client, server.url())).body == b"one"
        await asyncio.sleep(0.05)
        assert (await get(client, server.url())).body == b"one"
        await client.close()
    assert server.connections == 2


TRUNCATED = {
    "chunked without its last chunk": CHUNKED_HEAD + chunk(b"data: a\n\n"),
    "Chunked, any case": CHUNKED_HEAD.replace(b"chunked", b"Chunked") + chunk(b"data: a\n\n"),
    "shorter than content-length": b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\ndata: a\n\n",
    "head only": b"HTTP/1.1 200 OK\r\ncontent-le",
}


@pytest.mark.parametrize("reply", TRUNCATED.values(), ids=TRUNCATED.keys())
@run
async def test_a_truncated_response_never_looks_complete(reply: bytes) -> None:
    async def truncate(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(reply)

    async with scripted(truncate) as server:
        client = Client()
        with pytest.raises(ProtocolError):
            await get(client, server.url())
        if b"data" in reply:
            stream = await open_stream(client, server.url())
            assert await anext(stream) == b"data: a\n\n"
            with pytest.raises(ProtocolError):
                await anext(stream)
        await client.close()


BAD = {  # the reply, and what the error says
    "not http": (b"SSH-2.0-OpenSSH\r\n\r\n", "malformed"),
    "encoded body": (response(b"\x1f\x8b", extra=b"content-encoding: gzip\r\n"), "encoded"),
    "both framings": (
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
        "malformed",
    ),
}


@pytest.mark.parametrize(("reply", "says"), BAD.values(), ids=BAD.keys())
@run
async def test_a_malformed_response_is_a_protocol_error(reply: bytes, says: str) -> None:
    async def bad(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(reply)
        await asyncio.sleep(3600)

    async with scripted(bad) as server:
        client = Client()
        with pytest.raises(ProtocolError, match=says):
            await get(client, server.url())
        await client.close()
