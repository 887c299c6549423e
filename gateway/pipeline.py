"""The request path, top to bottom, for the endpoints that call a model: plan the call
(gateway/plan.py: parse, check, identify, decide, select), admit it under its limits, call the
upstream with failover and write the reply, whole here or streamed (gateway/streaming.py), then
record what follows it, once for both: timing, verdict, ledger, usage.

Chat completions, legacy completions and the Responses API are one chat completion each, told
in their own shape; embeddings take the short way (one model, no verdict). The HTTP layer
(gateway/api/openai.py) has checked the key and read the body; it hands over the Request and
the ASGI `send` the reply is written to, and ends the exchange (limits released, 499 counted).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import orjson

from gateway.calibration import translate_completion
from gateway.classify import Verdict, classify_completion
from gateway.completions import TextChunks, plan_completion
from gateway.completions import from_chat as text_completion
from gateway.embeddings import plan_embeddings
from gateway.exchange import Exchange, Headers, Send, send_response
from gateway.metrics import NONE
from gateway.plan import Call, Request, plan_chat
from gateway.policy.compiled import ModelTarget
from gateway.responses.events import NativeEvents, ResponseEvents
from gateway.responses.store import ResponseStore
from gateway.responses.translate import as_completion
from gateway.responses.turn import plan_turn
from gateway.runtime import Runtime
from gateway.streaming import Reshape, relay

Render = Callable[[dict[str, Any]], Awaitable[bytes]]


class Pipeline:
    """Each endpoint's way along the path; `stored` keeps the Responses API's responses (for
    previous_response_id and GET /v1/responses/{id})."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.stored = ResponseStore(
            rt.store, rt.settings.ledger_retention_s, rt.metrics.responses_unstored
        )

    def chat(self, ex: Exchange, send: Send, request: Request) -> Coroutine[Any, Any, None]:
        """POST /v1/chat/completions. A plain function handing back the reply's coroutine,
        which admits the call: a coroutine of its own would be one more object each request
        in flight holds (docs/bench.md, "Fewer coroutines a whole answer")."""
        call = plan_chat(self.rt, ex.request_id, request)
        return self._stream(ex, send, call) if call.stream else self._whole(ex, send, call)

    async def completion(self, ex: Exchange, send: Send, request: Request) -> None:
        """POST /v1/completions (legacy), served as a chat completion."""
        call, model = plan_completion(self.rt, ex.request_id, request)
        if call.stream:
            await self._stream(ex, send, call, TextChunks(model))
            return

        async def render(completion: dict[str, Any]) -> bytes:
            return orjson.dumps(text_completion(completion, model))

        await self._whole(ex, send, call, render)

    async def response(self, ex: Exchange, send: Send, request: Request) -> None:
        """POST /v1/responses, translated to a chat completion and back, or passed through to
        models that serve it (turn.native)."""
        turn = await plan_turn(self.rt, self.stored, ex.request_id, request)
        call = turn.call
        await self._admit(ex, call)
        if call.stream:
            events = (
                NativeEvents(turn.response_id, turn.request, turn.native_body())
                if turn.native
                else ResponseEvents(turn.response_id, turn.request)
            )
            await self._stream(ex, send, call, events, admit=False)
            if events.finished:
                await turn.keep(events.response)
        elif turn.native:
            await self._whole(ex, send, call, turn.render_native, turn.native_body(), admit=False)
        else:
            await self._whole(ex, send, call, turn.render, admit=False)

    async def embedding(self, ex: Exchange, send: Send, request: Request) -> None:
        """POST /v1/embeddings: one model and its retries, no fallback, no verdict."""
        rt = self.rt
        call = plan_embeddings(rt, ex.request_id, request)
        ex.planned(call, call.workflow, NONE, False)
        ex.model = call.target.name
        ex.ticket = await rt.limits.admit(call)
        reply = await rt.failover.embed(call.target, call.body)
        ex.stop_watching()
        await send_response(send, 200, reply.body, call.headers())
        rt.used(call.answered(), call.target, reply.data)

    async def _admit(self, ex: Exchange, call: Call) -> None:
        ex.planned(call, call.identity.workflow, call.identity.route, call.stream)
        ex.ticket = await self.rt.limits.admit(call)  # once, before the upstream is called

    async def _whole(
        self,
        ex: Exchange,
        send: Send,
        call: Call,
        render: Render | None = None,
        native: dict[str, Any] | None = None,
        admit: bool = True,
    ) -> None:
        """A non-streamed completion, admitted first unless it has been (`admit`). `render`
        turns the reply into another endpoint's body (a Response); with a `native` Responses
        body, the upstream is asked through the Responses API instead."""
        if admit:
            await self._admit(ex, call)
        rt = self.rt
        upstream_started = time.perf_counter()
        route, candidates = call.identity.route, call.candidates
        if native is None:
            target, reply = await rt.failover.complete(route, candidates, call.body)
            completion = reply.data
        else:
            target, reply = await rt.failover.respond(route, candidates, native)
            completion = as_completion(reply.data)
        upstream_s = time.perf_counter() - upstream_started
        verdict = classify_completion(completion)  # before translation hides the tools
        body = reply.body
        if call.contract == "translate" and translate_completion(completion):
            body = orjson.dumps(completion)
        if render is not None:
            body = await render(reply.data)
        ex.stop_watching()
        await send_response(
            send, 200, body, [*call.headers(target.name), *verdict_headers(verdict)]
        )
        overhead_s = time.perf_counter() - ex.started - upstream_s
        after_upstream(self.rt, call, target, completion, verdict, overhead_s)
        ex.model = target.name

    async def _stream(
        self,
        ex: Exchange,
        send: Send,
        call: Call,
        reshape: Reshape | NativeEvents | None = None,
        admit: bool = True,
    ) -> None:
        """A streamed completion, admitted first unless it has been (`admit`): failover until
        its first byte, then passed through."""
        if admit:
            await self._admit(ex, call)
        streamed = await relay(self.rt, call, ex, send, reshape)
        target, first_token_s = streamed.target, streamed.first_token_s
        after_upstream(
            self.rt, call, target, streamed.completion, None, streamed.overhead_s, first_token_s
        )
        ex.model, ex.status = target.name, streamed.status


def after_upstream(
    rt: Runtime,
    call: Call,
    target: ModelTarget,
    completion: dict[str, Any] | None,
    verdict: Verdict | None,
    overhead_s: float,
    first_token_s: float | None = None,
) -> None:
    """What follows the upstream call, once for whole and streamed replies: the timing; then,
    for a reply the client got whole (`completion`), its verdict (metrics and ledger, judged
    here unless given) and its usage."""
    answered = call.answered(target.name)
    rt.metrics.timing(answered.workflow, answered.route, target.name, overhead_s, first_token_s)
    if completion is None:  # the stream broke or the client left: nothing was answered
        return
    rt.answered(answered, verdict if verdict is not None else classify_completion(completion))
    rt.used(answered, target, completion)


def verdict_headers(verdict: Verdict) -> Headers:
    return [
        (b"x-floorgate-abstained", b"true" if verdict.abstained else b"false"),
        (b"x-floorgate-self-flagged", b"true" if verdict.flagged else b"false"),
        (b"x-floorgate-verdict-source", verdict.source.encode()),
    ]
