"""Tokens a request will use, estimated before the upstream says: for tokens-per-minute limits,
which count a request when it arrives and correct the count from the upstream's usage after.

Four characters a token, as OpenAI's own rule of thumb; the completion is `max_tokens` (or
`max_completion_tokens`) when the request sets one, else nothing until the usage arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CHARS_PER_TOKEN = 4


def _text_chars(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):  # content parts, or embedding inputs
        return sum(_text_chars(part) for part in value)
    if isinstance(value, int) and not isinstance(value, bool):  # a token id
        return CHARS_PER_TOKEN
    if isinstance(value, dict):
        return _text_chars(value.get("text"))
    return 0


def prompt_tokens(body: Mapping[str, Any]) -> int:
    messages = body.get("messages")
    if isinstance(messages, list):
        chars = sum(_text_chars(m.get("content")) for m in messages if isinstance(m, dict))
    else:
        chars = _text_chars(body.get("input"))
    return -(-chars // CHARS_PER_TOKEN)


def completion_budget(body: Mapping[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def completion_tokens(data: Mapping[str, Any]) -> int:
    """A finished completion's tokens when the upstream did not report them (a stream without
    stream_options.include_usage): its text, estimated."""
    chars = 0
    for choice in data.get("choices") or ():
        message = (choice.get("message") if isinstance(choice, dict) else None) or {}
        chars += _text_chars(message.get("content"))
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict):
                chars += _text_chars((call.get("function") or {}).get("arguments"))
    return -(-chars // CHARS_PER_TOKEN)
