"""Limits end to end: real gateways (uvicorn on loopback) over the limits policy
(tests/policies/limits.yaml), the fake upstream, real Redis, the official openai SDK."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway.state.counters import DAY, MINUTE
from tests.fake_upstream import FakeUpstream
from tests.limits_gateway import (
    MESSAGES,
    chat,
    gateway,
    sdk,
    take_turns,
    wait_for_room_in,
)
from tests.redis_server import SHARED_URL, shared_prefix
from tests.state_gateway import sample, wait_until
from tests.test_policy_check import floorgate


@pytest.fixture(autouse=True)
def _inside_one_minute() -> None:
    """These tests read exact counts of minute windows: none may straddle a minute's end."""
    wait_for_room_in(MINUTE)


def refusal(client: openai.OpenAI, **kwargs: Any) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as info:
        chat(client, **kwargs)
    return info.value


def test_every_response_says_what_is_left_and_the_refusal_says_when_to_retry(
    limits_policy: Path, upstream: FakeUpstream
) -> None:
    with gateway(limits_policy) as (url, app), sdk(url, "per-minute") as client:
        left = [chat(client)["x-ratelimit-remaining-requests"] for _ in range(3)]
        assert left == ["2", "1", "0"]
        before = upstream.seen
        err = refusal(client)
        assert upstream.seen == before  # refused before any upstream call
        assert err.status_code == 429
        assert err.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
        assert err.body["type"] == "rate_limit_error"  # type: ignore[index]
        assert "workflow 'per-minute'" in err.message and "requests_per_minute" in err.message
        h = err.response.headers
        assert h["x-ratelimit-limit-requests"] == "3" and h["x-ratelimit-remaining-requests"] == "0"
        assert 0 < int(h["retry-after"]) <= 120 and int(h["retry-after-ms"]) > 0
        assert h["x-ratelimit-reset-requests"].endswith("s")
        assert h["x-ratelimit-limit-tokens"] == "100000"
        labels = {"workflow": "per-minute", "limit": "requests_per_minute"}
        assert sample(app, "floorgate_rate_limited_total", **labels) == 1


def test_tokens_are_estimated_up_front_and_corrected_from_the_usage(limits_policy: Path) -> None:
    with gateway(limits_policy) as (url, app), sdk(url, "per-minute") as client:
        first = chat(client, max_tokens=1000)  # counted as ~6 prompt tokens + 1000
        assert int(first["x-ratelimit-remaining-tokens"]) < 100000 - 1000
        wait_until(lambda: app.runtime.limits.settling == 0, what="settled")
        second = chat(client)  # the first now counts its reported 7 tokens
        assert int(second["x-ratelimit-remaining-tokens"]) >= 100000 - 7 - 20


def test_a_key_is_held_to_its_own_stricter_limit_within_its_workflows(
    limits_policy: Path,
) -> None:
    with (
        gateway(limits_policy) as (url, _app),
        sdk(url, "per-minute", key="key-tight") as tight,
        sdk(url, "per-minute") as other,
    ):
        assert chat(tight)["x-ratelimit-remaining-requests"] == "0"  # its own 1, not 3 - 1
        err = refusal(tight)
        assert err.status_code == 429 and "API key 'env-key-2'" in err.message
        chat(other)  # the workflow still has room for other keys
        chat(other)
        assert refusal(other).status_code == 429  # and the workflow's 3 hold for every key


def test_the_sdk_waits_as_long_as_retry_after_says(limits_policy: Path) -> None:
    sent: list[float] = []
    hooks = {"request": [lambda request: sent.append(time.monotonic())]}
    with (
        gateway(limits_policy) as (url, app),
        sdk(url, "one-at-a-time") as holder,
        httpx.Client(event_hooks=hooks) as http,
        sdk(url, "one-at-a-time", max_retries=4, http_client=http) as retrier,
    ):
        holding = threading.Thread(target=chat, args=(holder, "route/slow"))
        holding.start()
        wait_until(lambda: sample(app, "floorgate_in_flight_requests") == 1)
        chat(retrier)  # refused while the slow one holds the slot, then let in
        holding.join()
        labels = {"workflow": "one-at-a-time", "limit": "concurrency"}
        refused = sample(app, "floorgate_rate_limited_total", **labels) or 0
    assert refused >= 1 and len(sent) == refused + 1
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(gap >= 0.95 for gap in gaps), gaps  # Retry-After: 1 (the SDK's own is 0.5 s)


def test_beyond_the_concurrency_cap_refusal_is_immediate_and_health_answers(
    limits_policy: Path,
) -> None:
    with (
        gateway(limits_policy) as (url, app),
        sdk(url, "one-at-a-time") as holder,
        sdk(url, "one-at-a-time") as other,
    ):
        holding = threading.Thread(target=chat, args=(holder, "route/slow"))
        holding.start()
        wait_until(lambda: sample(app, "floorgate_in_flight_requests") == 1)
        err = refusal(other)
        assert holding.is_alive()  # refused without waiting for the slot's holder
        assert err.status_code == 429 and err.response.headers["retry-after"] == "1"
        assert "concurrency limit is 1" in err.message
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert httpx.get(f"{url}/readyz").status_code == 200
        holding.join()
        chat(other)  # the slot is free again


@pytest.mark.parametrize("usage", [True, False], ids=["reported", "estimated"])
def test_a_budget_spent_mid_stream_lets_the_stream_finish_and_refuses_the_next(
    limits_policy: Path, usage: bool
) -> None:
    options = {"stream_options": {"include_usage": True}} if usage else {}
    with gateway(limits_policy) as (url, app), sdk(url, "budget") as client:
        priced = app.runtime.policies.current.models["priced"].spec
        wait_until(lambda: app.runtime.prices.price(priced) is not None, 20, "price table")
        wait_for_room_in(DAY, 10)  # spent and refused in one UTC day, after the table's wait
        stream = client.chat.completions.create(
            model="route/priced", messages=MESSAGES, stream=True, **options
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "fake answer"  # the whole stream, though it spent the budget

        def spent() -> float:
            return sample(app, "floorgate_budget_used_dollars", workflow="budget") or 0.0

        wait_until(lambda: spent() > 0.000001, what="the stream's cost counted")
        err = refusal(client, model="route/priced")
        assert err.status_code == 429
        assert err.body["code"] == "insufficient_quota"  # type: ignore[index]
        assert err.body["type"] == "insufficient_quota"  # type: ignore[index]
        assert err.response.headers["x-should-retry"] == "false"
        assert sample(app, "floorgate_budget_remaining_dollars", workflow="budget") == 0


def test_two_replicas_sharing_redis_hold_one_limit_together(limits_policy: Path) -> None:
    with shared_prefix() as prefix, ExitStack() as stack:
        urls = [
            stack.enter_context(
                # Patient with Redis: this test is about one count, not about a slow store.
                gateway(limits_policy, SHARED_URL, redis_key_prefix=prefix, limits_timeout_s=5)
            )
            for _ in range(2)
        ]
        clients = [stack.enter_context(sdk(url, "shared")) for url, _ in urls]
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(partial(take_turns, clients), range(40)))
        for _, app in urls:
            assert sample(app, "floorgate_limit_store_errors_total") == 0  # never counted locally
    admitted = [replica for replica, status in results if status == 200]
    # The limit is 10 a minute; the sliding window's rounding may let one more through.
    assert 10 <= len(admitted) <= 11, results
    assert set(admitted) == {0, 1}  # both replicas served, from one count


def test_explain_shows_each_limit_with_its_live_usage(limits_policy: Path) -> None:
    with gateway(limits_policy) as (url, _app), sdk(url, "per-minute", key="key-tight") as client:
        chat(client)
        body = httpx.post(
            f"{url}/v1/route/explain",
            json={"model": "workflow/per-minute", "messages": MESSAGES},
            headers={"Authorization": "Bearer key-tight"},
        ).json()
    rows = {(row["applies_to"], row["limit"]): row for row in body["limits"]}
    assert rows[("workflow", "requests_per_minute")]["used"] == 1
    assert rows[("workflow", "requests_per_minute")]["max"] == 3
    assert rows[("env-key-2", "requests_per_minute")] == {
        "limit": "requests_per_minute",
        "applies_to": "env-key-2",
        "max": 1,
        "used": 1,
        "when_store_down": "fail_open",
        "counted_in": "shared",
    }


def test_responses_and_embeddings_count_against_the_same_limits(limits_policy: Path) -> None:
    with gateway(limits_policy) as (url, _app), sdk(url, "per-minute") as client:
        chat(client)
        raw = client.responses.with_raw_response.create(model="workflow/x", input="Summarise.")
        raw.parse()
        assert raw.headers["x-ratelimit-remaining-requests"] == "1"
        raw = client.embeddings.with_raw_response.create(model="embed", input="a ticket")
        raw.parse()
        assert raw.headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(openai.RateLimitError):
            client.responses.create(model="workflow/x", input="Summarise.")


def test_the_explain_command_shows_limits_and_what_redis_counts_of_them(
    limits_policy: Path,
) -> None:
    with shared_prefix() as prefix:
        with (
            # Patient with Redis: on a loaded machine a 0.25 s check falls back to counting
            # locally, and this test is about what the shared store counted.
            gateway(limits_policy, SHARED_URL, redis_key_prefix=prefix, limits_timeout_s=5) as (
                url,
                _app,
            ),
            sdk(url, "per-minute", key="key-tight") as client,
        ):
            chat(client)
        env = {
            "FLOORGATE_REDIS_URL": SHARED_URL,
            "FLOORGATE_REDIS_KEY_PREFIX": prefix,
            "FLOORGATE_LIMITS_TIMEOUT_S": "5",
        }
        live = floorgate("explain", "per-minute", "--policies", limits_policy, env=env)
    offline = floorgate("explain", "per-minute", "--policies", limits_policy)
    assert live.returncode == 0, live.stderr
    assert "  workflow: requests_per_minute 3, used 1 (fail_open)" in live.stdout
    assert "  env-key-2: requests_per_minute 1, used 1 (fail_open)" in live.stdout
    assert "(live usage from the shared store)" in live.stdout
    assert "  workflow: tokens_per_minute 100000 (fail_open)" in offline.stdout
    assert "set FLOORGATE_REDIS_URL, or POST /v1/route/explain" in offline.stdout
