"""A served request leaves nothing for the cycle collector: its state is freed by reference
counting as it ends. One cycle a request (the disconnect watch's CancelledError, whose
traceback's frames held the request's whole state) made full collections run every few
seconds under load, each pausing the event loop for up to 380 ms (docs/bench.md)."""

from __future__ import annotations

import gc
import time

import openai
import pytest

from gateway.app import Floorgate
from gateway.exchange import Disconnect, Exchange
from tests.conftest import counted

MESSAGES = [{"role": "user", "content": "Summarise the log."}]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_served_request_leaves_no_reference_cycle(
    client: openai.OpenAI, gateway_app: Floorgate, stream: bool
) -> None:
    registry = gateway_app.runtime.metrics.registry
    name = "floorgate_requests_total"
    labels = {"workflow": "deploy-pipeline", "route": "calibration-first", "model": "careful"}
    where = {**labels, "code": "200", "stream": "true" if stream else "false"}
    before = registry.get_sample_value(name, where) or 0
    gc.collect()
    gc.disable()  # no automatic collection may free a cycle before it is looked for
    try:
        for _ in range(3):
            reply = client.chat.completions.create(
                model="route/calibration-first",
                messages=MESSAGES,  # type: ignore[arg-type]
                stream=stream,
            )
            if stream:
                list(reply)  # type: ignore[call-overload]
        assert counted(registry, name, before + 3, **where) == before + 3
        time.sleep(0.1)  # the request's task ends just after it is counted
        gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept, to be looked at
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if isinstance(o, Disconnect | Exchange)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
