"""A chat stream made whole for the client, whatever the upstream's habits:

- tool-call deltas normalised: each call's `id`, `type` and `name` once, in its first delta,
  then only `arguments` (llama-cpp-python repeats the name in every delta, and clients that
  concatenate deltas, as the openai SDK and LangChain do, then call `fn` as `fnfnfnfn...`);
- `stream_options.include_usage` honoured: an upstream that sends no usage chunk gets one
  synthesised before `[DONE]`, from character counts (about four characters a token; the
  upstream's own counts are always preferred), so clients and the gateway's metrics count
  the tokens either way.

Only streams that need it pass through here (see `needs_fixing`); the rest are relayed
event for event, as framed by gateway/sse.py.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import orjson

CHARS_PER_TOKEN = 4


def wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def needs_fixing(body: dict[str, Any]) -> bool:
    return bool(body.get("tools")) or wants_usage(body)


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def prompt_chars(body: dict[str, Any]) -> int:
    """The characters of a chat request's messages and tools, as the model reads them."""
    total = 0
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif content is not None:
            total += len(orjson.dumps(content))
    if body.get("tools"):
        total += len(orjson.dumps(body["tools"]))
    return total


class ChatStreamFixer:
    """Feed the upstream's SSE bytes; get back the bytes the client should see."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._want_usage = wants_usage(body)
        self._prompt_chars = prompt_chars(body)
        self._calls: set[tuple[int, int]] = set()  # (choice, call index) already introduced
        self._said = 0  # characters of content and arguments streamed
        self._last: dict[str, Any] = {}
        self.usage: dict[str, int] | None = None  # the upstream's, or the one synthesised

    def rewrite(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """One event's data (gateway/sse.py frames them), as the client should see it."""
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        self._last = data
        for choice in data.get("choices") or ():
            if isinstance(choice, dict):
                self._choice(choice)
        return [data]

    def finish(self) -> list[dict[str, Any]]:
        """What goes just before [DONE]: the usage chunk, if the client asked and got none."""
        return self._usage_chunk()

    def _choice(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return
        if isinstance(delta.get("content"), str):
            self._said += len(delta["content"])
        for position, call in enumerate(delta.get("tool_calls") or ()):
            if isinstance(call, dict):
                self._call(choice.get("index", 0), position, call)

    def _call(self, choice: int, position: int, call: dict[str, Any]) -> None:
        index = call.setdefault("index", position)
        function = call.get("function")
        if not isinstance(function, dict):
            function = call["function"] = {}
        arguments = function.get("arguments")
        self._said += len(arguments) if isinstance(arguments, str) else 0
        key = (choice, index)
        if key in self._calls:
            for name in ("id", "type"):
                call.pop(name, None)
            function.pop("name", None)
            return
        self._calls.add(key)
        call.setdefault("id", f"call_{os.urandom(12).hex()}")
        call.setdefault("type", "function")

    def _usage_chunk(self) -> list[dict[str, Any]]:
        if not self._want_usage or self.usage is not None:
            return []
        prompt = estimate_tokens(self._prompt_chars)
        completion = estimate_tokens(self._said)
        self.usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        chunk = {
            "id": self._last.get("id", "chatcmpl-floorgate"),
            "object": "chat.completion.chunk",
            "created": self._last.get("created", int(time.time())),
            "model": self._last.get("model", ""),
            "choices": [],
            "usage": self.usage,
        }
        return [chunk]
