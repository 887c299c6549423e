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
# How many events' parsed data the copy keeps as parsed (an event's ~175 bytes are some 1.2 KiB
# of objects): enough for a stream whole in its first bytes, whose events its check parsed
# before the first byte, not to be parsed again for the classifier; the rest as their bytes.
KEEP_PARSED = 8
_EOL = re.compile(rb"\r\n|\r|\n")
UNPARSED: Any = object()  # an Event's value before check_json has parsed its data


class FramingError(ValueError):
    """The stream is not SSE the gateway can relay (an event beyond MAX_EVENT_BYTES, or one
    whose data is not JSON)."""


@dataclass(slots=True)
class Event:
    lines: list[bytes]  # as received, without their line endings
    data: bytes | None  # the data lines joined by LF; None if the event has none
    value: Any = UNPARSED  # the data as parsed by check_json: nothing parses it twice

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
        if self.value is not UNPARSED:
            return self.value
        try:
            return orjson.loads(self.data)
        except orjson.JSONDecodeError:
            return None


def check_json(event: Event) -> None:
    """Raise FramingError if the event carries data that is neither JSON nor [DONE]: relayed,
    it would break the client's parser instead of ending the stream with an error it reads.
    The parsed data is kept on the event (Event.value) for whoever reads it next."""
    if event.data is None or event.data == DONE:
        return
    try:
        event.value = orjson.loads(event.data)
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
        # The event being received: its lines and data lines. Between events (nearly always,
        # while a stream is held) empty tuples, which the collector does not track, not lists.
        self._lines: list[bytes] | tuple[()] = ()
        self._data: list[bytes] | tuple[()] = ()
        self._size = 0
        self._after_cr = False  # the last byte seen was a CR: an LF next completes a CRLF
        self._limit = limit

    def feed(self, chunk: bytes) -> list[Event]:
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        if not chunk:
            return []
        if not self._line and not self._lines and chunk[-2:] == b"\n\n" and b"\r" not in chunk:
            events = _data_events(chunk)
            if events is not None:  # nothing is left over: the framer stays as it was
                self._after_cr = False
                return events
        return self._read_lines(chunk)

    def _read_lines(self, chunk: bytes) -> list[Event]:
        self._after_cr = chunk[-1:] == b"\r"
        # Most upstreams end lines with LF alone: bytes.split is several times the regex's speed.
        pieces = _EOL.split(chunk) if b"\r" in chunk else chunk.split(b"\n")
        pieces[0] = self._line + pieces[0]
        self._line = pieces.pop()
        events: list[Event] = []
        lines, data, size = self._lines or [], self._data or [], self._size
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
        # (a data line is one of the event's lines: `data` is empty whenever `lines` is)
        self._lines, self._data, self._size = (lines, data, size) if lines else ((), (), 0)
        if size + len(self._line) > self._limit:
            raise FramingError(f"an upstream event exceeded {self._limit} bytes")
        return events


def _data_events(chunk: bytes) -> list[Event] | None:
    """The events of a chunk that holds whole events only, each a single `data: ` line with LF
    endings (what upstreams send, nearly always), split in C; None for any other chunk, which
    the framer then reads line by line, to the same events."""
    blocks = chunk.split(b"\n\n")
    blocks.pop()  # b"": the chunk ends with a blank line
    events: list[Event] = []
    for block in blocks:
        if block[:6] != b"data: " or b"\n" in block:
            return None
        events.append(Event([block], block[6:]))
    return events


class StreamCopy:
    """A bounded copy of a stream's data events, for its classification once it has ended:
    its first KEEP_HEAD bytes and its last KEEP_TAIL, so a huge answer costs fixed memory."""

    __slots__ = ("_head", "_parsed", "_room", "_tail", "_tail_size", "status")

    def __init__(self) -> None:
        self._head: list[Any] = []  # each event's data, or (KEEP_PARSED at most) its JSON
        self._parsed = 0
        self._room = KEEP_HEAD
        self._tail: deque[bytes] | None = None  # made once the head is full (few streams fill it)
        self._tail_size = 0
        self.status = 499  # until the stream ends one way or the other, the client closed it

    def feed(self, data: bytes, value: Any = UNPARSED) -> None:
        """One event's data; `value`, its JSON as parsed already, if nothing will change it."""
        if len(data) <= self._room:
            if value is not UNPARSED and self._parsed < KEEP_PARSED:
                self._parsed += 1
                self._head.append(value)  # JSON parses to no bytes object: told apart
            else:
                self._head.append(data)
            self._room -= len(data)
            return
        self._room = 0
        tail = self._tail
        if tail is None:
            tail = self._tail = deque()
        tail.append(data)
        self._tail_size += len(data)
        while self._tail_size > KEEP_TAIL and len(tail) > 1:
            self._tail_size -= len(tail.popleft())

    def completion(self) -> dict[str, Any]:
        """The streamed completion as if it had not been streamed (choices with messages)."""
        choices: dict[int, dict[str, Any]] = {}
        usage: dict[str, Any] = {}
        for data in (*self._head, *(self._tail or ())):
            _merge(choices, usage, data)
        return {"choices": [choices[i] for i in sorted(choices)], "usage": usage or None}


def _merge(choices: dict[int, dict[str, Any]], usage: dict[str, Any], event: Any) -> None:
    """Merge one event's data (its bytes, or its JSON parsed) into the choices and usage."""
    if type(event) is bytes:
        try:
            event = orjson.loads(event)
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
