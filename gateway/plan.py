"""A chat completion planned before its upstream is called: the request parsed and checked,
its workflow identified, its route decided, its candidate models selected, the calibration
contract applied (gateway/pipeline.py then serves it)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.calibration import Contract, with_contract
from gateway.errors import BadRequest
from gateway.exchange import Headers
from gateway.fields import check_chat_body, check_raw_size
from gateway.identify import Identity
from gateway.keys import Caller
from gateway.metrics import NONE
from gateway.policy.compiled import ModelTarget, Policy
from gateway.runtime import Answered, Runtime
from gateway.selection import candidates
from gateway.upstream.dialect import structured


@dataclass(frozen=True, slots=True)
class Request:
    """What the request path reads of an HTTP request."""

    authorization: str | None
    workflow: str | None  # the X-Floorgate-Workflow header
    raw: bytes  # the body
    caller: Caller  # whom the key names, as the HTTP layer authenticated it (once a request)


class _Ids:
    """Request ids ("fg-" and 24 hex digits) cut from the kernel's random bytes, fetched 512
    ids at a time: one getrandom() call per id cost a request's path a system call."""

    __slots__ = ("_at", "_hex")

    def __init__(self) -> None:
        self._hex, self._at = "", 0
        # A forked process must not hand out its parent's ids.
        os.register_at_fork(after_in_child=self._drop)

    def _drop(self) -> None:
        self._hex, self._at = "", 0

    def next(self) -> str:
        at = self._at
        if at == len(self._hex):
            self._hex, at = os.urandom(12 * ID_BATCH).hex(), 0
        self._at = at + 24
        return "fg-" + self._hex[at : at + 24]


ID_BATCH = 512
new_request_id = _Ids().next


@dataclass(slots=True)
class Call:
    """One planned chat completion: everything decided before the upstream is called."""

    request_id: str
    policy: Policy
    identity: Identity
    body: dict[str, Any]  # as the upstream will get it
    stream: bool
    candidates: list[ModelTarget]
    contract: Contract
    key: str  # the caller's name, for its limits
    # x-ratelimit-*, once admitted; until then the empty tuple, which the collector does not
    # track (a list would be one more object each stream held keeps).
    limit_headers: Headers | tuple[()] = ()

    @property
    def workflow(self) -> str:
        return self.identity.workflow

    def answered(self, model: str) -> Answered:
        identity = self.identity
        return Answered(
            self.request_id, identity.workflow, identity.route, model, self.policy.version
        )

    def error_headers(self) -> Headers:
        return self.headers(NONE)

    def headers(self, model: str) -> Headers:
        return [
            (b"x-floorgate-request-id", self.request_id.encode()),
            (b"x-floorgate-workflow", self.identity.workflow.encode()),
            (b"x-floorgate-route", self.identity.route.encode()),
            (b"x-floorgate-model", model.encode()),
            (b"x-floorgate-policy-version", self.policy.version.encode()),
            *self.limit_headers,
        ]


def parse_json(raw: bytes) -> dict[str, Any]:
    check_raw_size(raw)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"The request body is not valid JSON ({exc.msg} at position {exc.pos})."
        ) from exc
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def plan_chat(rt: Runtime, request_id: str, request: Request) -> Call:
    body = parse_json(request.raw)
    check_chat_body(body)
    return plan_body(rt, request_id, request.caller, request.workflow, body)


def plan_body(
    rt: Runtime, request_id: str, caller: Caller, workflow_header: str | None, body: dict[str, Any]
) -> Call:
    """Plan a checked chat body: workflow, route, candidates, contract."""
    policy = rt.policies.current  # one reference: this request sees one whole policy
    identity = rt.identities.identify(policy, caller, workflow_header, body)
    # Counted on the loop's next turn, once the request is on its way to the upstream: the
    # counter's lock and calls are no part of what the first byte waits for.
    asyncio.get_running_loop().call_soon(rt.metrics.decision, identity.workflow, identity.route)
    if identity.unknown_workflow:
        rt.metrics.unknown_workflows.inc()
    models = candidates(policy, identity.route, identity.pinned_model, rt.health, rt.gates)
    models = structured(models, body)  # a 400 if none of them can honour response_format
    contract = (
        policy.spec.workflows[identity.workflow].calibration_contract
        or policy.spec.routes[identity.route].calibration_contract
    )
    if contract != "off":
        body = with_contract(body)
    stream = body.get("stream") is True
    return Call(request_id, policy, identity, body, stream, models, contract, caller.name)
