"""POST /v1/completions, the legacy text completions, served as a chat completion whose one user
message is the prompt, and rendered back as `text_completion` objects (streamed or not).

Only what has a chat equivalent is taken: a `prompt` string (or a list of one), the sampling
fields, `stop`, `n`, `stream`; `echo`, `suffix`, `logprobs` and `best_of` > 1 are refused by
name, since a chat model cannot honour them.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway.errors import BadRequest, GatewayError, stream_error_event
from gateway.fields import check_chat_body, check_completions_body
from gateway.plan import Call, Request, parse_json, plan_body
from gateway.responses.translate import new_id
from gateway.runtime import Runtime
from gateway.sse import DONE
from gateway.sse import event as sse_event

SAME_NAME = ("model", "max_tokens", "temperature", "top_p", "n", "stop", "stream",
             "stream_options", "user", "seed", "presence_penalty", "frequency_penalty",
             "logit_bias", "metadata")  # fmt: skip
REFUSED = ("echo", "suffix", "logprobs")


def plan_completion(rt: Runtime, request_id: str, request: Request) -> tuple[Call, object]:
    """The chat completion a completions request is served as, and the `model` it named."""
    caller = request.caller
    body = parse_json(request.raw)
    check_completions_body(body)
    chat = to_chat(body)
    check_chat_body(chat)
    return plan_body(rt, request_id, caller, request.workflow, chat), body.get("model")


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise BadRequest(
            "'prompt' is required: a string (or a list of one string).", param="prompt"
        )
    for name in REFUSED:
        if body.get(name) not in (None, False, 0, ""):
            raise BadRequest(
                f"'{name}' is not supported: Floorgate serves completions through chat models.",
                param=name,
            )
    if body.get("best_of") not in (None, 1):
        raise BadRequest("'best_of' other than 1 is not supported.", param="best_of")
    chat = {k: body[k] for k in SAME_NAME if body.get(k) is not None}
    chat["messages"] = [{"role": "user", "content": prompt}]
    return chat


def from_chat(completion: dict[str, Any], model: object) -> dict[str, Any]:
    choices = [
        {
            "text": (choice.get("message") or {}).get("content") or "",
            "index": choice.get("index", i),
            "logprobs": None,
            "finish_reason": choice.get("finish_reason"),
        }
        for i, choice in enumerate(completion.get("choices") or ())
    ]
    return {"id": new_id("cmpl"), "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": choices, "usage": completion.get("usage")}  # fmt: skip


class TextChunks:
    """The chat stream (framed by gateway/sse.py) re-told as text_completion chunks."""

    finished = False  # ended by [DONE]

    def __init__(self, model: object) -> None:
        self.id, self.model = new_id("cmpl"), model

    def data(self, data: dict[str, Any]) -> bytes:
        choices = [
            {"text": (c.get("delta") or {}).get("content") or "", "index": c.get("index", 0),
             "logprobs": None, "finish_reason": c.get("finish_reason")}
            for c in data.get("choices") or ()
        ]  # fmt: skip
        out = {"id": self.id, "object": "text_completion", "created": data.get("created"),
               "model": self.model, "choices": choices}  # fmt: skip
        if data.get("usage") is not None:
            out["usage"] = data["usage"]
        return sse_event(orjson.dumps(out))

    def done(self) -> bytes:
        return sse_event(DONE)

    def failed(self, err: GatewayError) -> bytes:
        return stream_error_event(err)
