"""The one SSE framer: every reader of a stream (the relay, the contract filter, the copy the
classifier reads) sees the same events, whatever line endings the upstream chose.

As the WHATWG event-stream rules say: lines end with LF, CRLF or CR; a blank line ends an
event; `data:` may or may not be followed by one space; a line starting with `:` is a comment.
`[DONE]` ends a stream only as a whole event's data, never as text inside another event.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson

DONE = b"[DONE]"
MAX_EVENT_BYTES = 8 * 1024 * 1024  # one event this large is an upstream gone wrong
KEEP_HEAD = 64 * 1024
KEEP_TAIL = 64 * 1024
_EOL = re.compile(rb"\r\n|\r|\n")


class FramingError(ValueError):
    """The stream is not SSE the gateway can relay (an event beyond MAX_EVENT_BYTES, or one
    whose data is not JSON)."""


@dataclass(slots=True)
class Event:
    lines: list[bytes]  # as received, without their line endings
    data: bytes | None  # the data lines joined by LF; None if the event has none

    @property
    def done(self) -> bool:
        return self.data == DONE

    def wire(self) -> bytes:
        """The event as the gateway sends it on: the same lines, LF-framed."""
        return b"\n".join(self.lines) + b"\n\n"

    def json(self) -> Any:
        """The data as JSON, or None if it is not JSON."""
        if self.data is None or self.data[:1] not in (b"{", b"["):
            return None
        try:
            return orjson.loads(self.data)
        except orjson.JSONDecodeError:
            return None


def check_json(event: Event) -> None:
    """Raise FramingError if the event carries data that is neither JSON nor [DONE]: relayed,
    it would break the client's parser instead of ending the stream with an error it reads."""
    if event.data is None or event.data == DONE:
        return
    try:
        orjson.loads(event.data)
    except orjson.JSONDecodeError:
        raise FramingError("upstream sent an event whose data is not JSON") from None


def event(data: bytes) -> bytes:
    """One data-only event, framed the way the gateway sends events."""
    return b"data: " + data + b"\n\n"


class Framer:
    """Feed it the stream's bytes as they arrive; it returns the events they completed."""

    __slots__ = ("_after_cr", "_data", "_limit", "_line", "_lines", "_size")

    def __init__(self, limit: int = MAX_EVENT_BYTES) -> None:
        self._line = b""  # the line being received
        self._lines: list[bytes] = []
        self._data: list[bytes] = []
        self._size = 0
        self._after_cr = False  # the last byte seen was a CR: an LF next completes a CRLF
        self._limit = limit

    def feed(self, chunk: bytes) -> list[Event]:
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        if not chunk:
            return []
        self._after_cr = chunk[-1:] == b"\r"
        # Most upstreams end lines with LF alone: bytes.split is several times the regex's speed.
        pieces = _EOL.split(chunk) if b"\r" in chunk else chunk.split(b"\n")
        pieces[0] = self._line + pieces[0]
        self._line = pieces.pop()
        events: list[Event] = []
        lines, data, size = self._lines, self._data, self._size
        for line in pieces:
            if line:  # a field: kept as it came; a data field's value joins the event's data
                lines.append(line)
                size += len(line)
                if line[:5] == b"data:":
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line == b"data":
                    data.append(b"")
            elif lines:  # a blank line ends the event
                events.append(Event(lines, b"\n".join(data) if data else None))
                lines, data, size = [], [], 0
        self._lines, self._data, self._size = lines, data, size
        if size + len(self._line) > self._limit:
            raise FramingError(f"an upstream event exceeded {self._limit} bytes")
        return events


class StreamCopy:
    """A bounded copy of a stream's data events, for its classification once it has ended:
    its first KEEP_HEAD bytes and its last KEEP_TAIL, so a huge answer costs fixed memory."""

    __slots__ = ("_head", "_room", "_tail", "_tail_size", "status")

    def __init__(self) -> None:
        self._head: list[bytes] = []
        self._room = KEEP_HEAD
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self.status = 499  # until the stream ends one way or the other, the client closed it

    def feed(self, data: bytes) -> None:
        if len(data) <= self._room:
            self._head.append(data)
            self._room -= len(data)
            return
        self._room = 0
        self._tail.append(data)
        self._tail_size += len(data)
        while self._tail_size > KEEP_TAIL and len(self._tail) > 1:
            self._tail_size -= len(self._tail.popleft())

    def completion(self) -> dict[str, Any]:
        """The streamed completion as if it had not been streamed (choices with messages)."""
        choices: dict[int, dict[str, Any]] = {}
        usage: dict[str, Any] = {}
        for data in (*self._head, *self._tail):
            _merge(choices, usage, data)
        return {"choices": [choices[i] for i in sorted(choices)], "usage": usage or None}


def _merge(choices: dict[int, dict[str, Any]], usage: dict[str, Any], data: bytes) -> None:
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    if not isinstance(event, dict):
        return
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
