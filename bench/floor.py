"""The floor: the least a forwarding gateway can do, as a raw ASGI app with no features.

It parses the request JSON, names the upstream model, forwards it over one shared aiohttp
session and hands the response back (byte for byte; streams chunk by chunk as they arrive).
Whatever Floorgate costs above this is the price of its features, not of its stack.

    python bench/floor.py --port 8001 --upstream http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import orjson
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_HEADERS = {"content-type": "application/json"}


class Floor:
    """Forwards every POST to `upstream + path`; the upstream model is fixed."""

    def __init__(self, upstream: str, model: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.model = model
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http" and scope["method"] == "GET":
            await ready(send)
        elif scope["type"] == "http":
            await self.forward(scope, receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
                jar = aiohttp.DummyCookieJar()
                self.session = aiohttp.ClientSession(connector=connector, cookie_jar=jar)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.session is not None, "the lifespan startup opens the session"
        payload = orjson.loads(await read_body(receive))
        payload["model"] = self.model
        url = self.upstream + scope["path"]
        async with self.session.post(url, data=orjson.dumps(payload), headers=JSON_HEADERS) as resp:
            content_type = resp.headers.get("content-type", "application/json").encode()
            start = {"type": "http.response.start", "status": resp.status}
            await send({**start, "headers": [(b"content-type", content_type)]})
            if payload.get("stream"):
                async for chunk in resp.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            else:
                await send({"type": "http.response.body", "body": await resp.read()})


async def ready(send: Send) -> None:
    """Any GET (the bench asks /readyz) answers 200: the floor is ready once it listens."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL; the request path is appended")
    parser.add_argument("--model", default="mock")
    args = parser.parse_args()
    uvicorn.run(
        Floor(args.upstream, args.model),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        proxy_headers=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
