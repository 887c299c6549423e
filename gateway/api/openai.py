"""The OpenAI-compatible endpoints, as raw ASGI handlers (the hot path): a POST is read here
(its key, its body) and served by the request path, gateway/pipeline.py; the model list and
stored responses are answered here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import unquote

import orjson

from gateway.api.asgi import header, read_body
from gateway.api.boundary import exchange
from gateway.errors import ModelNotFound
from gateway.exchange import CLIENT_GONE, Disconnect, Exchange, Receive, Scope, Send, send_response
from gateway.identify import ROUTE_COLON, ROUTE_PREFIX, WORKFLOW_COLON, WORKFLOW_PREFIX
from gateway.pipeline import Pipeline
from gateway.plan import Call, Request
from gateway.policy.compiled import Policy
from gateway.responses.store import owner_of
from gateway.runtime import Runtime


class OpenAIEndpoints:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.pipeline = Pipeline(rt)
        # The POST endpoints, each _exchange bound to its way along the path: a partial (in C)
        # and not a coroutine of its own, whose frame each resume of the request's task (the
        # upstream's first bytes, each wait after) would step through.
        pipeline = self.pipeline
        self._body_limits = rt.settings.body_limits  # settings do not change while serving
        self.chat_completions: Handler = partial(self._exchange, serve=pipeline.chat)
        self.embeddings: Handler = partial(self._exchange, serve=pipeline.embedding)
        self.responses: Handler = partial(self._exchange, serve=pipeline.response)
        self.completions: Handler = partial(self._exchange, serve=pipeline.completion)

    async def _exchange(self, scope: Scope, receive: Receive, send: Send, serve: Serve) -> None:
        """What the POST endpoints share: the key, the body, the request path
        (gateway/pipeline.py), and the release of the request's share of its limits (errors,
        ids and metrics are the boundary's, gateway/api/boundary.py)."""
        ex = exchange(scope)
        # The key first: a caller without one must not make the gateway hold its body, and a
        # wrong key is a 401 even while overloaded (a 503 would have it retried for ever).
        authorization = header(scope, b"authorization")
        caller = self.rt.keys.authenticate(authorization)
        overload = self.rt.overload
        overload.admit()  # overloaded, refused before any other work (gateway/overload.py)
        try:
            raw = await read_body(scope, receive, *self._body_limits)
            ex.disconnect = Disconnect(receive, scope.get(CLIENT_GONE))
            await serve(ex, send, Request(authorization, header(scope, WORKFLOW), raw, caller))
        except asyncio.CancelledError:
            if ex.disconnect is None or not ex.disconnect.caused():
                raise
            ex.status = 499  # the client left before its answer: nothing was answered
        finally:
            overload.release()
            if ex.disconnect is not None:
                ex.disconnect.stop()
            if ex.ticket is not None:
                self.rt.limits.release(ex.ticket)
        if ex.status == 499 and isinstance(ex.call, Call):  # before the first byte, or after
            self.rt.cancelled(ex.call.answered(ex.model), ex.responded)

    async def get_response(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET /v1/responses/{id}: a stored response, to the key that created it."""
        authorization = header(scope, b"authorization")
        self.rt.keys.authenticate(authorization)
        owner = owner_of(authorization, self.rt.keys.open)
        response_id = scope["path"].removeprefix(RESPONSES_PATH)
        stored = await self.pipeline.stored.load(owner, response_id)
        body = orjson.dumps(stored.response)
        await send_response(send, 200, body, exchange(scope).error_headers())

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


Serve = Callable[[Exchange, Send, Request], Awaitable[None]]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
WORKFLOW = b"x-floorgate-workflow"
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
