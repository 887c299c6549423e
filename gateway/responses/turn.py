"""One Responses request, planned as the chat completion it is translated to.

The translated body goes through the same request path as a chat completion (workflow,
route, candidates, calibration contract: gateway/plan.py); what comes back is rendered
as a Response and, unless `store` is false, kept for `previous_response_id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import BadRequest
from gateway.fields import check_chat_body, check_responses_body
from gateway.plan import Call, Request, parse_json, plan_body
from gateway.responses.store import ResponseStore, Stored, owner_of
from gateway.responses.translate import from_completion, new_id, renamed, to_chat
from gateway.runtime import Runtime

# What the gateway keeps for itself: the workflow in metadata, its own response ids and store.
GATEWAY_ONLY = frozenset({"metadata", "previous_response_id", "store", "stream", "stream_options"})


@dataclass(slots=True)
class Turn:
    call: Call
    request: dict[str, Any]  # as the client sent it
    owner: str
    conversation: list[dict[str, Any]]  # the input items so far, without instructions
    response_id: str
    store: ResponseStore
    native: bool = False  # every candidate serves the Responses API: passed through

    def native_body(self) -> dict[str, Any]:
        """The request as a Responses upstream gets it: the whole conversation as its input
        (the upstream never saw the gateway's response ids), stored by the gateway only."""
        body = {k: v for k, v in self.request.items() if k not in GATEWAY_ONLY}
        if self.call.stream:
            body["stream"] = True  # without stream_options: the events carry their usage
        return {**body, "input": self.conversation, "store": False}

    async def render_native(self, response: dict[str, Any]) -> bytes:
        """The upstream's own Response, under the gateway's id and the model the client named."""
        response = renamed(response, self.response_id, self.request)
        await self.keep(response)
        return orjson.dumps(response)

    async def render(self, completion: dict[str, Any]) -> bytes:
        """The Response for a whole chat completion, kept before the client gets it (so a
        follow-up sent the moment it arrives finds it)."""
        response = from_completion(self.response_id, self.request, completion)
        await self.keep(response)
        return orjson.dumps(response)

    async def keep(self, response: dict[str, Any]) -> None:
        if self.request.get("store", True) is False:
            return
        conversation = [*self.conversation, *response["output"]]
        await self.store.save(self.owner, Stored(response, conversation))


async def plan_turn(rt: Runtime, store: ResponseStore, request_id: str, sent: Request) -> Turn:
    caller = sent.caller
    request = parse_json(sent.raw)
    check_responses_body(request)
    for name in ("store", "stream", "parallel_tool_calls"):
        if request.get(name) is not None and not isinstance(request[name], bool):
            raise BadRequest(f"Invalid type for '{name}': expected a boolean.", param=name)
    owner = owner_of(sent.authorization, rt.keys.open)
    history: list[dict[str, Any]] = []
    previous = request.get("previous_response_id")
    if previous is not None:
        if not isinstance(previous, str) or not previous:
            raise BadRequest(
                "Invalid 'previous_response_id': expected a response id.",
                param="previous_response_id",
            )
        history = (await store.load(owner, previous, "previous_response_id")).conversation
    chat, conversation = to_chat(request, history)
    check_chat_body(chat)
    call = plan_body(rt, request_id, caller, sent.workflow, chat)
    native = call.contract == "off" and all(
        t.spec.wire.responses and t.spec.direct for t in call.candidates
    )
    return Turn(call, request, owner, conversation, new_id("resp"), store, native)
