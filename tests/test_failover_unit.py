"""The pure parts of retries and fallback: Retry-After read from an upstream, and the status
and Retry-After a client is told."""

from __future__ import annotations

import math

import openai
import pytest

from gateway.errors import RateLimited
from gateway.upstream.base import UpstreamError, parse_retry_after
from gateway.upstream.failover import gateway_error


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2.0), ("0.4", 0.4), ("-3", 0.0), ("1e9", 3600.0), ("inf", None), ("-inf", None),
     ("nan", None), ("soon", None), ("Wed, 21 Oct 2026 07:28:00 GMT", None), (None, None)],
)  # fmt: skip
def test_retry_after_is_finite_and_bounded(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


@pytest.mark.parametrize(
    ("retry_after", "told"), [(None, "1"), (0.4, "1"), (0.0, "1"), (7.2, "8"), (3600.0, "3600")]
)
def test_a_client_is_told_whole_seconds_never_zero(retry_after: float | None, told: str) -> None:
    err = gateway_error(
        UpstreamError("status", "slow down", status=429, retry_after=retry_after), "m"
    )
    assert isinstance(err, RateLimited)
    assert err.headers["retry-after"] == told
    assert not math.isinf(float(told))


def test_retry_after_inf_from_an_upstream_is_a_429_not_a_500(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model="route/retry-after-inf", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.response.headers["retry-after"] == "1"
