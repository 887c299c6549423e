"""A client that leaves before the first byte stops the upstream call: the request is counted
499 (not 200 or the model's 504 later), the upstream's connection is closed, nothing is left in
flight, and the ledger says cancelled (no verdict, no feedback). The same for a client that
leaves mid-stream."""

from __future__ import annotations

import logging
import re
import time

import httpx
import orjson
import pytest

from gateway.app import Floorgate
from tests.conftest import ADMIN_KEY, count, counted
from tests.fake_upstream import FakeUpstream
from tests.servers import post_and_leave

PATHS = ["", "-litellm"]
ANY = {"Authorization": "Bearer key-any"}
CANCELLED = re.compile(r"request (fg-[0-9a-f]{24}) cancelled")


def hung_up(upstream: FakeUpstream, before: int) -> bool:
    """The fake saw its client (the gateway) hang up; a liveness bound, not a speed claim."""
    deadline = time.monotonic() + 5
    while len(upstream.hangups) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(upstream.hangups) > before


def ledgered(gateway: str, request_id: str) -> dict[str, object]:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    answer = httpx.get(f"{gateway}/admin/requests/{request_id}", headers=admin, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_leaving_before_the_first_byte_cancels_the_call(
    gateway: str,
    gateway_app: Floorgate,
    upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    path: str,
    stream: bool,
) -> None:
    registry = gateway_app.runtime.metrics.registry
    route = f"first-token{path}"
    labels = {"workflow": "deploy-pipeline", "route": route, "model": route}
    # No model served it: the pool was still being tried when the client left.
    where = {**labels, "model": "none", "stream": "true" if stream else "false"}
    before = {
        c: count(registry, "floorgate_requests_total", **where, code=c) for c in ("499", "504")
    }
    stage = {"workflow": "deploy-pipeline", "route": route, "stage": "before_first_byte"}
    cancelled = count(registry, "floorgate_cancelled_total", **stage)
    hangups, seen = len(upstream.hangups), upstream.seen
    body = {"model": f"route/{route}", "messages": [{"role": "user", "content": "hi"}]}
    with caplog.at_level(logging.INFO, logger="floorgate.requests"):
        # The model hangs; the client gives up once the upstream has the call.
        raw = orjson.dumps({**body, "stream": stream})
        post_and_leave(gateway, "/v1/chat/completions", raw, lambda: upstream.seen > seen)
        left = counted(registry, "floorgate_requests_total", before["499"] + 1, **where, code="499")
    assert left == before["499"] + 1
    assert count(registry, "floorgate_requests_total", **where, code="504") == before["504"]
    assert count(registry, "floorgate_classified_total", **labels, label="answer") == 0
    assert count(registry, "floorgate_in_flight_requests") == 0
    assert hung_up(upstream, hangups), "the upstream call went on after the client left"
    assert count(registry, "floorgate_cancelled_total", **stage) == cancelled + 1
    [request_id] = CANCELLED.findall(caplog.text)
    record = ledgered(gateway, request_id)
    assert (record["outcome"], record["route"], record["model"]) == ("cancelled", route, "none")
    assert record["verdict"] is None


def test_leaving_mid_stream_is_ledgered_cancelled_and_takes_no_feedback(
    gateway: str, gateway_app: Floorgate, upstream: FakeUpstream
) -> None:
    registry = gateway_app.runtime.metrics.registry
    stage = {"workflow": "deploy-pipeline", "route": "stall-long", "stage": "mid_stream"}
    cancelled = count(registry, "floorgate_cancelled_total", **stage)
    hangups = len(upstream.hangups)
    body = {"model": "route/stall-long", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream(
        "POST", f"{gateway}/v1/chat/completions", json={**body, "stream": True}, headers=ANY
    ) as response:
        request_id = response.headers["x-floorgate-request-id"]
        for line in response.iter_lines():
            if '"content":"fake"' in line:  # the first words: mid-stream
                break
    assert hung_up(upstream, hangups), "the upstream stream went on after the client left"
    assert counted(registry, "floorgate_cancelled_total", cancelled + 1, **stage) == cancelled + 1
    record = ledgered(gateway, request_id)
    assert (record["outcome"], record["model"], record["verdict"]) == (
        "cancelled",
        "stall-long",
        None,
    )
    feedback = {"request_id": request_id, "outcome": "merged"}
    answer = httpx.post(f"{gateway}/v1/feedback", json=feedback, headers=ANY, timeout=10)
    assert answer.status_code == 404, answer.text
    assert "left before the answer" in answer.json()["error"]["message"]
