"""The dialects of OpenAI-wire upstreams: the client's chat body, rewritten into the fields a
given server understands (a model's `wire:` block in the policy, else its provider's default).

- The reply cap: OpenAI's clients (LangChain among them) send `max_completion_tokens`, which
  llama.cpp's servers ignore (a `max_tokens=5` produced 1,027 tokens); they get `max_tokens`.
- Structured output: `response_format: json_schema` goes as is, as llama-cpp-python's
  `{type: json_object, schema}`, or is refused before any call (gateway/plan.py).
- The `developer` role (OpenAI's newer name for `system`, which Codex and the Agents SDK send):
  llama-cpp-python's server answers it with a 500, so other providers get `system`.
"""

from __future__ import annotations

from typing import Any, Literal

from gateway.errors import BadRequest
from gateway.policy.compiled import ModelTarget

JsonSchema = Literal["native", "json_object", "none"]
# Providers that know `max_completion_tokens` (and, for reasoning models, only it).
_COMPLETION_TOKENS_PROVIDERS = frozenset({"openai"})
# Providers that know the `developer` role; the others are sent `system` in its place.
_DEVELOPER_ROLE_PROVIDERS = frozenset({"openai"})


def max_tokens_field(target: ModelTarget) -> str:
    declared = target.spec.wire.max_tokens
    if declared is not None:
        return declared
    if target.spec.provider in _COMPLETION_TOKENS_PROVIDERS:
        return "max_completion_tokens"
    return "max_tokens"


def json_schema_support(target: ModelTarget) -> JsonSchema:
    return target.spec.wire.json_schema or "native"


def wants_json_schema(body: dict[str, Any]) -> bool:
    response_format = body.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") == "json_schema"


def structured(targets: list[ModelTarget], body: dict[str, Any]) -> list[ModelTarget]:
    """The candidates that can honour the body's `response_format`; a 400 if none can."""
    if not wants_json_schema(body) or not targets:
        return targets
    able = [t for t in targets if json_schema_support(t) != "none"]
    if not able:
        names = ", ".join(t.name for t in targets)
        raise BadRequest(
            f"'response_format' of type 'json_schema' is not supported by the models of this "
            f"route ({names}); use type 'json_object' or 'text', or a route whose models "
            "declare wire.json_schema.",
            param="response_format",
        )
    return able


def for_upstream(target: ModelTarget, body: dict[str, Any]) -> dict[str, Any]:
    """`body` in the target's dialect; the same object when nothing needs rewriting."""
    out = body
    field = max_tokens_field(target)
    other = "max_tokens" if field == "max_completion_tokens" else "max_completion_tokens"
    if body.get(other) is not None:
        out = dict(body)
        cap = out.pop(other)
        if out.get(field) is None or cap < out[field]:
            out[field] = cap
    if wants_json_schema(body) and json_schema_support(target) == "json_object":
        out = out if out is not body else dict(body)
        spec = body["response_format"].get("json_schema") or {}
        out["response_format"] = {"type": "json_object", "schema": spec.get("schema") or {}}
    if target.spec.provider not in _DEVELOPER_ROLE_PROVIDERS:
        messages = body.get("messages")
        if isinstance(messages, list) and any(_is_developer(m) for m in messages):
            out = out if out is not body else dict(body)
            out["messages"] = [{**m, "role": "system"} if _is_developer(m) else m for m in messages]
    return out


def _is_developer(message: object) -> bool:
    return isinstance(message, dict) and message.get("role") == "developer"
