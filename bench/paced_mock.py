"""The held streams' mock upstream: the LLM mock's answers, each chunk on its own stream's clock.

nginx's echo module (bench/llm_mock.py) sleeps `chunk_ms` after each chunk it sends, on a timer
set from its cached clock, which it reads once a loop iteration, whole milliseconds. So every
stream whose timer fired in one iteration gets the same next deadline, and keeps it: streams
that meet never part again, and at 2,000 held streams 200 ms apart they end in clumps of up to
~50 that send together (docs/bench.md, "The mock's clumps"). Here a stream's chunk k is due at
its request's arrival + `ttft_ms` + k * `chunk_ms`, whatever happened to the chunk before it, so
streams keep the phases their arrivals gave them. The same bytes, framing and paths as nginx's:

    python -m bench.paced_mock --port P [--ttft-ms 300 --chunk-ms 200 --chunks 100 --whole-ms 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
from collections.abc import Callable

import httptools
import uvloop

from bench.llm_mock import STREAM_PATH, WHOLE_PATH, Shape, event
from bench.mock import completion, stream_chunk

STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: keep-alive\r\nCache-Control: no-cache\r\n\r\n"
)
LAST_CHUNK = b"0\r\n\r\n"


def chunked(text: str) -> bytes:
    data = text.encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


def plain(status: str, content_type: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: keep-alive\r\n\r\n" + body


class Answers:
    """Every write a stream makes, framed once at start-up, and the whole answer."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        first = event(stream_chunk({"role": "assistant", "content": ""}, None))
        texts = [event(stream_chunk({"content": f"word{i} "}, None)) for i in range(shape.chunks)]
        texts[0] = first + texts[0]
        self.chunks = [chunked(text) for text in texts]
        self.chunks[0] = STREAM_HEAD + self.chunks[0]
        tail = event(stream_chunk({}, "stop")) + "data: [DONE]\n\n"
        self.tail = chunked(tail) + LAST_CHUNK
        whole = json.dumps(completion(), separators=(",", ":")).encode()
        self.whole = plain("200 OK", "application/json", whole)
        self.health = plain("200 OK", "text/plain", b"ok")
        missing = b'{"error": {"message": "mock: no such path", "type": "not_found"}}'
        self.missing = plain("404 Not Found", "application/json", missing)


class Exchange(asyncio.Protocol):
    """One client connection, one request at a time (the gateway's pool does not pipeline)."""

    def __init__(self, answers: Answers) -> None:
        self._answers = answers
        self._loop = asyncio.get_running_loop()
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._timer: asyncio.TimerHandle | None = None
        self._start = 0.0
        self._next = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._parser, self._transport = None, None, None  # no cycle left to collect

    def data_received(self, data: bytes) -> None:
        if self._parser is None:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._close()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_message_complete(self) -> None:
        path, self._url = self._url.split(b"?", 1)[0].decode(), b""
        shape, self._start, self._next = self._answers.shape, self._loop.time(), 0
        if path == STREAM_PATH:
            self._at(shape.ttft_ms, self._chunk)
        elif path == WHOLE_PATH:
            self._at(shape.whole_ms, lambda: self._write(self._answers.whole))
        elif path == "/healthz":
            self._write(self._answers.health)
        else:
            self._write(self._answers.missing)

    def _at(self, offset_ms: float, callback: Callable[[], None]) -> None:
        """`callback` at this request's arrival + `offset_ms`, on the loop's clock."""
        self._timer = self._loop.call_at(self._start + offset_ms / 1000, callback)

    def _chunk(self) -> None:
        answers, index = self._answers, self._next
        self._write(answers.chunks[index])
        self._next = index + 1
        if self._next < len(answers.chunks):
            shape = answers.shape
            self._at(shape.ttft_ms + self._next * shape.chunk_ms, self._chunk)
        else:
            self._timer = None
            self._write(answers.tail)

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def serve(port: int, shape: Shape) -> None:
    answers = Answers(shape)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Exchange(answers), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    gc.freeze()  # what start-up made is never walked
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paced_mock", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=int, default=Shape.ttft_ms)
    parser.add_argument("--chunk-ms", type=int, default=Shape.chunk_ms)
    parser.add_argument("--chunks", type=int, default=Shape.chunks)
    parser.add_argument("--whole-ms", type=int, default=Shape.whole_ms)
    args = parser.parse_args(argv)
    shape = Shape(args.ttft_ms, args.chunk_ms, args.chunks, args.whole_ms)
    uvloop.run(serve(args.port, shape))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
