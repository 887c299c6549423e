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
# More list items and object members than this in one body is no request either (OpenAI caps
# an embeddings request at 300,000 tokens, metadata at 16 pairs), and each costs the event loop
# time: an 8 MiB body of 4M list items took 125 ms to parse and 125 ms more to walk.
MAX_ITEMS = 400_000
# Up to this many strings, the commas outside them are counted exactly before parsing (a few ms).
_SPLIT_QUOTES = 20_000


def check_raw_size(raw: bytes) -> None:
    """Refuse, before parsing it, a body that surely holds more than MAX_ITEMS list items and
    object members, counted in C over its bytes: parsing it would hold the event loop for over
    100 ms. Once escaped quotes are dropped, every quote left opens or closes a string: each
    string is a key or a value, so a body within the limit has at most 4 * MAX_ITEMS quotes;
    each `":` ends a key, one per object member; every item but the first of a container
    follows a comma outside strings. What this cannot tell cheaply (many commas inside many
    strings) is parsed and walked."""
    if raw.count(b",") <= MAX_ITEMS:
        return
    if b"\\" in raw:  # escaped backslashes, then escaped quotes, end no string
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    quotes = raw.count(b'"')
    if (
        quotes > 4 * MAX_ITEMS
        or raw.count(b'":') > MAX_ITEMS
        or (quotes <= _SPLIT_QUOTES and _commas_outside(raw) > MAX_ITEMS)
    ):
        raise _too_many(None, "The request body")


def _commas_outside(unescaped: bytes) -> int:
    """Commas outside strings: the pieces between quotes are outside, inside, outside, ..."""
    return sum(piece.count(b",") for piece in unescaped.split(b'"')[::2])


def _too_many(param: str | None, what: str) -> BadRequest:
    return BadRequest(
        f"{what} holds more than {MAX_ITEMS} list items and object members in all; send less, "
        "or split it over several requests.",
        param=param,
        code="too_many_items",
    )


_CONTAINERS = frozenset((dict, list))
# One container on the walk: (parent, key or index, value, depth, inside a JSON Schema).
_Node = tuple[Any, str | int, Any, int, bool]


def _check_nested(root: dict[str, Any]) -> None:
    """Walk every container below the top: steering keys, depth and size. Paths are built only
    for an error, each container's keys and item types are read in C (`isdisjoint`,
    `set(map(type, ...))`), and only containers are visited one by one."""
    stack: list[_Node] = [
        (None, key, value, 1, key in _SCHEMA_KEYS)
        for key, value in root.items()
        if type(value) in _CONTAINERS
    ]
    items = len(root)
    while stack:
        node = stack.pop()
        _, _, value, depth, schema = node
        items += len(value)
        _check_bounds(node, items)
        if type(value) is dict:
            if not schema and not STEERING_FIELDS.isdisjoint(value):
                key = next(k for k in value if k in STEERING_FIELDS)
                raise _steering(f"{_path(node)}.{key}")
            if not _CONTAINERS.isdisjoint(set(map(type, value.values()))):
                stack.extend(
                    (node, key, sub, depth + 1, schema or key in _SCHEMA_KEYS)
                    for key, sub in value.items()
                    if type(sub) in _CONTAINERS
                )
        elif not _CONTAINERS.isdisjoint(set(map(type, value))):
            stack.extend(
                (node, i, item, depth + 1, schema)
                for i, item in enumerate(value)
                if type(item) in _CONTAINERS
            )


def _check_bounds(node: _Node, items: int) -> None:
    if node[3] > MAX_DEPTH:
        where = _path(node)
        raise BadRequest(
            f"'{where}' nests JSON deeper than {MAX_DEPTH} levels; flatten it.", param=where
        )
    if items > MAX_ITEMS:
        where = _path(node)
        raise _too_many(where, f"The request body (at '{where}')")


def _path(node: _Node | None) -> str:
    parts: list[str] = []
    while node is not None:
        key = node[1]
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
        node = node[0]
    return "".join(reversed(parts)).lstrip(".")
