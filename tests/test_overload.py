"""A real `floorgate serve` refusing new model requests while overloaded (gateway/overload.py):
its process frozen (SIGSTOP) longer than FLOORGATE_OVERLOAD_FOR_S is, on resume, a loop that
has been behind that long, as a saturated one is. Each test is ordered so that it cannot pass
vacuously: served before, refused while overloaded, served again after; a single stall as long
as the slowest one-off callbacks (240 ms) refuses nothing. The rule's arithmetic is
tests/test_overload_rule.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import KEYS, UPSTREAM_KEY, client_for, count
from tests.fake_upstream import FakeUpstream
from tests.overload_support import (
    USER,
    Served,
    chat,
    embed,
    refusal_of,
    said,
    serve,
    served_again,
    slow_stream,
)
from tests.policy_gateway import wait_for
from tests.servers import serve_in_thread

FREEZE_S = 1.6  # longer than the default FLOORGATE_OVERLOAD_FOR_S (1 s)
STALL_S = 0.24  # litellm's import, the longest one-off callback measured (docs/bench.md)


@pytest.fixture(scope="module")
def served(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(upstream, tmp_path_factory.mktemp("overload")) as gateway:
        yield gateway


def test_frozen_past_the_period_it_refuses_new_requests_then_serves_again(
    served: Served, upstream: FakeUpstream
) -> None:
    assert served_again(served) == "fake answer"
    assert embed(served) == 1
    refused_before = served.sample("floorgate_overload_refusals_total", reason="loop_lag")
    with served.client() as streamer:
        chunks, answer = slow_stream(streamer)
        seen = upstream.seen

        outcomes = served.frozen(
            FREEZE_S,
            lambda: chat(served),
            lambda: embed(served),
            lambda: served.sample("floorgate_overloaded"),
            lambda: httpx.get(f"{served.url}/healthz", timeout=30).status_code,
        )
        answer += said(chunks)

    refusal, embedding, overloaded, health = outcomes
    for outcome in (refusal, embedding):
        assert "event loop has been behind" in refusal_of(outcome)["message"]
    assert (overloaded, health) == (1, 200), "ops endpoints answer, and say it"
    assert answer == "fake answer", "the stream in flight was served to its end"
    assert upstream.seen == seen, "nothing refused reached the upstream"
    refused = served.sample("floorgate_overload_refusals_total", reason="loop_lag")
    assert refused - refused_before >= 2

    assert served_again(served) == "fake answer"
    assert upstream.seen > seen
    assert served.sample("floorgate_overloaded") == 0


def test_one_stall_as_long_as_the_slowest_callback_refuses_nothing(served: Served) -> None:
    assert served_again(served) == "fake answer"
    refused = served.sample("floorgate_overload_refusals_total", reason="loop_lag")
    assert served.frozen(STALL_S, lambda: chat(served)) == ["fake answer"]
    assert chat(served) == "fake answer"
    assert served.sample("floorgate_overload_refusals_total", reason="loop_lag") == refused
    assert served.sample("floorgate_overloaded") == 0


def test_beyond_max_in_flight_a_new_request_is_refused_until_one_ends(policy_path: Path) -> None:
    os.environ["FAKE_UPSTREAM_KEY"] = UPSTREAM_KEY
    settings = Settings(policies=policy_path, api_keys=KEYS, max_in_flight=1, _env_file=None)  # type: ignore[call-arg]
    app = create_app(settings, CollectorRegistry())
    registry = app.runtime.metrics.registry
    with serve_in_thread(app) as url, client_for(url) as client:
        stream = client.chat.completions.create(
            model="route/slow-stream",
            stream=True,
            messages=USER,  # type: ignore[arg-type]
        )
        chunks = iter(stream)
        next(chunks)  # one request in flight: the cap
        with pytest.raises(openai.InternalServerError) as refused:
            client.embeddings.create(model="embed", input="hi")
        assert refused.value.status_code == 503
        assert refused.value.response.json()["error"]["code"] == "overloaded"
        assert "FLOORGATE_MAX_IN_FLIGHT=1" in refused.value.response.json()["error"]["message"]
        with client_for(url, key="wrong") as stranger, pytest.raises(openai.AuthenticationError):
            stranger.embeddings.create(model="embed", input="hi")  # its key first: a 401
        assert count(registry, "floorgate_overload_refusals_total", reason="in_flight") == 1
        assert count(registry, "floorgate_overloaded") == 0, "the loop is on time"
        list(chunks)
        stream.close()
        wait_for(lambda: app.runtime.overload.in_flight == 0 or None)
        assert len(client.embeddings.create(model="embed", input="hi").data) == 1
