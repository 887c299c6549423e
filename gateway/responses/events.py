"""A streamed chat completion, re-told as the Responses API's typed event stream.

    response.created, response.in_progress
    response.output_item.added (message)      response.content_part.added (output_text)
    response.output_text.delta ...            response.output_text.done
    (or, for a chat `refusal`, a refusal part: response.refusal.delta ... response.refusal.done)
    response.content_part.done                response.output_item.done
    response.output_item.added (function_call)
    response.function_call_arguments.delta ... response.function_call_arguments.done
    response.output_item.done
    response.completed (or response.incomplete)

Each event is `event: <type>` and `data: <json>` with its `type` and `sequence_number`. A
stream that breaks after its first byte ends with an `error` event and `response.failed`.
Feed it the chat stream's chunks, framed by gateway/sse.py and normalised by
gateway/chat_stream.py. NativeEvents passes an upstream's own Responses stream through instead.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.responses.translate import (
    as_completion,
    finish,
    function_call_item,
    message_item,
    new_id,
    output_text,
    renamed,
    response_object,
)
from gateway.upstream.base import UpstreamError

TERMINAL = frozenset({"response.completed", "response.incomplete"})


class _Call:
    __slots__ = ("arguments", "call_id", "item_id", "name", "output_index")

    def __init__(self, item_id: str, call_id: str, name: str, output_index: int) -> None:
        self.item_id, self.call_id, self.name = item_id, call_id, name
        self.output_index = output_index
        self.arguments = ""


class ResponseEvents:
    def __init__(self, response_id: str, request: dict[str, Any]) -> None:
        self.response = response_object(response_id, request, "in_progress", [])
        self._sequence = 0
        self._started = False
        # The open message item's content parts, (type, text) each; None when none is open.
        self._parts: list[tuple[str, str]] | None = None
        self._message_id = ""
        self._message_index = 0
        self._calls: dict[int, _Call] = {}
        self._finish: str | None = None
        self._usage: Any = None
        self.finished = False

    @property
    def output(self) -> list[dict[str, Any]]:
        output: list[dict[str, Any]] = self.response["output"]
        return output

    def data(self, data: dict[str, Any]) -> bytes:
        """The events one chat chunk (framed by gateway/sse.py) becomes."""
        return self._start() + self._chunk(data)

    def done(self) -> bytes:
        """The events that end the stream, at the chat stream's [DONE]."""
        return self._start() + self._done()

    def failed(self, err: GatewayError) -> bytes:
        """The events that end a stream broken after its first byte."""
        error = {"code": err.code or "server_error", "message": err.message}
        self.response.update(status="failed", error=error)
        # The fields of the API's error event, and an `error` object: the openai SDK raises
        # on an `error` event only when its data carries one.
        error_event = self._event("error", code=error["code"], message=err.message, param=None,
                                  error={**error, "type": err.type})  # fmt: skip
        return self._start() + error_event + self._event("response.failed", response=self.response)

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._event("response.created", response=self.response) + self._event(
            "response.in_progress", response=self.response
        )

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _chunk(self, data: dict[str, Any]) -> bytes:
        if isinstance(data.get("usage"), dict):
            self._usage = data["usage"]
        out = bytearray()
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # a Response has one output: the first choice
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out += self._part_delta("output_text", str(delta["content"]))
            if delta.get("refusal"):
                out += self._part_delta("refusal", str(delta["refusal"]))
            for call in delta.get("tool_calls") or ():
                out += self._call_delta(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return bytes(out)

    def _part_delta(self, kind: str, text: str) -> bytes:
        """A delta of the message's text or refusal, opening the message and the part first."""
        out = b""
        if self._parts is None:
            self._parts, self._message_id = [], new_id("msg")
            self._message_index = len(self.output)
            self.output.append(message_item(self._message_id, [], "in_progress"))
            out += self._event(
                "response.output_item.added",
                output_index=self._message_index,
                item=message_item(self._message_id, [], "in_progress"),
            )
        if not self._parts or self._parts[-1][0] != kind:
            out += self._close_part()
            self._parts.append((kind, ""))
            out += self._event("response.content_part.added", part=_part(kind, ""),
                               **self._where())  # fmt: skip
        self._parts[-1] = (kind, self._parts[-1][1] + text)
        if kind == "refusal":
            return out + self._event("response.refusal.delta", delta=text, **self._where())
        return out + self._event("response.output_text.delta", delta=text, logprobs=[],
                                 **self._where())  # fmt: skip

    def _where(self) -> dict[str, Any]:
        index = len(self._parts or ()) - 1
        return {"item_id": self._message_id, "output_index": self._message_index,
                "content_index": max(index, 0)}  # fmt: skip

    def _close_part(self) -> bytes:
        """The events that end the open message's last part, if it has one."""
        if not self._parts:
            return b""
        kind, text = self._parts[-1]
        if kind == "refusal":
            out = self._event("response.refusal.done", refusal=text, **self._where())
        else:
            out = self._event("response.output_text.done", text=text, logprobs=[],
                              **self._where())  # fmt: skip
        return out + self._event("response.content_part.done", part=_part(kind, text),
                                 **self._where())  # fmt: skip

    def _call_delta(self, delta: dict[str, Any]) -> bytes:
        out = b""
        index = delta.get("index", 0)
        function = delta.get("function") or {}
        call = self._calls.get(index)
        if call is None:
            out += self._close_message()
            call = _Call(new_id("fc"), str(delta.get("id") or new_id("call")),
                         str(function.get("name") or ""), len(self.output))  # fmt: skip
            self._calls[index] = call
            item = function_call_item(call.item_id, call.call_id, call.name, "", "in_progress")
            self.output.append(item)
            out += self._event(
                "response.output_item.added", output_index=call.output_index, item=item
            )
        arguments = function.get("arguments") or ""
        if arguments:
            call.arguments += arguments
            out += self._event(
                "response.function_call_arguments.delta",
                item_id=call.item_id,
                output_index=call.output_index,
                delta=arguments,
            )
        return out

    def _close_message(self) -> bytes:
        if self._parts is None:
            return b""
        out = self._close_part()
        parts, self._parts = self._parts, None
        item = message_item(self._message_id, [_part(k, t) for k, t in parts], "completed")
        self.output[self._message_index] = item
        return out + self._event(
            "response.output_item.done", output_index=self._message_index, item=item
        )

    def _done(self) -> bytes:
        out = self._close_message()
        for call in self._calls.values():
            item = function_call_item(call.item_id, call.call_id, call.name, call.arguments,
                                      "completed")  # fmt: skip
            self.output[call.output_index] = item
            out += self._event(
                "response.function_call_arguments.done",
                item_id=call.item_id,
                output_index=call.output_index,
                name=call.name,
                arguments=call.arguments,
            )
            out += self._event(
                "response.output_item.done", output_index=call.output_index, item=item
            )
        finish(self.response, self._finish, self._usage)
        self.finished = True
        kind = "response.completed" if self.response["status"] == "completed" else (
            "response.incomplete")  # fmt: skip
        return out + self._event(kind, response=self.response)


def _part(kind: str, text: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": text} if kind == "refusal" else output_text(text)


class NativeEvents(ResponseEvents):
    """An upstream's own Responses stream (a model with wire.responses), passed through event by
    event: its Response objects under the gateway's id and the client's model name, its end
    (`response.completed` or `.incomplete`, with no [DONE]) kept for the classifier and the
    store. Its `error` and `response.failed` events are failures (gateway/streaming.py), ended
    with this class's own `failed`, numbered after the upstream's last event."""

    def __init__(self, response_id: str, request: dict[str, Any], body: dict[str, Any]) -> None:
        super().__init__(response_id, request)
        self.body = body  # the Responses request the upstream gets
        self._id, self._request = response_id, request

    def data(self, data: dict[str, Any]) -> bytes:
        self._started = True
        sequence = data.get("sequence_number")
        self._sequence = sequence + 1 if isinstance(sequence, int) else self._sequence + 1
        kind = str(data.get("type") or "")
        if isinstance(data.get("response"), dict):
            self.response = renamed(data["response"], self._id, self._request)
            data = {**data, "response": self.response}
            self.finished = kind in TERMINAL
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def done(self) -> bytes:
        raise UpstreamError("protocol", "upstream sent [DONE] before response.completed")

    def completion(self) -> dict[str, Any]:
        """The finished Response, as the chat completion the classifier and counters read."""
        return as_completion(self.response)
