"""Gateways for the limits tests: the limits policy (tests/policies/limits.yaml) over the fake
upstream, in memory or in Redis, served by uvicorn in a thread; clients are the openai SDK,
one workflow each (X-Floorgate-Workflow)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai

from gateway.app import Floorgate
from tests.fake_upstream import FakeUpstream
from tests.state_gateway import served, state_settings

HERE = Path(__file__).parent
KEYS = "key-any=*,key-tight=*"  # env-key-1, env-key-2 in the policy
MESSAGES = [{"role": "user", "content": "Summarise the incident."}]


def wait_for_room_in(period_s: int, room_s: float = 20.0) -> None:
    """Sleep into the next period (MINUTE, or DAY: a UTC day) if fewer than `room_s` seconds
    are left of this one.

    A sliding window weighs the previous minute's count by the part of it still inside the
    last 60 s and rounds down, so one request counted at :59.9 reads as 0 a second later: a
    test that counts exact uses must run inside one minute. A day's spend starts again at
    00:00 UTC: a test that spends a budget, then is refused, must run inside one day."""
    left = period_s - time.time() % period_s
    if left < room_s:
        time.sleep(left + 0.05)


def limits_policy_file(directory: Path, upstream: FakeUpstream) -> Path:
    text = (HERE / "policies" / "limits.yaml").read_text()
    path = directory / "limits.yaml"
    path.write_text(text.replace("__UPSTREAM__", upstream.base_url))
    return path


@contextmanager
def gateway(
    policy: Path, redis_url: str | None = None, **settings: Any
) -> Iterator[tuple[str, Floorgate]]:
    with served(state_settings(policy, redis_url, api_keys=KEYS, **settings)) as served_app:
        yield served_app


def sdk(url: str, workflow: str, key: str = "key-any", **kwargs: Any) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 10)
    return openai.OpenAI(
        base_url=f"{url}/v1",
        api_key=key,
        default_headers={"X-Floorgate-Workflow": workflow},
        **kwargs,
    )


def chat(client: openai.OpenAI, model: str = "workflow/x", **kwargs: Any) -> httpx.Headers:
    """The response headers of one answered completion (the SDK raises on a refusal)."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, **kwargs)
    raw.parse()
    return raw.headers


def take_turns(clients: Sequence[openai.OpenAI], turn: int) -> tuple[int, int]:
    """Turn `turn` of clients taking turns: which one sent it, and 200 or 429."""
    which = turn % len(clients)
    try:
        chat(clients[which])
        return which, 200
    except openai.RateLimitError:
        return which, 429
