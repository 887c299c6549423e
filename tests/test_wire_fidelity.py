"""What OpenAI-wire upstreams differ on, made invisible to clients: the reply cap's field,
structured output, usage in streams, tool-call deltas, and upstream errors relayed with
their own code and param, without tracebacks or paths."""

from __future__ import annotations

import json

import openai
import pytest

from gateway.app import Floorgate
from tests.conftest import count, counted
from tests.fake_upstream import FakeUpstream

USER = [{"role": "user", "content": "Fix the flaky test."}]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "verdict",
        "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
        "strict": True,
    },
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]


def _sent(upstream: FakeUpstream, seen: int) -> dict[str, object]:
    bodies = [r["body"] for r in upstream.since(seen) if r["path"] == "/v1/chat/completions"]
    assert len(bodies) == 1
    body: dict[str, object] = bodies[0]
    return body


@pytest.mark.parametrize(
    ("route", "field", "dropped"),
    [("no-usage", "max_tokens", "max_completion_tokens"),  # llama.cpp and most servers
     ("openai-wire", "max_completion_tokens", "max_tokens")],  # provider openai
)  # fmt: skip
def test_the_reply_cap_reaches_the_upstream_in_the_field_it_knows(
    client: openai.OpenAI, upstream: FakeUpstream, route: str, field: str, dropped: str
) -> None:
    seen = upstream.seen
    client.chat.completions.create(model=f"route/{route}", messages=USER, max_completion_tokens=5)
    body = _sent(upstream, seen)
    assert body[field] == 5
    assert dropped not in body


@pytest.mark.parametrize(
    ("route", "role"),
    [("no-usage", "system"),  # llama-cpp-python's server answers 'developer' with a 500
     ("openai-wire", "developer")],  # provider openai
)  # fmt: skip
def test_a_developer_message_reaches_the_upstream_in_a_role_it_knows(
    client: openai.OpenAI, upstream: FakeUpstream, route: str, role: str
) -> None:
    seen = upstream.seen
    messages = [{"role": "developer", "content": "Be brief."}, *USER]
    client.chat.completions.create(model=f"route/{route}", messages=messages)  # type: ignore[arg-type]
    sent = _sent(upstream, seen)["messages"]
    assert {"role": role, "content": "Be brief."} in sent  # type: ignore[operator]
    assert sent[-1] == USER[0]  # type: ignore[index]


def test_json_schema_goes_as_json_object_with_schema_where_the_model_says_so(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    seen = upstream.seen
    client.chat.completions.create(model="route/json-object", messages=USER, response_format=SCHEMA)  # type: ignore[arg-type]
    body = _sent(upstream, seen)
    assert body["response_format"] == {
        "type": "json_object",
        "schema": SCHEMA["json_schema"]["schema"],  # type: ignore[index]
    }
    seen = upstream.seen
    client.chat.completions.create(model="route/no-usage", messages=USER, response_format=SCHEMA)  # type: ignore[arg-type]
    assert _sent(upstream, seen)["response_format"] == SCHEMA  # native: as sent


def test_json_schema_is_refused_before_any_call_where_no_model_has_it(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    seen = upstream.seen
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="route/no-schema", messages=USER, response_format=SCHEMA
        )  # type: ignore[arg-type]
    assert info.value.body["param"] == "response_format"  # type: ignore[index]
    assert upstream.seen == seen


@pytest.mark.parametrize("json_schema", ["verdict", [1]])
def test_a_json_schema_that_is_no_object_is_refused_by_name(
    client: openai.OpenAI, upstream: FakeUpstream, json_schema: object
) -> None:
    # Was a 500 on a model that takes it as json_object (its schema is read from it).
    seen = upstream.seen
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="route/json-object",
            messages=USER,  # type: ignore[arg-type]
            response_format={"type": "json_schema", "json_schema": json_schema},  # type: ignore[typeddict-item]
        )
    assert info.value.body["param"] == "response_format.json_schema"  # type: ignore[index]
    assert upstream.seen == seen


def test_a_usage_chunk_is_synthesised_when_the_upstream_sends_none(
    client: openai.OpenAI, gateway_app: Floorgate
) -> None:
    registry = gateway_app.runtime.metrics.registry
    labels = {"workflow": "deploy-pipeline", "route": "no-usage", "model": "no-usage"}
    output = {**labels, "token_type": "output"}
    before = count(registry, "floorgate_tokens_total", **output)
    stream = client.chat.completions.create(
        model="route/no-usage",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    # "fake answer" is 11 characters: 3 tokens at four characters a token
    assert usage.completion_tokens == 3
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert counted(registry, "floorgate_tokens_total", before + 3, **output) == before + 3


def test_the_upstreams_own_usage_chunk_is_not_doubled(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="workflow/bulk-summarization",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    usages = [c.usage for c in stream if c.usage is not None]
    assert len(usages) == 1 and usages[0].completion_tokens == 2  # the fake's own count


def test_a_streamed_tool_call_names_its_function_once(client: openai.OpenAI) -> None:
    args = '{"q": "flaky test in CI"}'
    stream = client.chat.completions.create(
        model="route/llama-tools",
        messages=[{"role": "user", "content": f"Look it up. ARGS: {args}"}],
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "lookup"}},
        stream=True,
    )
    name, arguments, ids = "", "", []
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                name += (call.function and call.function.name) or ""
                arguments += (call.function and call.function.arguments) or ""
                ids += [call.id] if call.id else []
    assert name == "lookup"
    assert json.loads(arguments) == {"q": "flaky test in CI"}
    assert ids == ["call_1"]


@pytest.mark.parametrize("path", ["", "-litellm"])
def test_context_length_exceeded_is_relayed_with_its_code_and_param(
    client: openai.OpenAI, gateway_app: Floorgate, upstream: FakeUpstream, path: str
) -> None:
    registry = gateway_app.runtime.metrics.registry
    model = f"too-long{path}"
    failures = count(registry, "floorgate_upstream_errors_total", model=model, kind="status")
    seen = upstream.seen
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model=f"route/{model}", messages=USER, stream=stream)
        assert info.value.code == "context_length_exceeded"
        assert info.value.param == "messages"
        assert "maximum context length" in info.value.message
    # not retried, no fallback to `careful`, and not an upstream failure
    assert [r["body"]["model"] for r in upstream.since(seen)] == ["toolong", "toolong"]
    after = count(registry, "floorgate_upstream_errors_total", model=model, kind="status")
    assert after == failures
    assert gateway_app.runtime.health.healthy(model)


def test_upstream_error_text_carries_no_traceback_or_path(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="route/traceback", messages=USER)
    message = info.value.message
    assert "json_schema is not supported" in message
    assert "Traceback" not in message
    assert "/home/" not in message and "site-packages" not in message and ".py" not in message
