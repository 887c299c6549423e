"""The policy's own tests (spec.tests): each names a workflow or a set of traits and the route
the tree must reach. They run on every load, so a policy that contradicts them never serves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from gateway.policy.model import PolicyTest, Spec
from gateway.policy.tree import Problem, decide


def check_expectations(spec: Spec) -> Iterator[Problem]:
    """One problem per test that names something undefined or whose route differs.

    Only valid on a spec whose tree `check_tree` proved sound.
    """
    for i, test in enumerate(spec.tests):
        where = ("spec", "tests", i)
        undefined = list(_references(spec, test, where))
        if undefined:
            yield from undefined
            continue
        decision = decide(spec, _traits(spec, test))
        if decision.route != test.expect:
            yield Problem(
                where,
                f"test expects {_subject(test)} to route to '{test.expect}', but the tree "
                f"took: {decision}; fix the tree, the workflow's traits, or the test",
            )


def _traits(spec: Spec, test: PolicyTest) -> Mapping[str, bool]:
    if test.workflow is not None:
        return spec.workflows[test.workflow].traits
    return test.traits or {}


def _subject(test: PolicyTest) -> str:
    if test.workflow is not None:
        return f"workflow '{test.workflow}'"
    answers = ", ".join(f"{k}: {str(v).lower()}" for k, v in (test.traits or {}).items())
    return f"traits {{{answers}}}"


def _references(spec: Spec, test: PolicyTest, where: tuple[str | int, ...]) -> Iterator[Problem]:
    if test.workflow is not None and test.workflow not in spec.workflows:
        yield Problem(
            (*where, "workflow"),
            f"test names workflow '{test.workflow}', which is not declared; declare it under "
            "spec.workflows or fix its spelling",
        )
    for trait in test.traits or {}:
        if trait not in spec.traits:
            yield Problem(
                (*where, "traits", trait),
                f"test sets trait '{trait}', which is not declared; declare it under "
                "spec.traits or fix its spelling",
            )
    if test.expect not in spec.routes:
        yield Problem(
            (*where, "expect"),
            f"test expects route '{test.expect}', which is not defined; use one of: "
            f"{', '.join(sorted(spec.routes))}",
        )
