"""Why a request routes where it does: each question the tree asked and the answer it used, the
route, and which model of the route's pool would serve it now, and why.

`floorgate explain` prints an Explanation as text; `POST /v1/route/explain` returns it as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from gateway.errors import Unavailable
from gateway.gates import Gates
from gateway.identify import Identity
from gateway.policy.compiled import Policy
from gateway.policy.tree import Decision, Step, decide
from gateway.selection import Health, candidates


@dataclass(frozen=True, slots=True)
class PoolEntry:
    name: str
    position: int  # 1-based, in the route's pool
    provider: str
    model: str
    usable: bool
    missing_env: tuple[str, ...]  # variable names only, never values
    healthy: bool
    why: str
    gate: dict[str, Any] | None = None  # the live gate's verdict and numbers, if gated
    admission: dict[str, Any] | None = None  # the evaluation that admitted it, if required


@dataclass(frozen=True, slots=True)
class Explanation:
    policy: Policy
    workflow: str
    workflow_why: str
    decision: Decision
    route: str
    route_why: str
    pool: tuple[PoolEntry, ...]
    model: str | None
    model_why: str
    given: frozenset[str] = frozenset()  # traits set by the asker (`--trait`), not the workflow


def explain_identity(
    policy: Policy, identity: Identity, health: Health, gates: Gates | None = None
) -> Explanation:
    """Explain a request exactly as `identify` placed it (and, with `gates`, as they stand)."""
    route_why = _route_why(identity.decision.route, identity.route, identity.pinned_model)
    pool, model, model_why = _pool(policy, identity.route, identity.pinned_model, health, gates)
    return Explanation(
        policy,
        identity.workflow,
        _workflow_why(policy, identity.workflow, identity.requested),
        identity.decision,
        identity.route,
        route_why,
        pool,
        model,
        model_why,
    )


def explain_workflow(
    policy: Policy, workflow: str, given: Mapping[str, bool], health: Health
) -> Explanation:
    """Explain a workflow by name, with some of its trait answers replaced by `given`."""
    spec = policy.spec
    name = workflow if workflow in spec.workflows else spec.default_workflow
    decision = decide(spec, {**spec.workflows[name].traits, **given})
    pool, model, model_why = _pool(policy, decision.route, None, health, None)
    return Explanation(
        policy,
        name,
        _workflow_why(policy, name, workflow),
        decision,
        decision.route,
        "the tree's leaf",
        pool,
        model,
        model_why,
        frozenset(given),
    )


def _workflow_why(policy: Policy, workflow: str, requested: str | None) -> str:
    if requested is None:
        return f"no workflow named: routed as the default '{workflow}'"
    if requested != workflow:
        return f"workflow '{requested}' is not declared: routed as the default '{workflow}'"
    return "declared in the policy"


def _route_why(decided: str, route: str, pinned: str | None) -> str:
    if route == decided:
        return "the tree's leaf"
    if pinned is not None:
        return f"the request named model '{pinned}', which the stricter route '{route}' serves"
    return f"the request asked for route '{route}', at least as strict as '{decided}'"


def _pool(
    policy: Policy, route: str, pinned: str | None, health: Health, gates: Gates | None
) -> tuple[tuple[PoolEntry, ...], str | None, str]:
    try:
        order = [target.name for target in candidates(policy, route, pinned, health, gates)]
        unavailable = ""
    except Unavailable as err:
        order, unavailable = [], err.message
    entries = tuple(
        _admitted(_gated(_entry(policy, name, position, order, pinned, health), route, gates),
                  policy, route)
        for position, name in enumerate(policy.spec.routes[route].pool, 1)
    )  # fmt: skip
    if not order:
        return entries, None, unavailable
    return entries, order[0], next(e.why for e in entries if e.name == order[0])


def _entry(
    policy: Policy, name: str, position: int, order: list[str], pinned: str | None, health: Health
) -> PoolEntry:
    target = policy.models[name]
    healthy = health.healthy(name)
    if not target.usable:
        why = f"not usable: {', '.join(target.missing_env)} not set in the gateway's environment"
    elif name not in order:
        why = f"not tried: the request named model '{pinned}'"
    elif order.index(name) == 0:
        why = _serving_why(pinned, healthy)
    elif healthy:
        why = f"fallback {order.index(name)}: tried if the models before it fail"
    else:
        why = "resting after repeated failures: tried last"
    spec = target.spec
    return PoolEntry(
        name, position, spec.provider, spec.model, target.usable, target.missing_env, healthy, why
    )


def _gated(entry: PoolEntry, route: str, gates: Gates | None) -> PoolEntry:
    state = gates.state(route, entry.name) if gates is not None else None
    if state is None:
        return entry
    gate = {"passing": state.passing, "failures": list(state.failures)}
    why = entry.why
    if not state.passing and entry.why.startswith("not tried"):
        why = f"skipped: failing its gate ({'; '.join(state.failures)})"
    return replace(entry, gate=gate, why=why)


def _admitted(entry: PoolEntry, policy: Policy, route: str) -> PoolEntry:
    found = policy.admissions.get((route, entry.name))
    return replace(entry, admission=found.as_json()) if found is not None else entry


def admission_text(admission: Mapping[str, Any]) -> str:
    numbers = admission["numbers"]
    return (
        f"admitted {admission['admitted_at']} by evaluation {admission['results_digest']} "
        f"({admission['candidate']} on {admission['tickets']}; escape "
        f"{numbers.get('escape', '-')}, merge {numbers.get('merge', '-')})"
    )


def _serving_why(pinned: str | None, healthy: bool) -> str:
    if pinned is not None:
        return "serves now: the request named it"
    if healthy:
        return "serves now: the first usable, healthy model in pool order"
    return "serves now: every usable model is resting after failures; the first is tried anyway"


def _source(step: Step, given: frozenset[str]) -> str:
    if step.trait in given:
        return "given"
    return "declared" if step.declared else "unsafe_default"


def _question(policy: Policy, step: Step) -> str:
    node = policy.spec.tree.nodes[step.node]
    return node.description or policy.spec.traits[step.trait].description or f"{step.trait}?"


def _step_json(e: Explanation, step: Step) -> dict[str, Any]:
    return {
        "node": step.node,
        "trait": step.trait,
        "question": _question(e.policy, step),
        "value": step.answer,
        "source": _source(step, e.given),
    }


def as_json(e: Explanation) -> dict[str, Any]:
    steps = [_step_json(e, step) for step in e.decision.path]
    pool = [{**asdict(p), "missing_env": list(p.missing_env)} for p in e.pool]
    return {
        "policy": {"name": e.policy.name, "version": e.policy.version},
        "workflow": e.workflow,
        "workflow_why": e.workflow_why,
        "steps": steps,
        "decided_route": e.decision.route,
        "route": e.route,
        "route_why": e.route_why,
        "model": e.model,
        "model_why": e.model_why,
        "pool": pool,
    }


SOURCES = {
    "declared": "declared",
    "given": "given with --trait",
    "unsafe_default": "not declared: unsafe answer",
}


def as_text(e: Explanation) -> str:
    lines = [
        f"policy {e.policy.name} (version {e.policy.version})",
        f"workflow {e.workflow}: {e.workflow_why}",
    ]
    for i, step in enumerate(e.decision.path, 1):
        node = "" if step.node == step.trait else f"{step.node}: "
        answer = "yes" if step.answer else "no"
        question = _question(e.policy, step)
        about = "" if question == f"{step.trait}?" else f"  ({question})"
        source = SOURCES[_source(step, e.given)]
        lines.append(f"  {i}. {node}{step.trait}? {answer}, {source}{about}")
    lines.append(f"  -> route {e.decision.route}")
    if e.route != e.decision.route:
        lines.append(f"  -> route {e.route}: {e.route_why}")
    lines.append(f"pool of {e.route}:")
    for p in e.pool:
        lines.append(f"  {p.position}. {p.name} ({p.provider} {p.model}): {p.why}")
        if p.admission is not None:
            lines.append(f"     {admission_text(p.admission)}")
    lines.append(f"model: {e.model or 'none'}" + ("" if e.model else f": {e.model_why}"))
    return "\n".join(lines)
