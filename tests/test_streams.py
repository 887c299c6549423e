"""Streams through the gateway with the openai SDK: whatever valid SSE framing the upstream
uses, the relay, the contract filter and the classifier read the same events; only a whole
[DONE] event ends a stream; an error inside a 200 stream is a failure, redacted: before the
first byte it falls back to the next model, after it the SDK raises."""

from __future__ import annotations

import httpx
import openai
import pytest
from prometheus_client import CollectorRegistry

from gateway.app import Floorgate
from gateway.policy_series import FAILURE_KINDS
from tests.conftest import UPSTREAM_KEY, count, counted
from tests.fake_upstream import FakeUpstream

PATHS = ["", "-litellm"]  # route-name suffix: direct path, litellm path
TRICKY = "Stop when you see data: [DONE] in the log."
TOOL = {"type": "function", "function": {"name": "grep", "parameters": {"type": "object"}}}


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("path", PATHS)
def test_done_inside_the_text_does_not_end_the_stream(client: openai.OpenAI, path: str) -> None:
    # With a tool call, the fake sends the text as one chunk: `data: [DONE]` verbatim in it.
    stream = client.chat.completions.create(
        model=f"route/tool{path}",
        messages=user(f'SAY: {TRICKY} ARGS: {{"x": "data: [DONE]"}}'),  # type: ignore[arg-type]
        tools=[TOOL],  # type: ignore[list-item]
        stream=True,
    )
    chunks = [c for c in stream if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == TRICKY
    calls = [t for c in chunks for t in c.choices[0].delta.tool_calls or []]
    arguments = "".join(t.function.arguments or "" for t in calls if t.function)
    assert arguments == '{"x": "data: [DONE]"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("framing", ["crlf", "cr"])
def test_contract_translation_reads_crlf_and_cr_framed_streams(
    client: openai.OpenAI, framing: str
) -> None:
    reason = "The ticket does not say which region to deploy."
    stream = client.chat.completions.create(
        model=f"route/contract-translate-{framing}",
        messages=user(f'ARGS: {{"reason": "{reason}", "kind": "clarification"}}'),  # type: ignore[arg-type]
        stream=True,
    )
    chunks = [c for c in stream if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == reason
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_data_without_a_space_is_classified(client: openai.OpenAI, gateway_app: Floorgate) -> None:
    registry = gateway_app.runtime.metrics.registry
    labels = {"workflow": "deploy-pipeline", "route": "refuses-nospace", "model": "refusal-nospace"}
    before = count(registry, "floorgate_classified_total", **labels, label="abstain")
    stream = client.chat.completions.create(
        model="route/refuses-nospace", messages=user("Do it."), stream=True
    )
    refusal = "".join(c.choices[0].delta.refusal or "" for c in stream if c.choices)  # type: ignore[attr-defined]
    assert refusal == "I can't help with that."
    after = counted(registry, "floorgate_classified_total", before + 1, **labels, label="abstain")
    assert after == before + 1


def test_a_pooled_connection_is_reused_when_the_body_ends_after_done(
    client: openai.OpenAI, gateway_app: Floorgate, upstream: FakeUpstream
) -> None:
    registry = gateway_app.runtime.metrics.registry
    labels = {"workflow": "deploy-pipeline", "route": "late-end", "model": "late-end"}
    seen = upstream.seen
    for _ in range(2):
        before = count(registry, "floorgate_requests_total", **labels, code="200", stream="true")
        stream = client.chat.completions.create(
            model="route/late-end", messages=user("Hi."), stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        # The relay is done with the upstream once it has counted the request.
        where = {**labels, "code": "200", "stream": "true"}
        counted(registry, "floorgate_requests_total", before + 1, **where)
    first, second = upstream.since(seen)
    assert first["peer"] == second["peer"]  # the same connection, no new handshake


def test_an_error_event_inside_a_200_stream_is_a_redacted_failure(
    client: openai.OpenAI, gateway_app: Floorgate, upstream: FakeUpstream
) -> None:
    registry = gateway_app.runtime.metrics.registry
    labels = {"workflow": "deploy-pipeline", "route": "inband-error", "model": "inband-error"}
    before = count(registry, "floorgate_classified_total", **labels, label="answer")
    raw = httpx.post(
        f"{str(client.base_url).rstrip('/')}/chat/completions",
        headers={"Authorization": "Bearer key-any"},
        json={"model": "route/inband-error", "messages": user("Hi."), "stream": True},
    )
    assert UPSTREAM_KEY not in raw.text
    assert UPSTREAM_KEY[8:20] not in raw.text
    stream = client.chat.completions.create(
        model="route/inband-error", messages=user("Hi."), stream=True
    )
    with pytest.raises(openai.APIError, match="stream broke") as info:
        list(stream)
    assert UPSTREAM_KEY not in str(info.value)
    assert count(registry, "floorgate_classified_total", **labels, label="answer") == before


def errors(registry: CollectorRegistry, model: str) -> float:
    """The model's failed upstream calls, of every kind (litellm maps an in-band error to a
    status, the direct path calls it a protocol failure)."""
    name = "floorgate_upstream_errors_total"
    return sum(count(registry, name, model=model, kind=kind) for kind in FAILURE_KINDS)


@pytest.mark.parametrize("path", PATHS)
def test_an_error_event_before_the_first_byte_falls_back_to_the_next_model(
    client: openai.OpenAI, gateway_app: Floorgate, path: str
) -> None:
    registry = gateway_app.runtime.metrics.registry
    fallbacks = {"route": f"error-first{path}", "model": f"error-first{path}"}
    before = errors(registry, f"error-first{path}")
    fell_back = count(registry, "floorgate_fallbacks_total", **fallbacks)
    raw = client.chat.completions.with_raw_response.create(
        model=f"route/error-first{path}", messages=user("Hi."), stream=True
    )
    chunks = list(raw.parse())
    said = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (said, raw.headers["x-floorgate-model"]) == ("fake answer", "careful")
    assert errors(registry, f"error-first{path}") == before + 1
    assert count(registry, "floorgate_fallbacks_total", **fallbacks) == fell_back + 1
