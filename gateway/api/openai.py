"""The OpenAI-compatible endpoints, as raw ASGI handlers: the hot path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import orjson

from gateway.api.asgi import header, read_body, send_response
from gateway.api.boundary import exchange
from gateway.calibration import translate_completion
from gateway.classify import Verdict, classify_completion
from gateway.completions import TextChunks, plan_completion
from gateway.completions import from_chat as text_completion
from gateway.embeddings import plan_embeddings
from gateway.errors import ModelNotFound
from gateway.exchange import Disconnect, Exchange, Headers, Receive, Scope, Send
from gateway.identify import ROUTE_COLON, ROUTE_PREFIX, WORKFLOW_COLON, WORKFLOW_PREFIX
from gateway.metrics import NONE
from gateway.pipeline import Call, after_upstream, plan_chat
from gateway.policy.compiled import Policy
from gateway.responses.events import NativeEvents, ResponseEvents
from gateway.responses.store import ResponseStore, owner_of
from gateway.responses.translate import as_completion
from gateway.responses.turn import plan_turn
from gateway.runtime import Runtime
from gateway.streaming import relay


class OpenAIEndpoints:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.stored = ResponseStore(
            rt.store, rt.settings.ledger_retention_s, rt.metrics.responses_unstored
        )

    async def chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._exchange(scope, receive, send, self._chat)

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._exchange(scope, receive, send, self._embed)

    async def responses(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._exchange(scope, receive, send, self._respond)

    async def completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._exchange(scope, receive, send, self._text_complete)

    async def _exchange(self, scope: Scope, receive: Receive, send: Send, work: Work) -> None:
        """What the POST endpoints share: the body, and the release of the request's share of
        its limits (errors, ids and metrics are the boundary's, gateway/api/boundary.py)."""
        ex = exchange(scope)
        # The key first: a caller without one must not make the gateway hold its body.
        self.rt.keys.authenticate(header(scope, b"authorization"))
        try:
            raw = await read_body(scope, receive, *self.rt.settings.body_limits)
            ex.disconnect = Disconnect(receive)
            await work(ex, scope, receive, send, raw)
        except asyncio.CancelledError:
            if ex.disconnect is None or not ex.disconnect.caused():
                raise
            ex.status = 499  # the client left before its answer: nothing was answered
        finally:
            if ex.disconnect is not None:
                ex.disconnect.stop()
            if ex.ticket is not None:
                self.rt.limits.release(ex.ticket)

    async def _chat(
        self, ex: Exchange, scope: Scope, receive: Receive, send: Send, raw: bytes
    ) -> None:
        rt = self.rt
        call = plan_chat(
            rt,
            ex.request_id,
            header(scope, b"authorization"),
            header(scope, b"x-floorgate-workflow"),
            raw,
        )
        ex.planned(call, call.identity.workflow, call.identity.route, call.stream)
        ex.ticket = await rt.limits.admit(call)  # once, before the upstream is called
        if call.stream:
            ex.model, ex.status = await relay(rt, call, ex, send)
        else:
            ex.model = await self._complete(call, send, ex)

    async def _respond(
        self, ex: Exchange, scope: Scope, receive: Receive, send: Send, raw: bytes
    ) -> None:
        """POST /v1/responses, translated to a chat completion and back, or passed through to
        models that serve it (turn.native)."""
        turn = await plan_turn(
            self.rt,
            self.stored,
            ex.request_id,
            header(scope, b"authorization"),
            header(scope, b"x-floorgate-workflow"),
            raw,
        )
        call = turn.call
        ex.planned(call, call.identity.workflow, call.identity.route, call.stream)
        ex.ticket = await self.rt.limits.admit(call)
        if call.stream:
            events = (
                NativeEvents(turn.response_id, turn.request, turn.native_body())
                if turn.native
                else ResponseEvents(turn.response_id, turn.request)
            )
            ex.model, ex.status = await relay(self.rt, call, ex, send, events)
            if events.finished:
                await turn.keep(events.response)
        elif turn.native:
            native = turn.native_body()
            ex.model = await self._complete(call, send, ex, turn.render_native, native)
        else:
            ex.model = await self._complete(call, send, ex, turn.render)

    async def _text_complete(
        self, ex: Exchange, scope: Scope, receive: Receive, send: Send, raw: bytes
    ) -> None:
        """POST /v1/completions (legacy), served as a chat completion."""
        call, model = plan_completion(
            self.rt,
            ex.request_id,
            header(scope, b"authorization"),
            header(scope, b"x-floorgate-workflow"),
            raw,
        )
        ex.planned(call, call.identity.workflow, call.identity.route, call.stream)
        ex.ticket = await self.rt.limits.admit(call)
        if call.stream:
            chunks = TextChunks(model)
            ex.model, ex.status = await relay(self.rt, call, ex, send, chunks)
            return

        async def render(completion: dict[str, Any]) -> bytes:
            return orjson.dumps(text_completion(completion, model))

        ex.model = await self._complete(call, send, ex, render)

    async def get_response(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET /v1/responses/{id}: a stored response, to the key that created it."""
        authorization = header(scope, b"authorization")
        self.rt.keys.authenticate(authorization)
        owner = owner_of(authorization, self.rt.keys.open)
        response_id = scope["path"].removeprefix(RESPONSES_PATH)
        stored = await self.stored.load(owner, response_id)
        body = orjson.dumps(stored.response)
        await send_response(send, 200, body, exchange(scope).error_headers())

    async def _complete(
        self,
        call: Call,
        send: Send,
        ex: Exchange,
        render: Render | None = None,
        native: dict[str, Any] | None = None,
    ) -> str:
        """A non-streamed completion; returns the name of the model that served it.
        `render` turns the reply into another endpoint's body (a Response); with a `native`
        Responses body, the upstream is asked through the Responses API instead."""
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
        after_upstream(rt, call, target, completion, verdict, overhead_s)
        return target.name

    async def _embed(
        self, ex: Exchange, scope: Scope, receive: Receive, send: Send, raw: bytes
    ) -> None:
        rt = self.rt
        call = plan_embeddings(
            rt,
            ex.request_id,
            header(scope, b"authorization"),
            header(scope, b"x-floorgate-workflow"),
            raw,
        )
        ex.planned(call, call.workflow, NONE, False)
        ex.model = call.target.name
        ex.ticket = await rt.limits.admit(call)
        reply = await rt.failover.embed(call.target, call.body)
        ex.stop_watching()
        await send_response(send, 200, reply.body, call.headers())
        rt.used(call.answered(), call.target, reply.data)

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET /v1/models: what this key may name."""
        data = self._models(scope)
        body = orjson.dumps({"object": "list", "data": data})
        await send_response(send, 200, body, exchange(scope).error_headers())

    async def model(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET /v1/models/{id}: one of them, or 404 model_not_found."""
        wanted = unquote(scope["path"].removeprefix(MODELS_PATH))
        listed = {m["id"]: m for m in self._models(scope)}
        key = wanted if wanted in listed else _listed_id(self.rt.policies.current, wanted)
        if key not in listed:
            raise ModelNotFound(
                f"The model '{wanted[:80]}' does not exist or this key may not use it; "
                "GET /v1/models lists those it may.",
                param="model",
            )
        body = orjson.dumps({**listed[key], "id": wanted})
        await send_response(send, 200, body, exchange(scope).error_headers())

    def _models(self, scope: Scope) -> list[dict[str, Any]]:
        caller = self.rt.keys.authenticate(header(scope, b"authorization"))
        policy = self.rt.policies.current
        names = [WORKFLOW_PREFIX + w for w in policy.spec.workflows if caller.may_use(w)]
        names += [ROUTE_PREFIX + r for r in policy.spec.routes]
        if policy.spec.expose_models:
            names += [n for n, t in policy.models.items() if t.spec.serves == "chat"]
        names += policy.embedding_models  # named by every embeddings request
        created = int(time.time())
        return [{"id": n, "object": "model", "created": created, "owned_by": "floorgate"}
                for n in names]  # fmt: skip


Work = Callable[[Exchange, Scope, Receive, Send, bytes], Awaitable[None]]
Render = Callable[[dict[str, Any]], Awaitable[bytes]]
RESPONSES_PATH = "/v1/responses/"
MODELS_PATH = "/v1/models/"


def _listed_id(policy: Policy, wanted: str) -> str:
    """The id GET /v1/models lists for a name a request's `model` may use in its place:
    `workflow:<name>`, `route:<name>` and a declared workflow's bare name."""
    for colon, slash in ((WORKFLOW_COLON, WORKFLOW_PREFIX), (ROUTE_COLON, ROUTE_PREFIX)):
        if wanted.startswith(colon):
            return slash + wanted.removeprefix(colon)
    if wanted in policy.spec.workflows:
        return WORKFLOW_PREFIX + wanted
    return wanted


def verdict_headers(verdict: Verdict) -> Headers:
    return [
        (b"x-floorgate-abstained", b"true" if verdict.abstained else b"false"),
        (b"x-floorgate-self-flagged", b"true" if verdict.flagged else b"false"),
        (b"x-floorgate-verdict-source", verdict.source.encode()),
    ]
