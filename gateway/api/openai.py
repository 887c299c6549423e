"""The OpenAI-compatible endpoints, as raw ASGI handlers: the hot path."""

from __future__ import annotations

import logging
import time
from contextlib import suppress

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
from gateway.embeddings import EmbeddingCall, embedding_models, plan_embeddings
from gateway.errors import GatewayError
from gateway.identify import ROUTE_PREFIX, WORKFLOW_PREFIX
from gateway.metrics import NONE, UNKNOWN
from gateway.pipeline import Call, new_request_id, plan_chat
from gateway.runtime import Runtime
from gateway.streaming import relay

log = logging.getLogger("floorgate.api")
INTERNAL = GatewayError("Floorgate failed to handle the request; it has been logged.")


class OpenAIEndpoints:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        rt = self.rt
        started = time.perf_counter()
        request_id = new_request_id()
        call: Call | None = None
        model, status = NONE, 200
        rt.metrics.in_flight.inc()
        try:
            raw = await read_body(receive, rt.settings.max_body_bytes)
            call = plan_chat(
                rt,
                request_id,
                header(scope, b"authorization"),
                header(scope, b"x-floorgate-workflow"),
                raw,
            )
            if call.stream:
                model, status = await relay(rt, call, receive, send, started)
            else:
                model = await self._complete(call, send, started)
        except GatewayError as err:
            status = err.status
            await send_error(send, err, _error_headers(request_id, call))
        except Exception:  # the top-level handler: log it, answer 500, keep serving
            log.exception("request %s failed", request_id)
            status = 500
            with suppress(RuntimeError):  # the response may have started already
                await send_error(send, INTERNAL, _error_headers(request_id, call))
        finally:
            rt.metrics.in_flight.dec()
            workflow, route = (
                (call.identity.workflow, call.identity.route) if call else (UNKNOWN, NONE)
            )
            elapsed = time.perf_counter() - started
            rt.metrics.request(workflow, route, model, status, bool(call and call.stream), elapsed)

    async def _complete(self, call: Call, send: Send, started: float) -> str:
        """A non-streamed completion; returns the name of the model that served it."""
        rt = self.rt
        upstream_started = time.perf_counter()
        target, reply = await rt.failover.complete(call.identity.route, call.candidates, call.body)
        upstream_s = time.perf_counter() - upstream_started
        verdict = classify_completion(reply.data)  # before translation hides the tools
        body = reply.body
        if call.contract == "translate" and translate_completion(reply.data):
            body = orjson.dumps(reply.data)
        await send_response(
            send, 200, body, [*call.headers(target.name), *verdict_headers(verdict)]
        )
        answered = call.answered(target.name)
        rt.answered(answered, verdict)
        rt.used(answered, target, reply.data)
        overhead_s = time.perf_counter() - started - upstream_s
        rt.metrics.timing(answered.workflow, answered.route, target.name, overhead_s, None)
        return target.name

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        rt = self.rt
        started = time.perf_counter()
        request_id = new_request_id()
        call: EmbeddingCall | None = None
        status = 200
        rt.metrics.in_flight.inc()
        try:
            raw = await read_body(receive, rt.settings.max_body_bytes)
            call = plan_embeddings(
                rt,
                request_id,
                header(scope, b"authorization"),
                header(scope, b"x-floorgate-workflow"),
                raw,
            )
            reply = await rt.failover.embed(call.target, call.body)
            await send_response(send, 200, reply.body, call.headers())
            rt.used(call.answered(), call.target, reply.data)
        except GatewayError as err:
            status = err.status
            headers = call.headers() if call else _error_headers(request_id, None)
            await send_error(send, err, headers)
        except Exception:  # the top-level handler: log it, answer 500, keep serving
            log.exception("request %s failed", request_id)
            status = 500
            with suppress(RuntimeError):
                await send_error(send, INTERNAL, _error_headers(request_id, None))
        finally:
            rt.metrics.in_flight.dec()
            workflow, model = (call.workflow, call.target.name) if call else (UNKNOWN, NONE)
            elapsed = time.perf_counter() - started
            rt.metrics.request(workflow, NONE, model, status, False, elapsed)

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        try:
            caller = self.rt.keys.authenticate(header(scope, b"authorization"))
        except GatewayError as err:
            await send_error(send, err, _error_headers(request_id, None))
            return
        policy = self.rt.policies.current
        names = [WORKFLOW_PREFIX + w for w in policy.spec.workflows if caller.may_use(w)]
        names += [ROUTE_PREFIX + r for r in policy.spec.routes]
        if policy.spec.expose_models:
            names += [n for n, t in policy.models.items() if t.spec.serves == "chat"]
        names += embedding_models(policy)  # named by every embeddings request
        created = int(time.time())
        data = [{"id": n, "object": "model", "created": created, "owned_by": "floorgate"}
                for n in names]  # fmt: skip
        body = orjson.dumps({"object": "list", "data": data})
        await send_response(send, 200, body, [(b"x-floorgate-request-id", request_id.encode())])


def verdict_headers(verdict: Verdict) -> Headers:
    return [
        (b"x-floorgate-abstained", b"true" if verdict.abstained else b"false"),
        (b"x-floorgate-self-flagged", b"true" if verdict.flagged else b"false"),
    ]


def _error_headers(request_id: str, call: Call | None) -> Headers:
    if call is not None:
        return call.headers(NONE)
    return [(b"x-floorgate-request-id", request_id.encode())]
