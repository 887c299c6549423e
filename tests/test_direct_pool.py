"""The direct path's connection limit is the model's `max_connections`, not a fixed cap."""

from __future__ import annotations

import asyncio

from gateway.policy.compiled import ModelTarget
from gateway.policy.model import ModelSpec
from gateway.upstream.direct import DirectTransport
from tests.scripted_server import Conn, response, run, scripted

ANSWER = b'{"choices": [{"message": {"role": "assistant", "content": "ok"}}]}'
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


async def slow(conn: Conn) -> None:
    while await conn.read_request() is not None:
        await asyncio.sleep(0.05)
        await conn.send(response(ANSWER))


def target(url: str, **limit: int) -> ModelTarget:
    spec = ModelSpec.model_validate({"provider": "openai", "model": "m", "api_base": url, **limit})
    return ModelTarget("m", spec, None, {})


async def most_open(concurrent: int, **limit: int) -> int:
    async with scripted(slow) as server:
        transport = DirectTransport()
        model = target(server.url("/v1"), **limit)
        try:
            replies = await asyncio.gather(
                *(transport.complete(model, BODY) for _ in range(concurrent))
            )
        finally:
            await transport.close()
    assert all(reply.data["choices"] for reply in replies)
    return server.most_open


@run
async def test_a_model_s_limit_bounds_its_connections() -> None:
    assert await most_open(6, max_connections=2) == 2


@run
async def test_the_default_limit_lets_every_request_have_its_own_connection() -> None:
    assert await most_open(40) == 40
