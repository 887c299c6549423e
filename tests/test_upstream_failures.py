"""Retries, fallbacks, timeouts and broken streams: the same behaviour on both upstream paths."""

from __future__ import annotations

import time

import openai
import pytest
from prometheus_client import CollectorRegistry

from gateway.app import Floorgate
from tests.conftest import count, counted

USER = [{"role": "user", "content": "Fix the flaky test."}]
PATHS = ["", "-litellm"]  # route-name suffix: direct path, litellm path


def registry(app: Floorgate) -> CollectorRegistry:
    return app.runtime.metrics.registry


@pytest.mark.parametrize("path", PATHS)
def test_a_failed_model_falls_back_to_the_next_in_the_pool(
    client: openai.OpenAI, gateway_app: Floorgate, path: str
) -> None:
    route = f"fails-then-ok{path}"
    labels = {"route": route, "model": f"broken{path}"}
    before = registry(gateway_app).get_sample_value("floorgate_fallbacks_total", labels) or 0
    raw = client.chat.completions.with_raw_response.create(model=f"route/{route}", messages=USER)
    assert raw.parse().choices[0].message.content == "fake answer"
    assert raw.headers["x-floorgate-model"] == "careful"
    after = registry(gateway_app).get_sample_value("floorgate_fallbacks_total", labels)
    assert after == before + 1


@pytest.mark.parametrize("path", PATHS)
def test_a_stream_falls_back_before_its_first_byte(client: openai.OpenAI, path: str) -> None:
    stream = client.chat.completions.create(
        model=f"route/fails-then-ok{path}", messages=USER, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "fake answer"


@pytest.mark.parametrize("path", PATHS)
def test_when_every_model_fails_the_client_gets_502(client: openai.OpenAI, path: str) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=f"route/only-broken{path}", messages=USER)
    assert info.value.status_code == 502
    assert info.value.type == "upstream_error"


@pytest.mark.parametrize("path", PATHS)
def test_upstream_rate_limit_is_429_with_retry_after(client: openai.OpenAI, path: str) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=f"route/rate-limited{path}", messages=USER)
    assert info.value.response.headers["retry-after"] == "1"


@pytest.mark.parametrize("path", PATHS)
def test_a_hanging_upstream_times_out_with_504(client: openai.OpenAI, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=f"route/hangs{path}", messages=USER)
    assert info.value.status_code == 504
    assert time.monotonic() - started < 10  # the model's 1 s budget, not the client's


@pytest.mark.parametrize("path", PATHS)
def test_a_stream_that_does_not_start_times_out_at_its_first_token_budget(
    client: openai.OpenAI, path: str
) -> None:
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=f"route/first-token{path}", messages=USER, stream=True)
    assert info.value.status_code == 504
    assert time.monotonic() - started < 10  # first_token_timeout_s (1 s), not timeout_s (120 s)


@pytest.mark.parametrize("path", PATHS)
def test_malformed_upstream_json_is_502(client: openai.OpenAI, path: str) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=f"route/malformed{path}", messages=USER)
    assert info.value.status_code == 502


@pytest.mark.parametrize("path", PATHS)
def test_a_stream_cut_after_its_first_byte_raises_in_the_sdk(
    client: openai.OpenAI, path: str
) -> None:
    stream = client.chat.completions.create(model=f"route/cut{path}", messages=USER, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert received, "the first chunks reached the client before the cut"
    assert "stream broke" in str(info.value)


@pytest.mark.parametrize("fault", ["stall", "cut", "garbled", "error"])
def test_a_stream_broken_before_its_first_byte_falls_back(
    client: openai.OpenAI, fault: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=f"route/{fault}-first", messages=USER, stream=True
    )
    said = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert (said, raw.headers["x-floorgate-model"]) == ("fake answer", "careful")


@pytest.mark.parametrize("fault", ["stall", "cut", "garbled"])
def test_a_stream_broken_after_its_first_byte_raises_in_the_sdk(
    client: openai.OpenAI, fault: str
) -> None:
    stream = client.chat.completions.create(
        model=f"route/{fault}-later", messages=USER, stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError, match="stream broke"):
        for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "fake" in received


@pytest.mark.parametrize("path", PATHS)
def test_tool_calls_pass_through(client: openai.OpenAI, path: str) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    completion = client.chat.completions.create(
        model=f"route/tool{path}",
        messages=USER,
        tools=[tool],  # type: ignore[list-item]
        tool_choice="auto",
    )
    [call] = completion.choices[0].message.tool_calls or []
    assert call.function.name == "lookup"  # type: ignore[union-attr]
    assert call.function.arguments == '{"x": 1}'  # type: ignore[union-attr]


def test_litellm_path_answers_like_the_direct_path(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="route/via-litellm", messages=USER)
    assert completion.choices[0].message.content == "fake answer"
    stream = client.chat.completions.create(
        model="route/via-litellm",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fake answer"
    assert chunks[-1].usage is not None


def test_a_retryable_failure_is_retried_on_the_same_model(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="route/flaky", messages=USER)
    assert raw.headers["x-floorgate-model"] == "flaky"


def test_upstream_client_error_is_not_hidden_by_a_fallback(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="route/rejects", messages=USER)
    assert info.value.code == "upstream_rejected"


def test_a_model_without_its_key_is_503_naming_the_variable(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="route/keyless", messages=USER)
    assert info.value.status_code == 503
    assert "FLOORGATE_TEST_UNSET_KEY" in info.value.message


def test_streams_arrive_incrementally_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="workflow/bulk-summarization",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    arrivals: list[float] = []
    pieces: list[str] = []
    usage = None
    for chunk in stream:
        arrivals.append(time.monotonic())
        pieces.extend(c.delta.content or "" for c in chunk.choices)
        usage = chunk.usage or usage
    assert "".join(pieces) == "fake answer"
    assert usage is not None and usage.total_tokens > 0
    assert arrivals[-1] - arrivals[0] > 0.005  # chunks were not buffered into one write


def test_metrics_count_requests_by_workflow_route_and_model(
    client: openai.OpenAI, gateway_app: Floorgate
) -> None:
    labels = {
        "workflow": "bulk-summarization",
        "route": "capability-first",
        "model": "fast",
        "code": "200",
        "stream": "false",
    }
    before = count(registry(gateway_app), "floorgate_requests_total", **labels)
    client.chat.completions.create(model="workflow/bulk-summarization", messages=USER)
    after = counted(registry(gateway_app), "floorgate_requests_total", before + 1, **labels)
    assert after == before + 1


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_tokens_time_to_first_token_and_overhead_are_measured(
    client: openai.OpenAI, gateway_app: Floorgate, stream: bool
) -> None:
    reg = registry(gateway_app)
    where = {"workflow": "bulk-summarization", "route": "capability-first", "model": "fast"}
    output = {**where, "token_type": "output"}
    before = count(reg, "floorgate_tokens_total", **output)
    overhead = {"route": "capability-first", "model": "fast"}
    seen = count(reg, "floorgate_overhead_seconds_count", **overhead)
    first_tokens = count(reg, "floorgate_time_to_first_token_seconds_count", **where)
    if stream:
        options = {"include_usage": True}
        for _ in client.chat.completions.create(
            model="workflow/bulk-summarization", messages=USER, stream=True, stream_options=options
        ):
            pass
    else:
        client.chat.completions.create(model="workflow/bulk-summarization", messages=USER)
    # the fake upstream reports 2 completion tokens per answer
    assert counted(reg, "floorgate_tokens_total", before + 2, **output) == before + 2
    assert counted(reg, "floorgate_overhead_seconds_count", seen + 1, **overhead) == seen + 1
    after = count(reg, "floorgate_time_to_first_token_seconds_count", **where)
    assert after == first_tokens + (1 if stream else 0)
    assert reg.get_sample_value("floorgate_in_flight_requests") == 0
