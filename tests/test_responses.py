"""POST /v1/responses translated to chat completions for upstreams that lack the Responses API,
with the official openai SDK over real HTTP: text, tools, structured output, stored responses
and previous_response_id, per API key."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import client_for
from tests.fake_upstream import FakeUpstream

LOOKUP = {
    "type": "function",
    "name": "lookup",
    "description": "Look a ticket up.",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
}


def _chat_bodies(upstream: FakeUpstream, seen: int) -> list[dict[str, Any]]:
    return [r["body"] for r in upstream.since(seen) if r["path"] == "/v1/chat/completions"]


def test_a_text_response_routes_like_chat(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    seen = upstream.seen
    raw = client.responses.with_raw_response.create(
        model="workflow/bulk-summarization",
        instructions="Be brief.",
        input="Summarize the ticket.",
        max_output_tokens=50,
    )
    response = raw.parse()
    assert response.output_text == "fake answer"
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.model == "workflow/bulk-summarization"
    assert response.usage is not None and response.usage.output_tokens == 2
    assert response.usage.total_tokens == 7
    assert raw.headers["x-floorgate-route"] == "capability-first"
    assert raw.headers["x-floorgate-model"] == "fast"
    assert raw.headers["x-floorgate-abstained"] == "false"
    [sent] = _chat_bodies(upstream, seen)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Summarize the ticket."},
    ]
    assert sent["max_tokens"] == 50  # max_output_tokens, in the upstream's dialect


def test_a_tool_round_trip_with_previous_response_id(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    first = client.responses.create(
        model="route/tool",
        input='Look the ticket up. ARGS: {"q": "FG-1"}',
        tools=[LOOKUP],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "lookup"},
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "lookup"
    assert json.loads(call.arguments) == {"q": "FG-1"}
    seen = upstream.seen
    second = client.responses.create(
        model="workflow/bulk-summarization",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "open"}],
    )
    assert second.output_text == "fake answer"
    assert second.previous_response_id == first.id
    [sent] = _chat_bodies(upstream, seen)
    user, assistant, tool = sent["messages"]
    assert user["role"] == "user"
    assert assistant["tool_calls"][0]["function"]["name"] == "lookup"
    assert assistant["tool_calls"][0]["id"] == call.call_id
    assert tool == {"role": "tool", "tool_call_id": call.call_id, "content": "open"}


def test_input_items_and_structured_output_are_translated(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    seen = upstream.seen
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    client.responses.create(
        model="route/no-usage",
        input=[
            {"role": "developer", "content": "Answer in JSON."},
            {"role": "user", "content": [{"type": "input_text", "text": "Is it fixed?"}]},
        ],
        text={"format": {"type": "json_schema", "name": "verdict", "schema": schema}},
    )
    [sent] = _chat_bodies(upstream, seen)
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in JSON."},  # 'developer' only to provider openai
        {"role": "user", "content": "Is it fixed?"},
    ]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "schema": schema},
    }


def test_a_stored_response_is_readable_only_by_its_key(gateway: str) -> None:
    with client_for(gateway, "key-any") as mine, client_for(gateway, "key-two") as theirs:
        created = mine.responses.create(model="workflow/deploy-pipeline", input="Plan it.")
        fetched = mine.responses.retrieve(created.id)
        assert fetched.id == created.id and fetched.output_text == created.output_text
        with pytest.raises(openai.NotFoundError):
            theirs.responses.retrieve(created.id)
        with pytest.raises(openai.NotFoundError) as info:
            theirs.responses.create(
                model="workflow/bulk-summarization", previous_response_id=created.id, input="Go."
            )
        assert info.value.body["param"] == "previous_response_id"  # type: ignore[index]
        unstored = mine.responses.create(
            model="workflow/deploy-pipeline", input="Plan it.", store=False
        )
        with pytest.raises(openai.NotFoundError):
            mine.responses.retrieve(unstored.id)


def test_malformed_responses_requests_are_refused_by_name(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    seen = upstream.seen
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input": "x", "api_base": "http://evil"}, "api_base"),
        ({"input": "x", "frobnicate": 1}, "frobnicate"),
        ({"input": []}, "input"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        (
            {
                "input": "x",
                "tools": [{"type": "web_search"}],
                "tool_choice": {"type": "web_search"},
            },
            "tool_choice",
        ),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"input": [{"role": "user", "content": "x", "headers": {}}]}, "input[0].headers"),
        # These were 500s (schemathesis over /openapi.json): read as an iterable, an object.
        ({"input": "x", "tools": 5}, "tools"),
        ({"input": "x", "reasoning": "high"}, "reasoning"),
        ({"input": "x", "reasoning": [1]}, "reasoning"),
    ]
    for extra, param in cases:
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="workflow/deploy-pipeline", extra_body=extra)
        assert info.value.body["param"] == param, extra  # type: ignore[index]
    assert upstream.seen == seen


def test_a_response_is_in_the_ledger_for_feedback(gateway: str, client: openai.OpenAI) -> None:
    raw = client.responses.with_raw_response.create(model="workflow/deploy-pipeline", input="Go.")
    request_id = raw.headers["x-floorgate-request-id"]
    for _ in range(50):  # the ledger writes in the background
        reply = httpx.post(
            f"{gateway}/v1/feedback",
            json={"request_id": request_id, "outcome": "merged"},
            headers={"authorization": "Bearer key-any"},
            timeout=10,
        )
        if reply.status_code != 404:
            break
        time.sleep(0.05)
    assert reply.status_code == 200, reply.text


def _events(stream: Any) -> list[Any]:
    return list(stream)


def test_a_streamed_text_response_is_the_typed_event_sequence(client: openai.OpenAI) -> None:
    events = _events(
        client.responses.create(model="workflow/bulk-summarization", input="Go.", stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "fake answer"
    completed = events[-1].response
    assert completed.output_text == "fake answer" and completed.status == "completed"
    assert completed.usage is not None and completed.usage.output_tokens == 2


def test_a_streamed_tool_call_then_a_stored_follow_up(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    events = _events(
        client.responses.create(
            model="route/llama-tools",
            input='Look it up. ARGS: {"q": "FG-2"}',
            tools=[LOOKUP],  # type: ignore[list-item]
            stream=True,
        )
    )
    arguments = "".join(
        e.delta for e in events if e.type == "response.function_call_arguments.delta"
    )
    assert json.loads(arguments) == {"q": "FG-2"}
    [added] = [e.item for e in events if e.type == "response.output_item.added"]
    assert added.type == "function_call" and added.name == "lookup"
    [done] = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(done.arguments) == {"q": "FG-2"}
    completed = events[-1].response
    assert events[-1].type == "response.completed"
    assert completed.usage is not None and completed.usage.output_tokens > 0  # counted
    seen = upstream.seen
    follow_up = client.responses.create(
        model="workflow/bulk-summarization",
        previous_response_id=completed.id,
        input=[{"type": "function_call_output", "call_id": added.call_id, "output": "done"}],
    )
    assert follow_up.output_text == "fake answer"
    [sent] = _chat_bodies(upstream, seen)
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool"]


def test_a_streamed_refusal_is_a_refusal_part(client: openai.OpenAI) -> None:
    events = _events(client.responses.create(model="route/refuses", input="Go.", stream=True))
    kinds = [e.type for e in events]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert events[3].part.type == "refusal"
    deltas = [e.delta for e in events if e.type == "response.refusal.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "I can't help with that."
    assert kinds[-4:] == [
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    [done] = [e for e in events if e.type == "response.refusal.done"]
    assert done.refusal == "I can't help with that."
    assert "response.output_text.delta" not in kinds
    [item] = events[-1].response.output
    assert item.type == "message"
    assert [(p.type, getattr(p, "refusal", None)) for p in item.content] == [
        ("refusal", "I can't help with that.")
    ]


def test_a_stream_broken_after_its_first_byte_fails_in_the_sdk(client: openai.OpenAI) -> None:
    seen: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for event in client.responses.create(model="route/cut", input="Go.", stream=True):
            seen.append(event.type)
    assert seen[0] == "response.created"
    assert "stream broke" in info.value.message


def test_a_model_that_serves_responses_gets_them_passed_through(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    seen = upstream.seen
    first = client.responses.create(
        model="route/native", instructions="Be brief.", input="Plan it.", metadata={"team": "a"}
    )
    assert first.output_text == "native answer"
    assert first.id.startswith("resp_") and "upstream" not in first.id
    assert first.model == "route/native"
    [sent] = [r["body"] for r in upstream.since(seen)]
    assert upstream.since(seen)[0]["path"] == "/v1/responses"
    assert sent["model"] == "ok" and sent["instructions"] == "Be brief." and sent["store"] is False
    assert sent["input"] == [{"type": "message", "role": "user", "content": "Plan it."}]
    assert "metadata" not in sent  # the gateway's own (it may name the workflow)
    seen = upstream.seen
    client.responses.create(model="route/native", previous_response_id=first.id, input="Go on.")
    [follow_up] = [r["body"] for r in upstream.since(seen)]
    assert [i.get("role") for i in follow_up["input"]] == ["user", "assistant", "user"]
    # Streamed, it is passed through too: tests/test_responses_native.py.
