"""Wilson intervals and the exact McNemar test, against values computed by hand."""

from __future__ import annotations

import math

import pytest

from gateway.eval.stats import Rate, mcnemar_exact, wilson


def test_wilson_matches_the_published_values() -> None:
    assert wilson(0, 20) == pytest.approx((0.0, 0.16113), abs=1e-5)  # the "rule of three" case
    assert wilson(10, 20) == pytest.approx((0.29930, 0.70070), abs=1e-5)
    assert wilson(20, 20) == pytest.approx((0.83887, 1.0), abs=1e-5)


def test_wilson_stays_inside_zero_one_and_narrows_with_n() -> None:
    for n in (1, 5, 20, 200):
        for k in range(n + 1):
            low, high = wilson(k, n)
            assert 0.0 <= low <= k / n <= high <= 1.0
    assert wilson(50, 200)[1] - wilson(50, 200)[0] < wilson(5, 20)[1] - wilson(5, 20)[0]


def test_wilson_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson(3, 2)
    with pytest.raises(ValueError, match="n > 0"):
        wilson(0, 0)


def test_exact_mcnemar_is_the_two_sided_binomial_on_discordant_pairs() -> None:
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(5, 1) == pytest.approx(2 * (1 + 6) / 64)
    assert mcnemar_exact(3, 3) == 1.0  # capped: the two tails overlap
    assert mcnemar_exact(0, 0) == 1.0  # no discordant pair: no evidence either way
    assert mcnemar_exact(0, 20) == pytest.approx(2 / 2**20)
    assert mcnemar_exact(2, 9) == pytest.approx(2 * sum(math.comb(11, i) for i in range(3)) / 2**11)


def test_rate_text_states_value_interval_and_sample_size() -> None:
    assert Rate(3, 12).text() == "25% [9-53%] n=12"
    assert Rate(0, 0).text() == "- n=0"
    assert Rate(0, 0).value is None and Rate(0, 0).interval is None
