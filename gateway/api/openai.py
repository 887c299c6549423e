"""The OpenAI-compatible endpoints, as raw ASGI handlers: the hot path."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from gateway.api.asgi import (
    Headers,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    send_error,
    send_response,
)
from gateway.calibration import translate_completion
from gateway.classify import Verdict, classify_completion
from gateway.embeddings import plan_embeddings
from gateway.errors import GatewayError
from gateway.identify import ROUTE_PREFIX, WORKFLOW_PREFIX
from gateway.limits import Ticket
from gateway.metrics import NONE, UNKNOWN
from gateway.pipeline import Call, new_request_id, plan_chat
from gateway.responses.events import ResponseEvents
from gateway.responses.store import ResponseStore, owner_of
from gateway.responses.turn import plan_turn
from gateway.runtime import Runtime
from gateway.streaming import relay

log = logging.getLogger("floorgate.api")
INTERNAL = GatewayError("Floorgate failed to handle the request; it has been logged.")


class OpenAIEndpoints:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.stored = ResponseStore(rt.store, rt.settings.ledger_retention_s)

    async def chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._exchange(scope, receive, send, self._chat)

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._exchange(scope, receive, send, self._embed)

    async def responses(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._exchange(scope, receive, send, self._respond)

    async def _exchange(self, scope: Scope, receive: Receive, send: Send, work: Work) -> None:
        """What every endpoint shares: the in-flight gauge, the body, OpenAI-shaped errors (a
        bug among them: logged, answered 500, serving goes on), and the request metrics."""
        rt = self.rt
        ex = Exchange(new_request_id(), time.perf_counter())
        rt.metrics.in_flight.inc()
        try:
            raw = await read_body(receive, rt.settings.max_body_bytes)
            await work(ex, scope, receive, send, raw)
        except GatewayError as err:
            ex.status = err.status
            await send_error(send, err, ex.error_headers())
        except Exception:  # the top-level handler: log it, answer 500, keep serving
            log.exception("request %s failed", ex.request_id)
            ex.status = 500
            with suppress(RuntimeError):  # the response may have started already
                await send_error(send, INTERNAL, ex.error_headers())
        finally:
            if ex.ticket is not None:
                rt.limits.release(ex.ticket)
            rt.metrics.in_flight.dec()
            elapsed = time.perf_counter() - ex.started
            rt.metrics.request(ex.workflow, ex.route, ex.model, ex.status, ex.stream, elapsed)

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
            ex.model, ex.status = await relay(rt, call, receive, send, ex.started)
        else:
            ex.model = await self._complete(call, send, ex.started)

    async def _respond(
        self, ex: Exchange, scope: Scope, receive: Receive, send: Send, raw: bytes
    ) -> None:
        """POST /v1/responses, translated to a chat completion and back."""
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
            events = ResponseEvents(turn.response_id, turn.request)
            ex.model, ex.status = await relay(self.rt, call, receive, send, ex.started, events)
            if events.finished:
                await turn.keep(events.response)
        else:
            ex.model = await self._complete(call, send, ex.started, turn.render)

    async def get_response(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET /v1/responses/{id}: a stored response, to the key that created it."""
        new_id_headers = _error_headers(new_request_id())
        try:
            authorization = header(scope, b"authorization")
            self.rt.keys.authenticate(authorization)
            owner = owner_of(authorization, self.rt.keys.open)
            response_id = scope["path"].removeprefix(RESPONSES_PATH)
            stored = await self.stored.load(owner, response_id)
        except GatewayError as err:
            await send_error(send, err, new_id_headers)
            return
        await send_response(send, 200, orjson.dumps(stored.response), new_id_headers)

    async def _complete(
        self, call: Call, send: Send, started: float, render: Render | None = None
    ) -> str:
        """A non-streamed completion; returns the name of the model that served it.
        `render` turns the completion into another endpoint's body (a Response)."""
        rt = self.rt
        upstream_started = time.perf_counter()
        target, reply = await rt.failover.complete(call.identity.route, call.candidates, call.body)
        upstream_s = time.perf_counter() - upstream_started
        verdict = classify_completion(reply.data)  # before translation hides the tools
        body = reply.body
        if call.contract == "translate" and translate_completion(reply.data):
            body = orjson.dumps(reply.data)
        if render is not None:
            body = await render(reply.data)
        await send_response(
            send, 200, body, [*call.headers(target.name), *verdict_headers(verdict)]
        )
        answered = call.answered(target.name)
        rt.answered(answered, verdict)
        rt.used(answered, target, reply.data)
        overhead_s = time.perf_counter() - started - upstream_s
        rt.metrics.timing(answered.workflow, answered.route, target.name, overhead_s, None)
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
        await send_response(send, 200, reply.body, call.headers())
        rt.used(call.answered(), call.target, reply.data)

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        try:
            caller = self.rt.keys.authenticate(header(scope, b"authorization"))
        except GatewayError as err:
            await send_error(send, err, _error_headers(request_id))
            return
        policy = self.rt.policies.current
        names = [WORKFLOW_PREFIX + w for w in policy.spec.workflows if caller.may_use(w)]
        names += [ROUTE_PREFIX + r for r in policy.spec.routes]
        if policy.spec.expose_models:
            names += [n for n, t in policy.models.items() if t.spec.serves == "chat"]
        names += policy.embedding_models  # named by every embeddings request
        created = int(time.time())
        data = [{"id": n, "object": "model", "created": created, "owned_by": "floorgate"}
                for n in names]  # fmt: skip
        body = orjson.dumps({"object": "list", "data": data})
        await send_response(send, 200, body, [(b"x-floorgate-request-id", request_id.encode())])


class Planned(Protocol):
    def error_headers(self) -> Headers: ...


@dataclass(slots=True)
class Exchange:
    """One request as its handler learns about it: the labels of its metrics, and what its
    error response would carry."""

    request_id: str
    started: float
    workflow: str = UNKNOWN
    route: str = NONE
    model: str = NONE
    stream: bool = False
    status: int = 200
    call: Planned | None = None
    ticket: Ticket | None = None  # its share of its limits, released when it ends

    def planned(self, call: Planned, workflow: str, route: str, stream: bool) -> None:
        self.call, self.workflow, self.route, self.stream = call, workflow, route, stream

    def error_headers(self) -> Headers:
        if self.call is not None:
            return self.call.error_headers()
        return [(b"x-floorgate-request-id", self.request_id.encode())]


Work = Callable[[Exchange, Scope, Receive, Send, bytes], Awaitable[None]]
Render = Callable[[dict[str, Any]], Awaitable[bytes]]
RESPONSES_PATH = "/v1/responses/"


def verdict_headers(verdict: Verdict) -> Headers:
    return [
        (b"x-floorgate-abstained", b"true" if verdict.abstained else b"false"),
        (b"x-floorgate-self-flagged", b"true" if verdict.flagged else b"false"),
        (b"x-floorgate-verdict-source", verdict.source.encode()),
    ]


def _error_headers(request_id: str) -> Headers:
    return [(b"x-floorgate-request-id", request_id.encode())]
