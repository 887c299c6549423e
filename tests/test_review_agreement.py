"""Cohen's kappa on worked examples, and the pairs of reviewers it is measured for."""

from __future__ import annotations

import pytest

from gateway.review.agreement import Agreement, agreements, cohen_kappa


def test_the_textbook_example() -> None:
    # 50 items: both yes 20, first yes second no 5, first no second yes 10, both no 15.
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    # p_o = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = 0.2 / 0.5
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_four_outcomes() -> None:
    a = ["merged", "merged", "rejected", "escaped_defect", "merged_with_edits", "rejected"]
    b = ["merged", "merged_with_edits", "rejected", "escaped_defect", "merged_with_edits", "merged"]
    # p_o = 4/6; p_e = (merged 2*2 + rejected 2*1 + escaped 1*1 + with edits 1*2) / 36 = 9/36
    assert cohen_kappa(zip(a, b, strict=True)) == pytest.approx((4 / 6 - 9 / 36) / (1 - 9 / 36))


def test_the_edges() -> None:
    assert cohen_kappa([]) is None
    assert cohen_kappa([("merged", "merged")] * 3) == 1.0  # one category, full agreement
    assert cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)  # always opposite


def test_each_two_reviewers_over_the_outputs_both_marked() -> None:
    marks = {
        "o1": {"alice": "merged", "bob": "merged", "carol": "rejected"},
        "o2": {"alice": "rejected", "bob": "merged"},
        "o3": {"alice": "merged"},
    }
    assert agreements(marks) == [
        Agreement("alice", "bob", 2, 1, 0.0),
        Agreement("alice", "carol", 1, 0, 0.0),
        Agreement("bob", "carol", 1, 0, 0.0),
    ]
