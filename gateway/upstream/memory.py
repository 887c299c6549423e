"""An in-memory transport beside the real ones (as httpx's MockTransport is): a function
answers each call, so retries, fallback and the error each failure becomes are tested in
microseconds, without sockets; the socket tests prove the real transports behave the same."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.policy.compiled import ModelTarget
from gateway.upstream.base import Reply, UpstreamError

# What the function answers: a reply's data, stream chunks, or the failure to raise.
Answer = dict[str, Any] | list[bytes] | UpstreamError
Handler = Callable[[ModelTarget, dict[str, Any]], Answer]


@dataclass
class MemoryTransport:
    handler: Handler
    calls: list[str] = field(default_factory=list)  # the model of each call, in order

    def _answer(self, target: ModelTarget, body: dict[str, Any]) -> Answer:
        self.calls.append(target.name)
        answer = self.handler(target, body)
        if isinstance(answer, UpstreamError):
            raise answer
        return answer

    async def complete(self, target: ModelTarget, body: dict[str, Any]) -> Reply:
        data = self._answer(target, body)
        assert isinstance(data, dict), "a completion answers with a dict"
        return Reply(orjson.dumps(data), data)

    async def embed(self, target: ModelTarget, body: dict[str, Any]) -> Reply:
        return await self.complete(target, body)

    async def stream(
        self, target: ModelTarget, body: dict[str, Any], responses: bool = False
    ) -> AsyncIterator[bytes]:
        chunks = self._answer(target, body)
        assert isinstance(chunks, list), "a stream answers with a list of chunks"
        for chunk in chunks:
            yield chunk

    async def close(self) -> None:
        return None
