"""The chat stream re-told as Responses events (gateway/responses/events.py), fed chunks
directly: a message whose text is followed by a refusal gets two content parts, each opened,
streamed and closed at its own content_index."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.responses.events import ResponseEvents


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _parse(wire: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(e.split(b"\ndata: ", 1)[1]) for e in wire.split(b"\n\n") if e]


def test_text_then_a_refusal_are_two_parts_of_one_message() -> None:
    events = ResponseEvents("resp_1", {"model": "m"})
    wire = events.data(_chunk({"content": "Sure,"}))
    wire += events.data(_chunk({"refusal": "I can't"}))
    wire += events.data(_chunk({"refusal": " do that."}, "stop"))
    wire += events.done()
    parsed = _parse(wire)
    where = [(e["type"], e.get("content_index")) for e in parsed if "content_index" in e]
    assert where == [
        ("response.content_part.added", 0),
        ("response.output_text.delta", 0),
        ("response.output_text.done", 0),
        ("response.content_part.done", 0),
        ("response.content_part.added", 1),
        ("response.refusal.delta", 1),
        ("response.refusal.delta", 1),
        ("response.refusal.done", 1),
        ("response.content_part.done", 1),
    ]
    [done] = [e for e in parsed if e["type"] == "response.refusal.done"]
    assert done["refusal"] == "I can't do that."
    assert [e["sequence_number"] for e in parsed] == list(range(len(parsed)))
    [item] = parsed[-1]["response"]["output"]
    assert [p["type"] for p in item["content"]] == ["output_text", "refusal"]
    assert parsed[-1]["type"] == "response.completed"
