"""Streamed /v1/responses passed through to a model that serves the Responses API
(wire.responses), with the official openai SDK over real HTTP: the upstream's events one by
one under the gateway's response id, classified, counted, stored; an upstream failure after
the first byte raises in the SDK; a client that leaves ends the call."""

from __future__ import annotations

import httpx
import openai
import pytest

from gateway.app import Floorgate
from tests.conftest import count, counted
from tests.fake_upstream import FakeUpstream, response_events

LABELS = {"workflow": "deploy-pipeline", "route": "native", "model": "native"}


def test_a_streamed_response_is_passed_through_event_by_event(
    client: openai.OpenAI, upstream: FakeUpstream, gateway_app: Floorgate
) -> None:
    registry = gateway_app.runtime.metrics.registry
    answered = count(registry, "floorgate_classified_total", **LABELS, label="answer")
    tokens = count(registry, "floorgate_tokens_total", **LABELS, token_type="output")
    seen = upstream.seen
    with client.responses.stream(model="route/native", input="Plan it.") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [e.type for e in events] == [e["type"] for e in response_events("ok")]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == (
        "native answer"
    )
    assert final.output_text == "native answer" and final.status == "completed"
    assert final.id.startswith("resp_") and "upstream" not in final.id
    assert final.model == "route/native"
    assert {e.response.id for e in events if hasattr(e, "response")} == {final.id}
    [sent] = upstream.since(seen)
    assert sent["path"] == "/v1/responses"
    assert sent["body"]["stream"] is True and sent["body"]["store"] is False
    after = counted(registry, "floorgate_classified_total", answered + 1, **LABELS, label="answer")
    assert after == answered + 1
    assert count(registry, "floorgate_tokens_total", **LABELS, token_type="output") == tokens + 2
    # Stored: the next turn continues it, with the whole conversation as the upstream's input.
    seen = upstream.seen
    client.responses.create(model="route/native", previous_response_id=final.id, input="Go on.")
    [follow_up] = [r["body"] for r in upstream.since(seen)]
    assert [i.get("role") for i in follow_up["input"]] == ["user", "assistant", "user"]


@pytest.mark.parametrize(
    ("route", "reason"),
    [("native-failed", "the model crashed"), ("native-cut", "mid-response")],
    ids=["response.failed", "cut"],
)
def test_an_upstream_failure_after_the_first_byte_raises_in_the_sdk(
    client: openai.OpenAI, gateway_app: Floorgate, route: str, reason: str
) -> None:
    registry = gateway_app.runtime.metrics.registry
    labels = {**LABELS, "route": route, "model": route}
    failed = count(registry, "floorgate_upstream_errors_total", model=route, kind="protocol")
    seen: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for event in client.responses.create(model=f"route/{route}", input="Go.", stream=True):
            seen.append(event.type)
    assert seen[:2] == ["response.created", "response.in_progress"]
    assert "response.completed" not in seen
    assert "stream broke" in info.value.message and reason in info.value.message
    assert count(registry, "floorgate_upstream_errors_total", model=route, kind="protocol") == (
        failed + 1
    )
    assert count(registry, "floorgate_classified_total", **labels, label="answer") == 0


def test_a_client_that_leaves_mid_stream_ends_the_upstream_call(
    gateway: str, gateway_app: Floorgate
) -> None:
    registry = gateway_app.runtime.metrics.registry
    where = {**LABELS, "route": "native-hang", "model": "native-hang", "stream": "true"}
    before = count(registry, "floorgate_requests_total", **where, code="499")
    body = {"model": "route/native-hang", "input": "Go.", "stream": True}
    headers = {"Authorization": "Bearer key-any"}
    with httpx.stream("POST", f"{gateway}/v1/responses", json=body, headers=headers) as reply:
        assert reply.status_code == 200
        first = next(reply.iter_lines())
        assert first == "event: response.created"
    left = counted(registry, "floorgate_requests_total", before + 1, **where, code="499")
    assert left == before + 1
    assert count(registry, "floorgate_in_flight_requests") == 0
