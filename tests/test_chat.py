"""Chat completions through the gateway, with the official openai SDK over real HTTP."""

from __future__ import annotations

import httpx
import openai
import pytest

from gateway.app import Floorgate
from tests.conftest import UPSTREAM_KEY, client_for
from tests.fake_upstream import FakeUpstream

USER = [{"role": "user", "content": "Summarize the ticket."}]


def test_workflows_route_by_the_tree(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="workflow/bulk-summarization", messages=USER
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "fake answer"
    assert raw.headers["x-floorgate-route"] == "capability-first"
    assert raw.headers["x-floorgate-model"] == "fast"
    assert raw.headers["x-floorgate-workflow"] == "bulk-summarization"
    assert raw.headers["x-floorgate-request-id"].startswith("fg-")
    assert len(raw.headers["x-floorgate-policy-version"]) == 12

    raw = client.chat.completions.with_raw_response.create(
        model="workflow/deploy-pipeline", messages=USER
    )
    assert raw.headers["x-floorgate-route"] == "calibration-first"
    assert raw.headers["x-floorgate-model"] == "careful"


def test_unknown_workflow_routes_as_the_default(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="workflow/no-such-thing", messages=USER
    )
    assert raw.headers["x-floorgate-workflow"] == "deploy-pipeline"
    assert raw.headers["x-floorgate-route"] == "calibration-first"


def test_header_and_metadata_identify_the_workflow(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="route/capability-first",
        messages=USER,
        extra_headers={"X-Floorgate-Workflow": "bulk-summarization"},
    )
    assert raw.headers["x-floorgate-route"] == "capability-first"
    raw = client.chat.completions.with_raw_response.create(
        model="route/capability-first",
        messages=USER,
        metadata={"workflow": "bulk-summarization"},
    )
    assert raw.headers["x-floorgate-workflow"] == "bulk-summarization"


def test_caller_may_tighten_but_never_loosen(client: openai.OpenAI) -> None:
    # No workflow named: the default (calibration-first) holds despite asking for capability.
    raw = client.chat.completions.with_raw_response.create(
        model="route/capability-first", messages=USER
    )
    assert raw.headers["x-floorgate-route"] == "calibration-first"
    raw = client.chat.completions.with_raw_response.create(
        model="route/calibration-first",
        messages=USER,
        extra_headers={"X-Floorgate-Workflow": "bulk-summarization"},
    )
    assert raw.headers["x-floorgate-route"] == "calibration-first"


def test_key_bound_to_one_workflow_cannot_be_loosened(gateway: str) -> None:
    with client_for(gateway, "key-deploy") as bound:
        for kwargs in (
            {"extra_headers": {"X-Floorgate-Workflow": "bulk-summarization"}},
            {"metadata": {"workflow": "bulk-summarization"}},
            {},
        ):
            raw = bound.chat.completions.with_raw_response.create(
                model="workflow/bulk-summarization", messages=USER, **kwargs
            )
            assert raw.headers["x-floorgate-workflow"] == "deploy-pipeline"
            assert raw.headers["x-floorgate-route"] == "calibration-first"


def test_key_bound_to_a_list_may_use_only_that_list(gateway: str) -> None:
    with client_for(gateway, "key-two") as two:
        raw = two.chat.completions.with_raw_response.create(
            model="workflow/bulk-summarization", messages=USER
        )
        assert raw.headers["x-floorgate-route"] == "capability-first"
        with pytest.raises(openai.PermissionDeniedError) as info:
            two.chat.completions.create(model="workflow/deploy-pipeline", messages=USER)
        assert "may not use workflow 'deploy-pipeline'" in info.value.message


def test_missing_or_wrong_key_is_401(gateway: str) -> None:
    with client_for(gateway, "not-a-key") as wrong, pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="workflow/deploy-pipeline", messages=USER)
    response = httpx.post(f"{gateway}/v1/chat/completions", json={"model": "x", "messages": USER})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"api_base": "http://attacker.example"}, "api_base"),
        ({"base_url": "http://attacker.example"}, "base_url"),
        ({"litellm_params": {"api_key": "x"}}, "litellm_params"),
        ({"stream_options": {"include_usage": True, "headers": {"x": "y"}}}, "headers"),
    ],
)
def test_steering_fields_are_refused_by_name(
    client: openai.OpenAI, extra: dict[str, object], field: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="workflow/deploy-pipeline", messages=USER, extra_body=extra
        )
    assert info.value.status_code == 400
    assert field in info.value.message
    assert isinstance(info.value.body, dict) and field in str(info.value.body.get("param"))


def test_steering_field_nested_in_a_message_is_refused(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "hi", "api_key": "sk-x"}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="workflow/deploy-pipeline",
            messages=messages,  # type: ignore[arg-type]
        )
    assert "messages[0].api_key" in info.value.message


def test_tool_schema_may_name_a_property_headers(client: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "fetch",
            "parameters": {"type": "object", "properties": {"headers": {"type": "object"}}},
        },
    }
    completion = client.chat.completions.create(
        model="route/tool",
        messages=USER,
        tools=[tool],  # type: ignore[list-item]
    )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "fetch"  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"


def test_unknown_model_is_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=USER)
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="openai/http://evil", messages=USER)


def test_malformed_and_incomplete_bodies_get_clear_400s(gateway: str) -> None:
    headers = {"authorization": "Bearer key-any", "content-type": "application/json"}
    response = httpx.post(f"{gateway}/v1/chat/completions", content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]
    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "workflow/deploy-pipeline", "temprature": 1, "messages": USER},
        headers=headers,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "temprature"
    response = httpx.post(
        f"{gateway}/v1/chat/completions", json={"model": "route/tool"}, headers=headers
    )
    assert response.json()["error"]["param"] == "messages"


def test_upstream_gets_the_policy_model_and_key_never_client_headers(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    httpx.delete(f"{upstream.root_url}/_requests")
    client.chat.completions.create(
        model="workflow/deploy-pipeline",
        messages=USER,
        metadata={"workflow": "deploy-pipeline"},
        temperature=0.2,
        seed=7,
        extra_headers={"X-Client-Secret": "do-not-forward"},
    )
    [seen] = httpx.get(f"{upstream.root_url}/_requests").json()
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "x-client-secret" not in headers
    assert seen["body"]["model"] == "ok"
    assert seen["body"]["temperature"] == 0.2 and seen["body"]["seed"] == 7
    assert "metadata" not in seen["body"]


def test_models_lists_workflows_routes_and_exposed_models(gateway: str) -> None:
    with client_for(gateway, "key-two") as two:
        ids = {m.id for m in two.models.list()}
    assert {"workflow/bulk-summarization", "workflow/draft-generation"} <= ids
    assert "workflow/deploy-pipeline" not in ids  # this key may not use it
    assert {"route/capability-first", "route/calibration-first", "careful"} <= ids


def test_body_over_the_limit_is_413(gateway_app: Floorgate, gateway: str) -> None:
    limit = gateway_app.runtime.settings.max_body_bytes
    big = [{"role": "user", "content": "x" * (limit + 1)}]
    with client_for(gateway) as c, pytest.raises(openai.APIStatusError) as info:
        c.chat.completions.create(model="workflow/deploy-pipeline", messages=big)  # type: ignore[arg-type]
    assert info.value.status_code == 413


def test_unknown_path_is_an_openai_shaped_404(gateway: str) -> None:
    response = httpx.get(f"{gateway}/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("change", "param", "words"),
    [
        ({"temperature": "hot"}, "temperature", "expected a number, but got a string"),
        ({"temperature": 3}, "temperature", "expected a value <= 2"),
        ({"n": 0}, "n", "expected a value >= 1"),
        ({"max_tokens": -5}, "max_tokens", "expected a value >= 1"),
        ({"max_tokens": True}, "max_tokens", "expected an integer, but got a boolean"),
        ({"stream": "yes"}, "stream", "expected a boolean"),
        ({"stop": [1, 2]}, "stop", "a string or an array of strings"),
        ({"tools": [{"type": "function"}]}, "tools[0].function", "Missing required"),
        ({"tool_choice": "always"}, "tool_choice", "'none', 'auto', 'required'"),
        ({"stream_options": {"include_usage": True}}, "stream_options", "only allowed when"),
        ({"messages": ["hi"]}, "messages[0]", "expected an object, but got a string"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "'wizard'"),
        ({"messages": [{"content": "x"}]}, "messages[0].role", "Missing required"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "Missing required"),
        ({"messages": [{"role": "user", "content": 7}]}, "messages[0].content", "got a number"),
        (
            {"messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "messages[0].content[0]",
            "'type'",
        ),
        ({"messages": [{"role": "tool", "content": "42"}]}, "messages[0].tool_call_id", "Missing"),
    ],
)
def test_a_malformed_request_is_refused_by_name_before_any_model_is_called(
    client: openai.OpenAI,
    upstream: FakeUpstream,
    change: dict[str, object],
    param: str,
    words: str,
) -> None:
    calls = upstream.seen
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="workflow/deploy-pipeline", messages=USER, extra_body=change
        )
    assert info.value.status_code == 400
    assert isinstance(info.value.body, dict)
    assert (info.value.body["type"], info.value.body["param"]) == ("invalid_request_error", param)
    assert words in info.value.message
    assert upstream.seen == calls  # no model was asked


def test_optional_fields_may_be_null_and_assistant_turns_may_carry_only_tool_calls(
    client: openai.OpenAI,
) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "ok"}]},
    ]
    completion = client.chat.completions.create(
        model="workflow/deploy-pipeline",
        messages=messages,  # type: ignore[arg-type]
        extra_body={"temperature": None, "stop": None, "tools": None, "seed": 7},
    )
    assert completion.choices[0].message.content == "fake answer"


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = {"a": [value]}
    return value


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"metadata": {"deep": nested(150)}}, "metadata.deep"),
        ({"stream_options": nested(300)}, "stream_options"),
    ],
    ids=["metadata", "beyond-orjson"],
)
def test_json_nested_too_deep_is_a_400_naming_the_field(
    client: openai.OpenAI, extra: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="workflow/deploy-pipeline", messages=USER, extra_body=extra
        )
    assert "deeper than 128 levels" in info.value.message
    assert isinstance(info.value.body, dict)
    assert str(info.value.body.get("param")).startswith(param)


def test_a_deep_tool_schema_is_a_400_too(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"x": nested(300, {"type": "string"})}}
    tool = {"type": "function", "function": {"name": "deep", "parameters": schema}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="route/tool",
            messages=USER,
            tools=[tool],  # type: ignore[list-item]
        )
    assert str(info.value.body.get("param")).startswith("tools[0].function.parameters")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("metadata", "param"),
    [
        ({"rows": [0] * 4_000_000}, None),  # refused from its bytes, before parsing
        ({"rows": ["a,"] * 500_000}, "metadata.rows"),  # commas in strings: parsed, then walked
        ({"r": [[0] * 100_000 for _ in range(5)]}, None),
    ],
    ids=["flat-4M", "strings", "split-over-lists"],
)
def test_too_many_list_items_is_a_400_that_says_the_limit(
    client: openai.OpenAI, metadata: dict[str, object], param: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="workflow/deploy-pipeline", messages=USER, extra_body={"metadata": metadata}
        )
    assert "more than 400000 list items and object members" in info.value.message
    assert info.value.code == "too_many_items"
    assert info.value.body.get("param") == param  # type: ignore[union-attr]


def test_commas_inside_a_long_string_are_not_items(client: openai.OpenAI) -> None:
    prose = "a," * 420_000  # 420,000 commas, all in one string (the fake takes up to 1 MiB)
    completion = client.chat.completions.create(
        model="workflow/deploy-pipeline", messages=[{"role": "user", "content": prose}]
    )
    assert completion.choices[0].message.content == "fake answer"


def test_steering_fields_deep_in_lists_are_still_found(client: openai.OpenAI) -> None:
    metadata = {"rows": [0] * 10_000 + [[{"ok": 1}, {"base_url": "http://attacker.example"}]]}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="workflow/deploy-pipeline", messages=USER, extra_body={"metadata": metadata}
        )
    assert info.value.body.get("param") == "metadata.rows[10000][1].base_url"  # type: ignore[union-attr]
