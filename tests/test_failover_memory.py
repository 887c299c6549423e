"""Retries and fallback on the in-memory transport (gateway/upstream/memory.py): which models
are called, in which order, how often, and what the client is told; no sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.errors import BadRequest, RateLimited, UpstreamFailed, UpstreamTimeout
from gateway.policy.compiled import ModelTarget
from gateway.policy.model import ModelSpec
from gateway.upstream.base import UpstreamError
from gateway.upstream.failover import Failover
from gateway.upstream.memory import Answer, MemoryTransport

OK = {"choices": [{"index": 0, "message": {"content": "ok"}}]}


def target(name: str, retries: int = 0) -> ModelTarget:
    spec = ModelSpec(provider="openai_compatible", model=name, retries=retries)
    return ModelTarget(name, spec, None, {})


def run(answers: dict[str, list[Answer]], pool: list[ModelTarget], stream: bool = False) -> Any:
    """Call the pool through Failover; each model answers its list in turn."""
    transport = MemoryTransport(lambda t, body: answers[t.name].pop(0))
    outcomes: list[tuple[str, str | None, str | None]] = []
    failover = Failover(
        lambda t: transport,
        lambda t, err, route: outcomes.append((t.name, err and err.kind, route)),
    )
    if stream:
        result: Any = asyncio.run(failover.open_stream("r", pool, {}))
    else:
        result = asyncio.run(failover.complete("r", pool, {}))
    return result, transport.calls, outcomes


def status(code: int, retry_after: float | None = None) -> UpstreamError:
    return UpstreamError("status", f"status {code}", status=code, retry_after=retry_after)


def test_the_first_model_that_answers_serves_in_pool_order() -> None:
    (served, reply), calls, outcomes = run(
        {"a": [status(500)], "b": [OK]}, [target("a"), target("b")]
    )
    assert (served.name, reply.data, calls) == ("b", OK, ["a", "b"])
    assert outcomes == [("a", "status", "r"), ("b", None, None)]  # a fell back within r


def test_a_retryable_failure_is_retried_on_the_same_model_first() -> None:
    answers = {"a": [status(503, retry_after=0), OK]}
    (served, _), calls, _ = run(answers, [target("a", retries=1), target("b")])
    assert (served.name, calls) == ("a", ["a", "a"])


def test_a_client_fault_neither_retries_nor_falls_back() -> None:
    with pytest.raises(BadRequest):
        run({"a": [status(400)], "b": [OK]}, [target("a", retries=3), target("b")])


@pytest.mark.parametrize(
    ("failure", "error"),
    [(status(429, 0.4), RateLimited), (UpstreamError("timeout", "slow"), UpstreamTimeout),
     (status(502), UpstreamFailed), (UpstreamError("connect", "refused"), UpstreamFailed)],
)  # fmt: skip
def test_the_last_failure_decides_what_the_client_is_told(
    failure: UpstreamError, error: type[Exception]
) -> None:
    with pytest.raises(error):
        run({"a": [status(500)], "b": [failure]}, [target("a"), target("b")])


def test_a_stream_falls_back_until_its_first_bytes() -> None:
    answers: dict[str, list[Answer]] = {"a": [[]], "b": [[b"data: {}\n\n", b"data: [DONE]\n\n"]]}
    (served, opening), calls, _ = run(answers, [target("a"), target("b")], stream=True)
    assert (served.name, opening.first, calls) == ("b", b"data: {}\n\n", ["a", "b"])
