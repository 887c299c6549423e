"""Rebuild what a streamed completion said, from its SSE bytes, once the stream has ended.

The relay keeps a bounded copy of the stream (head and tail), so a huge answer costs a fixed
amount of memory; events cut at the seam are skipped.
"""

from __future__ import annotations

from typing import Any

import orjson

KEEP_HEAD = 64 * 1024
KEEP_TAIL = 64 * 1024


class StreamCopy:
    """A bounded copy of a stream: its first KEEP_HEAD bytes and its last KEEP_TAIL bytes."""

    __slots__ = ("head", "status", "tail")

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.status = 499  # until the stream ends one way or the other, the client closed it

    def feed(self, chunk: bytes) -> None:
        room = KEEP_HEAD - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > 2 * KEEP_TAIL:
                del self.tail[:-KEEP_TAIL]

    def completion(self) -> dict[str, Any]:
        """The streamed completion as if it had not been streamed (choices with messages)."""
        choices: dict[int, dict[str, Any]] = {}
        usage: dict[str, Any] = {}
        for part in (self.head, self.tail[-KEEP_TAIL:]):
            for line in bytes(part).split(b"\n"):
                if line.startswith(b"data: {"):
                    _merge(choices, usage, line[6:])
        return {"choices": [choices[i] for i in sorted(choices)], "usage": usage or None}


def _merge(choices: dict[int, dict[str, Any]], usage: dict[str, Any], payload: bytes) -> None:
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return  # cut at the seam between head and tail
    if isinstance(event.get("usage"), dict):  # sent last when stream_options.include_usage
        usage.update(event["usage"])
    for delta_choice in event.get("choices") or ():
        index = delta_choice.get("index", 0)
        choice = choices.setdefault(
            index, {"message": {"content": "", "tool_calls": []}, "finish_reason": None}
        )
        message = choice["message"]
        delta = delta_choice.get("delta") or {}
        if delta.get("content"):
            message["content"] += delta["content"]
        if delta.get("refusal"):
            message["refusal"] = message.get("refusal", "") + delta["refusal"]
        for call in delta.get("tool_calls") or ():
            _merge_tool_call(message["tool_calls"], call)
        if delta_choice.get("finish_reason"):
            choice["finish_reason"] = delta_choice["finish_reason"]


def _merge_tool_call(calls: list[dict[str, Any]], delta: dict[str, Any]) -> None:
    index = delta.get("index", len(calls))
    while len(calls) <= index:
        calls.append({"function": {"name": "", "arguments": ""}})
    function = calls[index]["function"]
    incoming = delta.get("function") or {}
    function["name"] += incoming.get("name") or ""
    function["arguments"] += incoming.get("arguments") or ""
