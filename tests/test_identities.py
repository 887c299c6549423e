"""The request path's remembered identify() (gateway/identify.py's Identities) answers as
identify() does, every time: the same identity for what it keeps, the same error for what it
does not, and nothing of a policy once another has replaced it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.errors import GatewayError
from gateway.identify import Identities, identify
from gateway.keys import ANONYMOUS, Caller
from gateway.policy.compiled import Policy
from gateway.policy.store import PolicyStore

ROOT = Path(__file__).resolve().parent.parent
BOUND = Caller("bound", frozenset({"deploy-pipeline"}))
SOME = Caller("some", frozenset({"bulk-summarization", "draft-generation"}))
BODIES: list[dict[str, Any]] = [
    {"model": "workflow/bulk-summarization"},
    {"model": "workflow:draft-generation"},
    {"model": "route/calibration-first"},
    {"model": "route/capability-first"},
    {"model": "bulk-summarization"},
    {"model": "gpt-4.1"},  # not a name the policy knows
    {"model": "workflow/no-such-workflow"},
    {"model": "workflow/bulk-summarization", "metadata": {"workflow": "draft-generation"}},
    {"model": "workflow/bulk-summarization", "metadata": {"workflow": 0}},
    {"model": "workflow/bulk-summarization", "metadata": {"workflow": ["a"]}},
    {"model": "workflow/bulk-summarization", "metadata": {"workflow": 7}},
    {"model": "workflow/bulk-summarization", "metadata": "not an object"},
    {"model": ["workflow/bulk-summarization"]},
    {"model": 1},
    {"model": ""},
    {},
]


def policy() -> Policy:
    return PolicyStore.open(ROOT / "policies" / "default.yaml").current


def outcome(call: Any) -> Any:
    try:
        return call()
    except GatewayError as err:
        return (type(err), err.message, err.param)


@pytest.mark.parametrize("caller", [ANONYMOUS, BOUND, SOME], ids=["anyone", "bound", "some"])
@pytest.mark.parametrize("header", [None, "draft-generation", "deploy-pipeline"])
def test_remembered_or_not_it_is_identify_s_answer(caller: Caller, header: str | None) -> None:
    current, identities = policy(), Identities()
    for _ in range(2):  # the second time from what the first kept
        for body in BODIES:
            expected = outcome(lambda: identify(current, caller, header, body))  # noqa: B023
            got = outcome(lambda: identities.identify(current, caller, header, body))  # noqa: B023
            assert got == expected, body


def test_a_new_policy_forgets_the_old_one_s_identities() -> None:
    old, new, identities = policy(), policy(), Identities()
    body = {"model": "workflow/bulk-summarization"}
    first = identities.identify(old, ANONYMOUS, None, body)
    assert identities.identify(old, ANONYMOUS, None, body) is first
    assert identities.identify(new, ANONYMOUS, None, body) is not first


def test_it_keeps_at_most_its_limit() -> None:
    current, identities = policy(), Identities(limit=3)
    for n in range(10):
        identities.identify(current, ANONYMOUS, None, {"model": f"workflow/unknown-{n}"})
        assert len(identities._known) <= 3
