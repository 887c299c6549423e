"""The request bodies of /openapi.json, as the gateway checks them (gateway/fields.py,
gateway/chat_shape.py, gateway/responses/translate.py, gateway/embeddings.py,
gateway/completions.py, gateway/feedback.py): OpenAI's shapes, narrowed only where the gateway
refuses more, and left open (`additionalProperties`) where it forwards what it does not read.

The top of each OpenAI body is closed: the gateway forwards only its allowlist of fields (and
refuses steering fields such as `api_base` at any depth, which a schema cannot say).
"""

from __future__ import annotations

from typing import Any

from gateway.api.feedback import MAX_BATCH
from gateway.chat_shape import INTEGERS, NUMBERS, ROLES, TOOL_CHOICES
from gateway.embeddings import ENCODINGS, MAX_INPUTS
from gateway.feedback import FeedbackItem
from gateway.fields import CHAT_FIELDS, COMPLETION_FIELDS, EMBEDDING_FIELDS, RESPONSES_FIELDS
from gateway.responses.translate import ROLES as INPUT_ROLES
from gateway.responses.translate import TEXT_PARTS

Schema = dict[str, Any]

NULL: Schema = {"type": "null"}
OPEN: Schema = {"type": "object"}  # any members: forwarded as sent
STRING: Schema = {"type": "string"}
TEXT: Schema = {"type": "string", "minLength": 1}
# metadata.workflow names the workflow (gateway/identify.py); empty or null, it names none.
WORKFLOW: Schema = {"anyOf": [STRING, NULL]}


def if_object(schema: Schema) -> Schema:
    """What a field must be when it is an object; any other value is ignored."""
    return {"anyOf": [{"not": {"type": "object"}}, schema]}


def optional(schema: Schema) -> Schema:
    """`null` is accepted wherever a field is optional (gateway/chat_shape.py)."""
    return {"anyOf": [schema, NULL]}


def closed(properties: dict[str, Schema], allowed: frozenset[str], **extra: Any) -> Schema:
    """An object of the allowed fields only; those not given a schema here take any value."""
    every = {name: properties.get(name, {}) for name in sorted(allowed)}
    return {"type": "object", "properties": every, "additionalProperties": False, **extra}


# orjson reads an integer outside these as a float, which the gateway refuses as no integer.
INTEGER: Schema = {"type": "integer", "minimum": -(2**63), "maximum": 2**64 - 1}


def _bounded(kind: str, low: float | None, high: float | None) -> Schema:
    schema: Schema = dict(INTEGER) if kind == "integer" else {"type": kind}
    if low is not None:
        schema["minimum"] = low
    if high is not None:
        schema["maximum"] = high
    return optional(schema)


PARTS: Schema = {  # a content part: an object with a type, forwarded as sent
    "type": "array",
    "items": {"type": "object", "required": ["type"], "properties": {"type": STRING}},
}
CONTENT: Schema = {"anyOf": [STRING, PARTS]}


def _tagged(tag: str, value: Schema, required: list[str], **properties: Schema) -> Schema:
    """An object told apart by one member (`role`, `type`), with what else it requires."""
    return {
        "type": "object",
        "required": [tag, *required],
        "properties": {tag: value, **properties},
    }


def _message(roles: list[str], required: list[str], **properties: Schema) -> Schema:
    return _tagged("role", {"enum": roles}, required, **properties)


def _item(kind: str, required: list[str], **properties: Schema) -> Schema:
    return _tagged("type", {"const": kind}, required, **properties)


MESSAGE: Schema = {
    "oneOf": [
        _message(
            [r for r in ROLES if r not in ("assistant", "tool")], ["content"], content=CONTENT
        ),
        _message(["assistant"], [], content=optional(CONTENT)),
        _message(["tool"], ["content", "tool_call_id"], content=CONTENT, tool_call_id=STRING),
    ]
}
CHAT_TOOL: Schema = {
    "oneOf": [
        _item("function", ["function"], function=_tagged("name", TEXT, [])),
        _item("custom", []),
    ]
}
# The sampling fields chat and legacy completions share, checked as chat_shape.py checks them.
SAMPLING: dict[str, Schema] = {
    **{name: _bounded("number", *bounds) for name, bounds in NUMBERS.items()},
    **{name: _bounded("integer", *bounds) for name, bounds in INTEGERS.items()},
    "stop": optional({"anyOf": [STRING, {"type": "array", "items": STRING}]}),
    "stream": optional({"type": "boolean"}),
    "stream_options": optional(OPEN),
    "user": optional(STRING),
    "logit_bias": optional(OPEN),
    "metadata": optional({"type": "object", "properties": {"workflow": WORKFLOW}}),
    "model": {
        "type": "string",
        "minLength": 1,
        "description": "workflow/<name> (or workflow:<name>), route/<name> (or route:<name>), "
        "or an exposed model; see GET /v1/models. Any other name routes as the workflow "
        "when the API key or the X-Floorgate-Workflow header names one.",
    },
}
# stream_options only with stream: true.
STREAM_OPTIONS_NEED_STREAM: Schema = {
    "if": {"required": ["stream_options"], "properties": {"stream_options": OPEN}},
    "then": {"required": ["stream"], "properties": {"stream": {"const": True}}},
}

RESPONSE_FORMAT: Schema = {
    "type": "object",
    "if": {"required": ["type"], "properties": {"type": {"const": "json_schema"}}},
    "then": {"properties": {"json_schema": optional(OPEN)}},
}
CHAT: Schema = closed(
    {
        **SAMPLING,
        "messages": {"type": "array", "minItems": 1, "items": MESSAGE},
        "tools": optional({"type": "array", "items": CHAT_TOOL}),
        "tool_choice": optional({"anyOf": [{"enum": list(TOOL_CHOICES)}, OPEN]}),
        **{
            name: optional({"type": "boolean"})
            for name in ("logprobs", "parallel_tool_calls", "store")
        },
        "response_format": optional(RESPONSE_FORMAT),
        **{name: optional(OPEN) for name in ("prediction", "audio")},
        **{
            name: optional(STRING)
            for name in ("reasoning_effort", "service_tier", "verbosity", "prompt_cache_key")
        },
    },
    CHAT_FIELDS,
    required=["model", "messages"],
    **STREAM_OPTIONS_NEED_STREAM,
)

# What a chat model cannot honour, accepted only when it asks for nothing.
NOTHING: Schema = {"enum": [None, False, 0, ""]}
COMPLETION: Schema = closed(
    {
        **SAMPLING,
        "prompt": {"anyOf": [TEXT, {"type": "array", "items": TEXT, "minItems": 1, "maxItems": 1}]},
        "echo": NOTHING,
        "suffix": NOTHING,
        "logprobs": NOTHING,
        "best_of": {"enum": [None, 1]},
    },
    COMPLETION_FIELDS,
    required=["model", "prompt"],
    **STREAM_OPTIONS_NEED_STREAM,
)

TOKENS: Schema = {"type": "array", "minItems": 1, "items": INTEGER}
EMBEDDINGS: Schema = closed(
    {
        "model": {**TEXT, "description": "An embedding model of the policy (serves: embeddings)."},
        "input": {
            "anyOf": [
                TEXT,
                TOKENS,
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_INPUTS,
                    "items": {"anyOf": [TEXT, TOKENS]},
                },
            ]
        },
        "encoding_format": {"enum": [None, *ENCODINGS]},
        "dimensions": _bounded("integer", 1, None),
    },
    EMBEDDING_FIELDS,
    required=["model", "input"],
)


INPUT_PART: Schema = {
    "oneOf": [
        _tagged("type", {"enum": list(TEXT_PARTS)}, []),
        _item("refusal", []),
        _item("input_image", ["image_url"], image_url=STRING),
    ]
}
INPUT_MESSAGE: Schema = {  # `type` may be left out: an item is a message by default
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "type": {"const": "message"},
        "role": {"enum": list(INPUT_ROLES)},
        "content": {"anyOf": [STRING, {"type": "array", "items": INPUT_PART}]},
    },
}
INPUT_ITEM: Schema = {
    "oneOf": [
        INPUT_MESSAGE,
        _item("function_call", ["call_id", "name"], call_id=TEXT, name=TEXT),
        _item("function_call_output", ["call_id"], call_id=TEXT),
        _item("reasoning", []),
    ]
}
RESPONSES_TOOL: Schema = {  # function tools are translated; the others are left out
    "anyOf": [
        _item("function", ["name"], name=TEXT),
        {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"type": "string", "not": {"const": "function"}}},
        },
    ]
}
FORMATS = [None, "text", "json_object", "json_schema"]
RESPONSES: Schema = closed(
    {
        "model": SAMPLING["model"],
        "input": {"anyOf": [STRING, {"type": "array", "minItems": 1, "items": INPUT_ITEM}]},
        "instructions": optional(STRING),
        "previous_response_id": optional(
            {**TEXT, "description": "A response this API key stored: the conversation goes on."}
        ),
        "tools": optional({"type": "array", "items": RESPONSES_TOOL}),
        "tool_choice": optional({"anyOf": [{"enum": list(TOOL_CHOICES)}, _item("function", [])]}),
        "text": if_object(
            {"properties": {"format": if_object({"properties": {"type": {"enum": FORMATS}}})}}
        ),
        "reasoning": optional(OPEN),
        "max_output_tokens": _bounded("integer", 1, None),
        **{
            name: optional({"type": "boolean"})
            for name in ("stream", "store", "parallel_tool_calls")
        },
        **{name: SAMPLING[name] for name in ("temperature", "top_p", "user", "metadata")},
        **{name: optional(STRING) for name in ("service_tier", "prompt_cache_key")},
    },
    RESPONSES_FIELDS,
    required=["model", "input"],
)

FEEDBACK: Schema = FeedbackItem.model_json_schema()
FEEDBACK_BATCH: Schema = {
    "type": "object",
    "required": ["items"],
    "properties": {
        "items": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": FEEDBACK}
    },
}
EXPLAIN: Schema = {  # a chat request's routing: only model and metadata are read
    "type": "object",
    "required": ["model"],
    "properties": {"model": SAMPLING["model"], "metadata": {"properties": {"workflow": WORKFLOW}}},
}
