"""Streams that open with keep-alive comments (`: OPENROUTER PROCESSING`, `: ping`), through
the gateway with the openai SDK: until the first data event the client has no byte, so an
error event or a dropped connection after the comments falls back to the route's next model,
or ends in an OpenAI-shaped error with its status, and a model that sends comments forever
runs out of its first-token budget; chat completions and the Responses API alike. A client
that leaves during the comments has left before the first byte."""

from __future__ import annotations

import logging

import httpx
import openai
import orjson
import pytest
from prometheus_client import CollectorRegistry

from gateway.app import Floorgate
from gateway.policy_series import FAILURE_KINDS
from tests.conftest import ADMIN_KEY, count, counted
from tests.fake_upstream import KEEP_ALIVES, FakeUpstream
from tests.servers import post_and_leave
from tests.test_client_leaves import CANCELLED, hung_up

PATHS = ["", "-litellm"]  # route-name suffix: direct path, litellm path
USER = [{"role": "user", "content": "Fix the flaky test."}]
WORKFLOW = "deploy-pipeline"


def registry(app: Floorgate) -> CollectorRegistry:
    return app.runtime.metrics.registry


def errors(app: Floorgate, model: str) -> float:
    """The model's failed upstream calls, of every kind (litellm reads an error event as a
    status, the direct path as a protocol failure; a budget run out is a timeout)."""
    name = "floorgate_upstream_errors_total"
    return sum(count(registry(app), name, model=model, kind=kind) for kind in FAILURE_KINDS)


def ledgered(gateway: str, request_id: str) -> httpx.Response:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    return httpx.get(f"{gateway}/admin/requests/{request_id}", headers=admin, timeout=10)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fault", ["error", "cut", "forever"])
def test_a_stream_failing_after_keep_alive_comments_falls_back(
    client: openai.OpenAI, gateway: str, gateway_app: Floorgate, fault: str, path: str
) -> None:
    route = failed = f"keepalive-{fault}{path}"
    fell_back = count(registry(gateway_app), "floorgate_fallbacks_total", route=route, model=failed)
    before = errors(gateway_app, failed)
    raw = client.chat.completions.with_raw_response.create(
        model=f"route/{route}",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
    )
    said = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert (said, raw.headers["x-floorgate-model"]) == ("fake answer", "careful")
    assert errors(gateway_app, failed) == before + 1
    fallbacks = count(registry(gateway_app), "floorgate_fallbacks_total", route=route, model=failed)
    assert fallbacks == fell_back + 1
    record = ledgered(gateway, raw.headers["x-floorgate-request-id"]).json()
    assert (record["outcome"], record["model"], record["verdict"]["label"]) == (
        "answered",
        "careful",
        "answer",
    )


@pytest.mark.parametrize(
    ("route", "status", "kind"),
    [("keepalive-error-alone", 502, "protocol"), ("keepalive-forever-alone", 504, "timeout")],
    ids=["error", "forever"],
)
def test_the_last_model_failing_after_comments_is_an_openai_error(
    client: openai.OpenAI, gateway: str, gateway_app: Floorgate, route: str, status: int, kind: str
) -> None:
    model = route.removesuffix("-alone")
    where = {"workflow": WORKFLOW, "route": route, "stream": "true"}
    failures = count(
        registry(gateway_app), "floorgate_upstream_errors_total", model=model, kind=kind
    )
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=f"route/{route}", messages=USER, stream=True)  # type: ignore[arg-type]
    assert info.value.status_code == status
    body = info.value.body
    assert isinstance(body, dict) and body["type"] in ("upstream_error", "timeout")
    assert model in body["message"]
    assert (
        count(registry(gateway_app), "floorgate_upstream_errors_total", model=model, kind=kind)
        == failures + 1
    )
    requests = counted(registry(gateway_app), "floorgate_requests_total", 1, **where,
                       model="none", code=str(status))  # fmt: skip
    assert requests >= 1
    # Nothing was answered: the ledger has no record of it, and no verdict was counted.
    request_id = info.value.response.headers["x-floorgate-request-id"]
    assert ledgered(gateway, request_id).status_code == 404
    labels = {"workflow": WORKFLOW, "route": route, "model": model}
    assert count(registry(gateway_app), "floorgate_classified_total", **labels, label="answer") == 0


def test_comments_before_the_first_data_event_are_not_relayed(gateway: str) -> None:
    body = {"model": "route/keepalive-ok", "messages": USER, "stream": True}
    headers = {"Authorization": "Bearer key-any"}
    reply = httpx.post(f"{gateway}/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert reply.status_code == 200
    assert reply.text.startswith("data: {")
    assert not any(comment.strip().decode() in reply.text for comment in KEEP_ALIVES)
    assert reply.text.endswith("data: [DONE]\n\n")


@pytest.mark.parametrize("path", PATHS)
def test_a_client_leaving_during_the_comments_left_before_the_first_byte(
    gateway: str,
    gateway_app: Floorgate,
    upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    # What tests/test_client_leaves.py asserts of a client that leaves before the first byte.
    route = f"keepalive-held{path}"
    labels = {"workflow": WORKFLOW, "route": route, "model": route}
    where = {**labels, "model": "none", "stream": "true"}  # no model had answered yet
    left = count(registry(gateway_app), "floorgate_requests_total", **where, code="499")
    stage = {"workflow": WORKFLOW, "route": route, "stage": "before_first_byte"}
    cancelled = count(registry(gateway_app), "floorgate_cancelled_total", **stage)
    hangups, held = len(upstream.hangups), len(upstream.held)
    body = orjson.dumps({"model": f"route/{route}", "messages": USER, "stream": True})
    with caplog.at_level(logging.INFO, logger="floorgate.requests"):
        # Three keep-alive comments, then one every 20 ms (hold:0): the client leaves once
        # three of those have gone too, never having had a byte.
        post_and_leave(
            gateway, "/v1/chat/completions", body, lambda: len(upstream.held) >= held + 3
        )
        requests = counted(registry(gateway_app), "floorgate_requests_total", left + 1, **where,
                           code="499")  # fmt: skip
    assert requests == left + 1
    assert count(registry(gateway_app), "floorgate_classified_total", **labels, label="answer") == 0
    assert count(registry(gateway_app), "floorgate_in_flight_requests") == 0
    assert hung_up(upstream, hangups), "the upstream stream went on after the client left"
    assert count(registry(gateway_app), "floorgate_cancelled_total", **stage) == cancelled + 1
    [request_id] = CANCELLED.findall(caplog.text)
    record = ledgered(gateway, request_id).json()
    assert (record["outcome"], record["route"], record["model"]) == ("cancelled", route, "none")
    assert record["verdict"] is None


@pytest.mark.parametrize("route", ["native-keepalive-error", "native-keepalive-drop"])
def test_a_responses_stream_failing_after_comments_falls_back(
    client: openai.OpenAI, gateway_app: Floorgate, route: str
) -> None:
    before = errors(gateway_app, route)
    with client.responses.stream(model=f"route/{route}", input="Plan it.") as stream:
        events = [event.type for event in stream]
        final = stream.get_final_response()
    assert events[0] == "response.created" and "error" not in events
    assert (final.output_text, final.status) == ("native answer", "completed")
    assert errors(gateway_app, route) == before + 1


def test_a_responses_stream_failing_after_comments_alone_is_an_openai_error(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.responses.create(model="route/native-keepalive-drop-alone", input="Go.", stream=True)
    assert info.value.status_code == 502


def test_a_translated_responses_stream_failing_after_comments_falls_back(
    client: openai.OpenAI,
) -> None:
    with client.responses.stream(model="route/keepalive-error", input="Plan it.") as stream:
        final = stream.get_final_response()
    assert (final.output_text, final.status) == ("fake answer", "completed")
