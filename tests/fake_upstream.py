"""A fake OpenAI-compatible upstream: a real aiohttp server on loopback, told what to do by
the request's `model`:

  ok (or anything unknown)  a fixed answer ("fake answer", or the text after SAY: in the
                            last user message); streamed when the request asks
  tool                      a call to the request's first tool
  refusal                   content null, `refusal` set
  filtered                  finish_reason content_filter
  status:<code>             that HTTP status with an OpenAI error body (429: Retry-After: 1)
  flaky:<k>                 500 for the first k requests, then ok
  hang                      never answers (when its client hangs up is kept in `.hangups`)
  slow:<s>                  answers after s seconds
  malformed                 200 with invalid JSON
  cut                       a stream (or body) cut off mid-way, with no [DONE]
  midfail                   like cut, after two content chunks
  cut:<n>                   a stream cut off after its first n events (0: none at all)
  stall:<n>                 a stream that sends its first n events, then nothing, ever
  hold:<n>                  like stall, but a comment every 20 ms until the client hangs up
                            (when, by perf_counter(), is kept in `.hangups`; when each
                            comment went, in `.held`)
  garbled:<n>               a stream whose event n+1 is not JSON (its first n are fine)
  toolong                   400 context_length_exceeded, param messages (as OpenAI says it)
  traceback                 500 whose message is a Python traceback with file paths
  toolonce                  like tool until the last message is a tool result, then ok
  llamatools                a tool call streamed as llama-cpp-python does: id and name
                            repeated in every delta; never a usage chunk
  nousage                   like ok, but never a usage chunk, even when asked
  retryafter:<value>        429 with that Retry-After header (inf, 0.4, ...)
  inband_error[:<n>]        a 200 stream whose event n+1 is an error event echoing the
                            request's bearer key (as some providers do); n is 1 (the role
                            chunk first) unless given, 0 makes the error its first event;
                            a request that does not stream is answered as by ok
  echokey                   401 whose message echoes the key: in part, and base64 as in a
                            Basic authorization header
  big:<mib>                 a 200 JSON body of that many MiB, sent in 1 MiB writes with no
                            Content-Length (how much went out before the client hung up is
                            kept in `.big_sent`);  bigerror:<mib>  the same as a 500

A request field `fake_framing` (a model's `params`) frames the stream's events with `crlf`
(as sse-starlette does), `cr`, or `nospace` (`data:{...}`, valid SSE) instead of LF;
`fake_end_delay` (seconds) holds the body's end back that long after `[DONE]`;
`fake_event_gap` (seconds) is the pause between a stream's events (else 10 ms);
`fake_keep_alive` (n) sends n keep-alive comments (`: OPENROUTER PROCESSING`, `: ping`), 20 ms
apart, before any 200 stream's first event: with `cut:0` the connection drops after them, with
`inband_error:0` an error event follows them, with `hold:0` they go on until the client leaves.
Each recorded request carries `peer`, the client's port: one per connection.

POST /v1/responses answers "native answer" as a Response (for models that pass it through),
streamed as typed events when asked; streamed, `cut` stops after the first delta, `failed`
reports an `error` and `response.failed` there, and `hang` never gets past its first event;
`error` sends only an `error` event, and `drop` drops the connection before any event.
POST /v1/embeddings answers a 3-dimensional vector per input, and honours status:<code>,
flaky:<k>, hang, slow:<s> and malformed the same way.

GET /_requests lists the last 200 requests it received (path, headers, body);
DELETE /_requests forgets them and resets the flaky counters.
Run it alone with `python tests/fake_upstream.py --port 0 --port-file PATH`: the chosen port
is written to PATH once the server listens.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

FAKE_ANSWER = "fake answer"
BROKEN = ("stall", "hold", "garbled")
PLAIN = {"llamatools": "tool", "inband_error": "ok"}  # stream behaviours, asked for no stream
CUT_AFTER = {"cut": 2, "midfail": 3}  # chunks sent before the cut: the role chunk, then content
_ids = itertools.count(1)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return str(message["content"])
    return ""


def _answer_text(body: dict[str, Any], default: str | None = FAKE_ANSWER) -> str | None:
    text = _last_user_text(body).split("ARGS:", 1)[0]
    return text.split("SAY:", 1)[1].strip() if "SAY:" in text else default


def _message(behaviour: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    if behaviour == "toolonce":  # as tool until a tool result arrives, then as ok
        last = (body.get("messages") or [{}])[-1]
        behaviour = "ok" if last.get("role") == "tool" else "tool"
    if behaviour == "tool":  # tool[:<name>]: call that tool (else the first), ARGS: <json>
        # Any tools list a client may send (a fuzzer's too): the first function's name, else none.
        tools = body.get("tools") if isinstance(body.get("tools"), list) else []
        functions = [t.get("function") for t in tools if isinstance(t, dict)]
        names = [f["name"] for f in functions if isinstance(f, dict) and "name" in f]
        name = str(body.get("model", "")).partition(":")[2] or str(names[0] if names else "none")
        text = _last_user_text(body)
        args = text.split("ARGS:", 1)[1].strip() if "ARGS:" in text else '{"x": 1}'
        call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}
        content = _answer_text(body, default=None)
        return {"role": "assistant", "content": content, "tool_calls": [call]}, "tool_calls"
    if behaviour == "refusal":
        refusal = "I can't help with that."
        return {"role": "assistant", "content": None, "refusal": refusal}, "stop"
    finish = "content_filter" if behaviour == "filtered" else "stop"
    return {"role": "assistant", "content": _answer_text(body)}, finish


def _envelope(body: dict[str, Any], obj: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake{next(_ids)}",
        "object": obj,
        "created": int(time.time()),
        "model": body.get("model", "ok"),
        "system_fingerprint": None,
    }


USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
TRACEBACK = """Traceback (most recent call last):
  File "/home/someone/other-checkout/llama_cpp/server/app.py", line 412, in create_chat
    return await run(body)
  File "/usr/lib/python3.11/site-packages/llama_cpp/llama_chat_format.py", line 88, in run
    raise ValueError(kind)
ValueError: response_format type json_schema is not supported"""
ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "toolong": (
        400,
        {
            "message": "This model's maximum context length is 2048 tokens. However, your "
            "messages resulted in 3000 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        },
    ),
    "traceback": (500, {"message": TRACEBACK, "type": "internal_server_error", "code": None}),
}


def completion(behaviour: str, body: dict[str, Any]) -> dict[str, Any]:
    message, finish = _message(behaviour, body)
    n = int(body.get("n") or 1)
    choices = [{"index": i, "message": message, "finish_reason": finish} for i in range(n)]
    return {**_envelope(body, "chat.completion"), "choices": choices, "usage": USAGE}


def chunks(behaviour: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    if behaviour == "llamatools":
        return _llama_tool_chunks(body)
    message, finish = _message(behaviour, body)
    base = _envelope(body, "chat.completion.chunk")

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    out = [chunk({"role": "assistant", "content": ""})]
    if message.get("content") and message.get("tool_calls"):
        out.append(chunk({"content": message["content"]}))
    if message.get("tool_calls"):
        call = message["tool_calls"][0]
        head = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
        arguments = {"index": 0, "function": {"arguments": call["function"]["arguments"]}}
        out.append(chunk({"tool_calls": [{"index": 0, **head}]}))  # name first, as OpenAI does
        out.append(chunk({"tool_calls": [arguments]}))
    elif message.get("refusal"):  # streamed word by word, as OpenAI does
        words = message["refusal"].split(" ")
        out += [chunk({"refusal": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    else:
        words = message["content"].split(" ")
        out += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    out.append(chunk({}, finish))
    if (body.get("stream_options") or {}).get("include_usage") and behaviour != "nousage":
        out.append({**base, "choices": [], "usage": USAGE})
    return out


def _llama_tool_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    message, _ = _message("tool", body)
    call = message["tool_calls"][0]
    base = _envelope(body, "chat.completion.chunk")
    arguments = call["function"]["arguments"]
    third = max(1, len(arguments) // 3)
    pieces = [arguments[:third], arguments[third : 2 * third], arguments[2 * third :]]
    out = []
    for piece in pieces:
        function = {"name": call["function"]["name"], "arguments": piece}
        delta = {"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                 "function": function}]}  # fmt: skip
        out.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return out


class FakeUpstream:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.received: deque[dict[str, Any]] = deque(maxlen=200)
        self.seen = 0  # every request ever received: `received` keeps only the last 200
        self.counters: dict[str, int] = {}
        self.hangups: list[float] = []  # perf_counter() when a hanging or held call's client left
        self.held: list[float] = []  # perf_counter() when a held stream wrote each comment
        self.big_sent: list[int] = []  # bytes of each big:<mib> body written before it ended
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def since(self, seen: int) -> list[dict[str, Any]]:
        """The requests received after `self.seen` was `seen` (of the last 200)."""
        new = self.seen - seen
        return list(self.received)[-new:] if new else []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.record])
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/_requests", self.list_requests)
        app.router.add_delete("/_requests", self.forget)
        return app

    @web.middleware
    async def record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/_requests":
            self.seen += 1
            raw = await request.read()
            self.received.append(
                {
                    "path": request.path,
                    "headers": {str(k): v for k, v in request.headers.items()},
                    "body": orjson.loads(raw) if raw else None,
                    "peer": request.transport.get_extra_info("peername")[1]
                    if request.transport
                    else None,
                }
            )
        return await handler(request)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        behaviour, _, arg = str(body.get("model", "ok")).partition(":")
        if behaviour == "flaky":
            seen = self.counters[body["model"]] = self.counters.get(body["model"], 0) + 1
            behaviour = "status" if seen <= int(arg) else "ok"
            arg = "500"
        if behaviour in ("status", "retryafter"):
            return _error(int(arg)) if behaviour == "status" else _error(429, retry_after=arg)
        if behaviour in ERRORS:
            status, error = ERRORS[behaviour]
            return web.json_response({"error": error}, status=status)
        if behaviour == "hang":
            return await _until_hangup(request, self.hangups)
        await asyncio.sleep(float(arg) if behaviour == "slow" else 0)
        if behaviour == "malformed":
            return web.Response(body=b'{"id": "x", "choices": [', content_type="application/json")
        if not body.get("stream"):  # as a real server, never an event stream unasked
            behaviour = PLAIN.get(behaviour, behaviour)
        if behaviour in CUT_AFTER or (behaviour in BROKEN and body.get("stream")):
            return await _broken(request, body, behaviour, arg, (self.hangups, self.held))
        if behaviour in ("inband_error", "echokey", "big", "bigerror"):
            return await self._unusual(request, body, behaviour, arg)
        if body.get("stream"):
            return await _stream(request, chunks(behaviour, body), body)
        return web.Response(
            body=orjson.dumps(completion(behaviour, body)), content_type="application/json"
        )

    async def _unusual(
        self, request: web.Request, body: dict[str, Any], behaviour: str, arg: str
    ) -> web.StreamResponse:
        if behaviour in ("big", "bigerror"):
            status = 200 if behaviour == "big" else 500
            return await _big(request, status, int(arg) * 2**20, self.big_sent)
        return await _echo_key(request, body, behaviour, int(arg or 1))

    async def embeddings(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        behaviour, _, arg = str(body.get("model", "ok")).partition(":")
        if behaviour == "flaky":
            seen = self.counters[body["model"]] = self.counters.get(body["model"], 0) + 1
            behaviour, arg = ("status", "500") if seen <= int(arg) else ("ok", "")
        if behaviour == "status":
            return _error(int(arg))
        if behaviour in ("hang", "slow"):
            await asyncio.sleep(3600 if behaviour == "hang" else float(arg))
        if behaviour == "malformed":
            cut_short = b'{"object": "list", "data": ['
            return web.Response(body=cut_short, content_type="application/json")
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
            for i in range(len(items))
        ]
        usage = {"prompt_tokens": len(items), "total_tokens": len(items)}
        payload = {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        return web.Response(body=orjson.dumps(payload), content_type="application/json")

    async def responses(self, request: web.Request) -> web.StreamResponse:
        """The Responses API, as a native upstream serves it: "native answer"."""
        body = orjson.loads(await request.read())
        if body.get("stream"):
            return await _response_stream(request, body)
        return web.json_response(_response(body.get("model"), [_native_message()]))

    async def models(self, request: web.Request) -> web.Response:
        data = [{"id": "ok", "object": "model", "created": 0, "owned_by": "fake"}]
        return web.json_response({"object": "list", "data": data})

    async def list_requests(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(list(self.received)), content_type="application/json")

    async def forget(self, request: web.Request) -> web.Response:
        self.received.clear()
        self.counters.clear()
        return web.Response(status=204)

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake upstream did not start")

    def _run(self, ready: threading.Event) -> None:
        asyncio.run(self.serve(ready.set))

    async def serve(self, listening: Callable[[], None]) -> None:
        """Serve until stop(); call `listening` once the port is bound and `.port` is set."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self.port = runner.addresses[0][1]
        listening()
        await self._stopped.wait()
        await runner.cleanup()

    def stop_soon(self) -> None:
        """Ask the server to stop; safe from any thread."""
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)

    def stop(self) -> None:
        self.stop_soon()
        if self._thread is not None:
            self._thread.join(10)


def _error(status: int, retry_after: str = "1") -> web.Response:
    error = {
        "message": f"fake upstream error {status}",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    headers = {"retry-after": retry_after} if status == 429 else {}
    return web.Response(
        status=status,
        body=orjson.dumps({"error": error}),
        content_type="application/json",
        headers=headers,
    )


NATIVE_ANSWER = "native answer"


def _native_message(text: str = NATIVE_ANSWER) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": []}
    return {"id": "msg_up", "type": "message", "status": "completed", "role": "assistant",
            "content": [part]}  # fmt: skip


def _response(
    model: object, output: list[dict[str, Any]], status: str = "completed"
) -> dict[str, Any]:
    return {"id": "resp_upstream", "object": "response", "status": status,
            "created_at": int(time.time()), "model": model, "output": output, "error": None,
            "incomplete_details": None,
            "usage": {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6}}  # fmt: skip


def response_events(model: str) -> list[dict[str, Any]]:
    """A streamed Response as OpenAI sends it (typed events, no [DONE]); `failed` ends with an
    `error` event and `response.failed` after the first delta."""
    message = _native_message()
    where = {"item_id": "msg_up", "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response(model, [], "in_progress")},
        {"type": "response.in_progress", "response": _response(model, [], "in_progress")},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {**message, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", **where,
         "part": {"type": "output_text", "text": "", "annotations": []}},
    ]  # fmt: skip
    words = NATIVE_ANSWER.split(" ")
    deltas = [w if i == 0 else " " + w for i, w in enumerate(words)]
    events += [{"type": "response.output_text.delta", **where, "delta": d} for d in deltas]
    if model == "failed":
        error = {"code": "server_error", "message": "the model crashed"}
        failed = {**_response(model, [], "failed"), "error": error}
        events[-1:] = [{"type": "error", **error, "param": None},
                       {"type": "response.failed", "response": failed}]  # fmt: skip
        return [{**e, "sequence_number": i} for i, e in enumerate(events)]
    events += [
        {"type": "response.output_text.done", **where, "text": NATIVE_ANSWER},
        {"type": "response.content_part.done", **where, "part": message["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": _response(model, [message])},
    ]
    return [{**e, "sequence_number": i} for i, e in enumerate(events)]


async def _response_stream(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    model = str(body.get("model", "ok"))
    response = await _event_stream(request, body)
    if model in ("drop", "error"):  # a failure before the first event
        assert request.transport is not None
        if model == "drop":
            request.transport.abort()
            return response
        error = {"type": "error", "code": "server_error", "message": "overloaded", "param": None}
        await response.write(b"event: error\ndata: " + orjson.dumps(error) + b"\n\n")
        await response.write_eof()
        return response
    for event in response_events(model):
        await response.write(f"event: {event['type']}\n".encode() + b"data: "
                             + orjson.dumps(event) + b"\n\n")  # fmt: skip
        if model == "cut" and event["type"] == "response.output_text.delta":
            assert request.transport is not None
            request.transport.abort()  # gone after the first delta
            return response
        await asyncio.sleep(3600 if model == "hang" else 0.01)
    await response.write_eof()
    return response


FRAMINGS = {
    "crlf": (b"data: ", b"\r\n\r\n"),
    "cr": (b"data: ", b"\r\r"),
    "nospace": (b"data:", b"\n\n"),
}


KEEP_ALIVES = (b": OPENROUTER PROCESSING\n\n", b": ping\n\n")  # as OpenRouter, and others, send


async def _event_stream(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """A 200 event stream begun: its head, then `fake_keep_alive` comments, each written on its
    own 20 ms after the last (a read of its own for the client), as routers send them while the
    model has not started."""
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for n in range(int(body.get("fake_keep_alive") or 0)):
        await response.write(KEEP_ALIVES[n % len(KEEP_ALIVES)])
        await asyncio.sleep(0.02)
    return response


async def _stream(
    request: web.Request, events: list[dict[str, Any]], body: dict[str, Any]
) -> web.StreamResponse:
    prefix, end = FRAMINGS.get(body.get("fake_framing") or "", (b"data: ", b"\n\n"))
    response = await _event_stream(request, body)
    for event in events:
        await response.write(prefix + orjson.dumps(event) + end)
        await asyncio.sleep(float(body.get("fake_event_gap") or 0.01))
    await response.write(prefix + b"[DONE]" + end)
    await asyncio.sleep(float(body.get("fake_end_delay") or 0))
    await response.write_eof()
    return response


async def _echo_key(
    request: web.Request, body: dict[str, Any], behaviour: str, before: int
) -> web.StreamResponse:
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    if behaviour == "echokey":
        basic = base64.b64encode(f"user:{key}".encode()).decode()
        message = f"Key {key[3:15]}... refused (Authorization: Basic {basic})"
        return web.json_response({"error": {"message": message, "type": "auth"}}, status=401)
    error = {"error": {"message": f"Incorrect API key provided: {key}", "type": "auth_error"}}
    response = await _event_stream(request, body)
    for event in chunks("ok", body)[:before]:
        await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
        await asyncio.sleep(0.01)  # its own read: the error comes after the first bytes
    await response.write(b"data: " + orjson.dumps(error) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _big(request: web.Request, status: int, size: int, sent: list[int]) -> web.StreamResponse:
    response = web.StreamResponse(status=status, headers={"content-type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    written, piece = 0, b" " * 2**20  # JSON whitespace: only its size matters
    try:
        await response.write(b'{"error": {"message": "big", "x": "')
        while written < size:
            await response.write(piece)
            written += len(piece)
        await response.write(b'"}}')
        await response.write_eof()
    finally:
        sent.append(written)
    return response


async def _cut(request: web.Request, body: dict[str, Any], sent: int) -> web.StreamResponse:
    if body.get("stream"):
        response = await _event_stream(request, body)
        for event in chunks("ok", body)[:sent]:
            await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
    else:
        response = web.StreamResponse(headers={"content-type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"id": "chatcmpl-cut", "choices": [{"index": 0')
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.abort()  # gone without finish_reason, [DONE] or the rest of the body
    return response


async def _until_hangup(request: web.Request, hangups: list[float]) -> web.Response:
    """Answer nothing until the client hangs up (or the handler is cancelled); note when."""
    try:
        # aiohttp tells a handler of its client leaving by no event: the transport is polled
        while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    finally:
        hangups.append(time.perf_counter())
    return web.Response(status=499)  # nobody is left to read it


async def _broken(
    request: web.Request,
    body: dict[str, Any],
    behaviour: str,
    arg: str,
    noted: tuple[list[float], list[float]],  # (hangups, held)
) -> web.StreamResponse:
    if behaviour in CUT_AFTER:
        return await _cut(request, body, int(arg) if arg else CUT_AFTER[behaviour])
    response = await _event_stream(request, body)
    events, sent = chunks("ok", body), int(arg or 0)
    hangups, held = noted
    try:
        for event in events[:sent]:
            await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
            await asyncio.sleep(0.01)
        if behaviour == "stall":
            await asyncio.sleep(3600)
        while behaviour == "hold":  # until a write fails or aiohttp cancels the handler
            await asyncio.sleep(0.02)
            await response.write(b": still here\n\n")
            held.append(time.perf_counter())
    finally:
        if behaviour == "hold":
            hangups.append(time.perf_counter())
    await response.write(b'data: {"id": "chatcmpl-garbled", "choices": [\n\n')
    for event in events[sent:]:
        await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def write_port(path: Path, port: int) -> None:
    """Write the port atomically, so a reader never sees a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{port}\n")
    os.replace(tmp, path)


async def serve_until_signalled(fake: FakeUpstream, port_file: Path | None) -> None:
    def listening() -> None:
        if port_file is not None:
            write_port(port_file, fake.port)
        print(f"fake upstream listening on {fake.base_url}", file=sys.stderr, flush=True)

    serving = asyncio.create_task(fake.serve(listening))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, fake.stop_soon)
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the chosen port here")
    args = parser.parse_args()
    asyncio.run(serve_until_signalled(FakeUpstream(args.host, args.port), args.port_file))


if __name__ == "__main__":
    main()
