"""A model's upstream connections are bounded (max_connections) and so is the wait for one:
at most max_queued requests wait, each at most queue_timeout_s; the others are refused, fall
back to the route's next model or get a 503 with Retry-After, and the wait is on /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from pydantic import SecretStr

from tests.conftest import count
from tests.fake_upstream import FakeUpstream
from tests.upstream_gateway import KEY_ENV, policy, upstream_gateway

USER = [{"role": "user", "content": "Plan the migration."}]


def spec(upstream: FakeUpstream, model: str, extra: str = "") -> str:
    base = f'api_base: "{upstream.base_url}", api_key: {{env: {KEY_ENV}}}, retries: 0'
    return f'{{provider: openai, model: "{model}", {base}{extra}}}'


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def test_past_max_queued_a_request_is_refused_at_once_with_503_and_retry_after(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    one = ", max_connections: 1, max_queued: 1"
    text = policy({"slow": spec(upstream, "slow:1.5", one)})
    with upstream_gateway(tmp_path, text) as (client, app), ThreadPoolExecutor(2) as pool:
        registry = app.runtime.metrics.registry

        def queued() -> float:
            return count(registry, "floorgate_upstream_queued_requests", model="slow")

        def ask() -> Future[object]:
            return pool.submit(client.chat.completions.create, model="route/slow", messages=USER)

        seen = upstream.seen
        holding = ask()  # takes the one connection
        until(lambda: upstream.seen > seen, "the first request reached the upstream")
        waiting = ask()  # waits for it
        until(lambda: queued() == 1, "one request waiting on /metrics")
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(model="route/slow", messages=USER)
        refused = count(registry, "floorgate_upstream_queue_refusals_total", model="slow",
                        reason="full")  # fmt: skip
        assert holding.result(timeout=30) and waiting.result(timeout=30)  # both served
        assert queued() == 0
    assert raised.value.status_code == 503
    assert raised.value.response.headers["retry-after"] == "1"
    assert raised.value.response.json()["error"]["type"] == "service_unavailable"
    assert "busy" in raised.value.message
    assert refused == 1


def test_a_request_that_waits_past_queue_timeout_falls_back_to_the_next_model(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    one = ", max_connections: 1, queue_timeout_s: 0.2"
    text = policy(
        {"slow": spec(upstream, "slow:1.5", one), "careful": spec(upstream, "ok")},
        routes={"slow-then-careful": ["slow", "careful"]},
    )
    with upstream_gateway(tmp_path, text) as (client, app), ThreadPoolExecutor(1) as pool:
        registry = app.runtime.metrics.registry
        seen = upstream.seen
        holding = pool.submit(client.chat.completions.create, model="route/slow", messages=USER)
        until(lambda: upstream.seen > seen, "the first request reached the upstream")
        raw = client.chat.completions.with_raw_response.create(
            model="route/slow-then-careful", messages=USER
        )
        assert raw.headers["x-floorgate-model"] == "careful"
        assert holding.result(timeout=30)
        refused = count(registry, "floorgate_upstream_queue_refusals_total", model="slow",
                        reason="timeout")  # fmt: skip
        busy = count(registry, "floorgate_upstream_errors_total", model="slow", kind="busy")
    assert refused == 1 and busy == 1


def test_a_reload_while_a_request_waits_keeps_the_queue_gauge_counting_it(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """`quick` waits behind `slow` for their shared connection (one origin, one limit) while
    a reload drops `quick` (its series goes with it) and another brings it back: the gauge
    reads the one request still waiting, then 0 once it is served, never below. `slow` takes
    5 s: the two reloads must be done while it holds the connection, on a loaded machine too."""
    one = ", max_connections: 1"
    models = {"slow": spec(upstream, "slow:5", one), "quick": spec(upstream, "ok", one),
              "careful": spec(upstream, "ok")}  # fmt: skip
    both = policy(models)
    admin = {"Authorization": "Bearer queue-admin"}
    with (
        upstream_gateway(tmp_path, both, admin_key=SecretStr("queue-admin")) as (client, app),
        httpx.Client(base_url=str(client.base_url).removesuffix("v1/"), trust_env=False,
                     headers=admin, timeout=30) as http,
        ThreadPoolExecutor(2) as pool,
    ):  # fmt: skip
        registry = app.runtime.metrics.registry

        def queued() -> float | None:
            return registry.get_sample_value(
                "floorgate_upstream_queued_requests", {"model": "quick"}
            )

        def reload(text: str) -> None:
            (tmp_path / "policy.yaml").write_text(text)
            assert http.post("/admin/policies/reload").status_code == 200

        seen = upstream.seen
        holding = pool.submit(client.chat.completions.create, model="route/slow", messages=USER)
        until(lambda: upstream.seen > seen, "the slow request reached the upstream")
        waiting = pool.submit(client.chat.completions.create, model="route/quick", messages=USER)
        until(lambda: queued() == 1, "quick waiting on /metrics")
        reload(policy({k: v for k, v in models.items() if k != "quick"}))
        assert queued() is None  # no series for a model the policy no longer declares
        reload(both)
        assert not waiting.done() and queued() == 1
        assert holding.result(timeout=30) and waiting.result(timeout=30)
        until(lambda: queued() == 0, "nothing waiting")
        values = [s.value for m in registry.collect() for s in m.samples
                  if s.name == "floorgate_upstream_queued_requests"]  # fmt: skip
    assert min(values) == 0
