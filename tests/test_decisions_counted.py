"""Each request the gateway routes counts one decision for its workflow and route
(floorgate_route_decisions_total), streamed or whole, through real HTTP; the count is made once
the request is on its way upstream (gateway/plan.py), so it is read with `counted`."""

from __future__ import annotations

import openai
import pytest

from gateway.app import Floorgate
from tests.conftest import count, counted

USER = [{"role": "user", "content": "Summarize the release notes."}]
DECISIONS = "floorgate_route_decisions_total"


@pytest.mark.parametrize("stream", [False, True])
def test_a_routed_request_counts_one_decision(
    client: openai.OpenAI, gateway_app: Floorgate, stream: bool
) -> None:
    registry = gateway_app.runtime.metrics.registry
    raw = client.chat.completions.with_raw_response.create(
        model="route/fails-then-ok", messages=USER, stream=stream
    )
    labels = {"workflow": raw.headers["x-floorgate-workflow"], "route": "fails-then-ok"}
    body = raw.http_response.read()
    assert raw.http_response.status_code == 200
    assert (b"data: [DONE]" in body) if stream else (b"fake answer" in body)
    before = count(registry, DECISIONS, **labels)
    raw = client.chat.completions.with_raw_response.create(
        model="route/fails-then-ok", messages=USER, stream=stream
    )
    raw.http_response.read()
    assert counted(registry, DECISIONS, before + 1, **labels) == before + 1
