"""A client that leaves before the first byte stops the upstream call: the request is counted
499 (not 200 or the model's 504 later), nothing is ledgered as answered, nothing is left in
flight. (Leaving mid-stream is tested with the streams.)"""

from __future__ import annotations

import httpx
import pytest

from gateway.app import Floorgate
from tests.conftest import count, counted

PATHS = ["", "-litellm"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_leaving_before_the_first_byte_cancels_the_call(
    gateway: str, gateway_app: Floorgate, path: str, stream: bool
) -> None:
    registry = gateway_app.runtime.metrics.registry
    route = f"first-token{path}"
    labels = {"workflow": "deploy-pipeline", "route": route, "model": route}
    # No model served it: the pool was still being tried when the client left.
    where = {**labels, "model": "none", "stream": "true" if stream else "false"}
    before = {
        c: count(registry, "floorgate_requests_total", **where, code=c) for c in ("499", "504")
    }
    body = {"model": f"route/{route}", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(httpx.ReadTimeout):  # the model hangs; the client gives up first
        httpx.post(
            f"{gateway}/v1/chat/completions",
            json={**body, "stream": stream},
            headers={"Authorization": "Bearer key-any"},
            timeout=httpx.Timeout(10, read=0.3),
        )
    left = counted(registry, "floorgate_requests_total", before["499"] + 1, **where, code="499")
    assert left == before["499"] + 1
    assert count(registry, "floorgate_requests_total", **where, code="504") == before["504"]
    assert count(registry, "floorgate_classified_total", **labels, label="answer") == 0
    assert count(registry, "floorgate_in_flight_requests") == 0
