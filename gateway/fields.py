"""What a client may put in a request body, and what it may never smuggle in.

The upstream request is built from an allowlist of OpenAI fields. Fields that would steer the
upstream call (where it goes, with which credentials, who gets called back) are refused at any
depth, except inside JSON Schemas, whose property names belong to the caller's own data.
"""

from __future__ import annotations

from typing import Any

from gateway.chat_shape import check_chat_shapes
from gateway.errors import BadRequest

CHAT_FIELDS = frozenset(
    {
        "messages", "model", "audio", "frequency_penalty", "function_call", "functions",
        "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata",
        "modalities", "n", "parallel_tool_calls", "prediction", "presence_penalty",
        "prompt_cache_key", "reasoning_effort", "response_format", "safety_identifier", "seed",
        "service_tier", "stop", "store", "stream", "stream_options", "temperature",
        "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
        "web_search_options",
    }
)  # fmt: skip

RESPONSES_FIELDS = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls",
        "max_output_tokens", "max_tool_calls", "temperature", "top_p", "top_logprobs", "text",
        "reasoning", "store", "previous_response_id", "metadata", "stream", "stream_options",
        "user", "include", "truncation", "prompt_cache_key", "safety_identifier",
        "service_tier", "background", "client_metadata",
    }
)  # fmt: skip

COMPLETION_FIELDS = frozenset(
    {
        "model", "prompt", "max_tokens", "temperature", "top_p", "n", "stop", "stream",
        "stream_options", "user", "seed", "presence_penalty", "frequency_penalty", "logit_bias",
        "metadata", "echo", "suffix", "logprobs", "best_of",
    }
)  # fmt: skip

EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})

# Only the gateway decides where a call goes and with which credentials.
STEERING_FIELDS = frozenset(
    {
        "api_base", "base_url", "api_key", "api_version", "organization", "headers",
        "extra_headers", "extra_body", "extra_query", "custom_llm_provider", "litellm_params",
        "callbacks", "success_callback", "failure_callback", "input_callback", "service_callback",
        "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region_name",
        "aws_profile_name", "aws_role_name", "aws_web_identity_token",
        "aws_bedrock_runtime_endpoint",
        "vertex_credentials", "vertex_project", "vertex_location", "vertex_ai_project",
        "vertex_ai_location", "azure_ad_token", "azure_ad_token_provider", "azure_api_key",
        "azure_endpoint", "proxy", "proxies", "mock_response", "model_list", "user_config",
        "http_client", "client",
    }
)  # fmt: skip

# Subtrees that are JSON Schemas written by the caller: their keys are data, not options.
_SCHEMA_KEYS = frozenset({"parameters", "schema", "input_schema"})


def check_chat_body(body: dict[str, Any]) -> None:
    """Refuse steering fields anywhere, unknown fields at the top and malformed ones; name the
    field."""
    _check_top(body, CHAT_FIELDS, "chat completion")
    if "messages" not in body or not isinstance(body["messages"], list) or not body["messages"]:
        raise BadRequest(
            "'messages' is required: a non-empty list of chat messages.", param="messages"
        )
    _check_nested(body)
    check_chat_shapes(body)


def check_responses_body(body: dict[str, Any]) -> None:
    """As check_chat_body, for a Responses request (its items are checked as translated)."""
    _check_top(body, RESPONSES_FIELDS, "Responses")
    _check_nested(body)


def check_completions_body(body: dict[str, Any]) -> None:
    """As check_chat_body, for a legacy completions request."""
    _check_top(body, COMPLETION_FIELDS, "completions")
    _check_nested(body)


def check_embeddings_body(body: dict[str, Any]) -> None:
    """As check_chat_body, for an embeddings request."""
    _check_top(body, EMBEDDING_FIELDS, "embeddings")
    _check_nested(body)


def _check_top(body: dict[str, Any], allowed: frozenset[str], kind: str) -> None:
    for name in body:
        if name in STEERING_FIELDS:
            raise _steering(name)
        if name not in allowed:
            raise BadRequest(
                f"Unsupported parameter '{name}': Floorgate forwards only OpenAI {kind} "
                "fields. Remove it from the request.",
                param=name,
                code="unsupported_parameter",
            )


def _steering(path: str) -> BadRequest:
    return BadRequest(
        f"'{path}' is not allowed: Floorgate's policy decides where requests go and with which "
        "credentials. Remove the field; choose a workflow or route with 'model' instead.",
        param=path,
        code="forbidden_parameter",
    )


# Deeper than this is no chat request (orjson will not even write JSON past 255 levels).
MAX_DEPTH = 128
_CONTAINERS = frozenset((dict, list))
# One container on the walk: (parent, key or index, value, depth, inside a JSON Schema).
_Node = tuple[Any, str | int, Any, int, bool]


def _check_nested(root: dict[str, Any]) -> None:
    """Walk every container below the top: steering keys and depth. Paths are built only for
    an error, and a list of scalars is skipped in C (`set(map(type, ...))`): a 4M-element list
    must not hold the event loop for seconds."""
    stack: list[_Node] = [
        (None, key, value, 1, key in _SCHEMA_KEYS)
        for key, value in root.items()
        if type(value) in _CONTAINERS
    ]
    while stack:
        node = stack.pop()
        _, _, value, depth, schema = node
        if depth > MAX_DEPTH:
            where = _path(node)
            raise BadRequest(
                f"'{where}' nests JSON deeper than {MAX_DEPTH} levels; flatten it.", param=where
            )
        if type(value) is dict:
            for key, sub in value.items():
                if not schema and key in STEERING_FIELDS:
                    raise _steering(f"{_path(node)}.{key}")
                if type(sub) in _CONTAINERS:
                    stack.append((node, key, sub, depth + 1, schema or key in _SCHEMA_KEYS))
        elif not _CONTAINERS.isdisjoint(set(map(type, value))):
            stack.extend(
                (node, i, item, depth + 1, schema)
                for i, item in enumerate(value)
                if type(item) in _CONTAINERS
            )


def _path(node: _Node | None) -> str:
    parts: list[str] = []
    while node is not None:
        key = node[1]
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
        node = node[0]
    return "".join(reversed(parts)).lstrip(".")
