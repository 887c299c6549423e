"""The decision tree: a pure `decide()` over workflow traits, and the proofs the loader runs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from gateway.policy.model import Branch, Leaf, Spec
from gateway.policy.yamlpos import Path_


@dataclass(frozen=True, slots=True)
class Step:
    """One question on the way to a route: what was asked, the answer used, and why."""

    node: str
    trait: str
    answer: bool
    declared: bool  # False: the workflow did not say, so the trait's unsafe answer was used

    def __str__(self) -> str:
        source = "declared" if self.declared else "not declared: unsafe answer"
        return f"{self.trait}? {'yes' if self.answer else 'no'} ({source})"


@dataclass(frozen=True, slots=True)
class Decision:
    route: str
    path: tuple[Step, ...]

    def __str__(self) -> str:
        """The path in one line: `reversible? yes (declared) -> ... -> route NAME`."""
        return " -> ".join([*map(str, self.path), f"route {self.route}"])


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path_
    message: str


def decide(spec: Spec, traits: Mapping[str, bool]) -> Decision:
    """Walk the tree from its start; a trait the workflow does not declare takes its unsafe answer.

    Only valid on a spec that `check_tree` found no problem in: it is total and acyclic.
    """
    steps: list[Step] = []
    branch: Branch = spec.tree.start
    while not isinstance(branch, Leaf):
        node = spec.tree.nodes[branch]
        declared = node.ask in traits
        answer = traits[node.ask] if declared else spec.traits[node.ask].unsafe
        steps.append(Step(branch, node.ask, answer, declared))
        branch = node.yes if answer else node.no
    return Decision(branch.route, tuple(steps))


def check_tree(spec: Spec) -> list[Problem]:
    """Prove the tree total, acyclic and fully reachable, over declared traits and routes."""
    problems = list(_check_references(spec))
    if problems:
        return problems
    return list(_check_shape(spec))


def _check_references(spec: Spec) -> Iterator[Problem]:
    nodes = spec.tree.nodes
    if spec.tree.start not in nodes:
        yield Problem(
            ("spec", "tree", "start"),
            f"start names node '{spec.tree.start}', which is not defined; "
            f"use one of: {', '.join(sorted(nodes))}",
        )
    for name, node in nodes.items():
        if node.ask not in spec.traits:
            yield Problem(
                ("spec", "tree", "nodes", name, "ask"),
                f"node '{name}' asks about trait '{node.ask}', which is not declared; "
                "declare it under spec.traits with its unsafe answer",
            )
        for answer in ("yes", "no"):
            yield from _check_branch(spec, name, answer, getattr(node, answer))


def _check_branch(spec: Spec, name: str, answer: str, branch: Branch) -> Iterator[Problem]:
    where = ("spec", "tree", "nodes", name, answer)
    if isinstance(branch, Leaf):
        if branch.route not in spec.routes:
            yield Problem(
                where,
                f"leaf names route '{branch.route}', which is not defined; "
                f"define it under spec.routes or use one of: {', '.join(sorted(spec.routes))}",
            )
    elif branch not in spec.tree.nodes:
        yield Problem(
            where,
            f"branch leads to node '{branch}', which is not defined; "
            "name a node under spec.tree.nodes or end the branch with {route: NAME}",
        )


def _check_shape(spec: Spec) -> Iterator[Problem]:
    nodes = spec.tree.nodes
    reached: set[str] = set()
    explored: set[str] = set()  # every path below these was already walked

    def walk(name: str, trail: tuple[str, ...]) -> Iterator[Problem]:
        if name in explored:
            return
        if name in trail:
            cycle = " -> ".join((*trail[trail.index(name) :], name))
            yield Problem(
                ("spec", "tree", "nodes", name),
                f"the tree has a cycle ({cycle}); every path must end in a route",
            )
            return
        reached.add(name)
        for branch in (nodes[name].yes, nodes[name].no):
            if not isinstance(branch, Leaf):
                yield from walk(branch, (*trail, name))
        explored.add(name)

    yield from walk(spec.tree.start, ())
    for name in nodes.keys() - reached:
        yield Problem(
            ("spec", "tree", "nodes", name),
            f"node '{name}' is not reached from start '{spec.tree.start}'; link it or remove it",
        )
