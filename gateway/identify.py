"""Which workflow a request routes as, and which route and models may serve it.

Order (DESIGN.md): a key bound to one workflow always wins; otherwise the
X-Floorgate-Workflow header, then metadata.workflow, then a `workflow/<name>` model; each
only if the key may use it. A caller may ask for a stricter route, never a looser one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import BadRequest, ModelNotFound, PermissionDenied
from gateway.keys import Caller
from gateway.policy.compiled import Policy
from gateway.policy.tree import Decision

WORKFLOW_PREFIX = "workflow/"
ROUTE_PREFIX = "route/"
WORKFLOW_COLON = "workflow:"
ROUTE_COLON = "route:"


@dataclass(frozen=True, slots=True)
class Identity:
    workflow: str  # always a declared workflow: unknown names route as the default
    requested: str | None  # the workflow name the request asked for, if any
    decision: Decision
    route: str
    pinned_model: str | None  # a declared model the caller named, within its route

    @property
    def unknown_workflow(self) -> bool:
        return self.requested is not None and self.requested != self.workflow


@dataclass(frozen=True, slots=True)
class ModelField:
    workflow: str | None = None
    route: str | None = None
    model: str | None = None


def parse_model_field(policy: Policy, value: object) -> ModelField:
    if not isinstance(value, str) or not value:
        raise BadRequest(
            "'model' is required: use workflow/<name>, route/<name> or see GET /v1/models.",
            param="model",
        )
    # `workflow:<name>` and `route:<name>` too: frameworks take what precedes a '/' for a
    # provider (the Agents SDK: "Unknown prefix: workflow").
    for prefix in (WORKFLOW_PREFIX, WORKFLOW_COLON):
        if value.startswith(prefix):
            return ModelField(workflow=value[len(prefix) :])
    for prefix in (ROUTE_PREFIX, ROUTE_COLON):
        if value.startswith(prefix) and value[len(prefix) :] in policy.spec.routes:
            return ModelField(route=value[len(prefix) :])
    target = policy.models.get(value) if policy.spec.expose_models else None
    if target is not None and target.spec.serves == "chat":
        return ModelField(model=value)
    if value in policy.spec.workflows:  # a declared workflow's bare name
        return ModelField(workflow=value)
    raise ModelNotFound(
        f"The model '{value}' does not exist. Use workflow/<name>, route/<name> or a model "
        "listed by GET /v1/models.",
        param="model",
    )


def identify(policy: Policy, caller: Caller, header: str | None, body: dict[str, Any]) -> Identity:
    try:
        field = parse_model_field(policy, body.get("model"))
    except ModelNotFound:
        if not (caller.bound or header):
            raise
        # The key or the header already names the workflow: a framework's own default model
        # name ("gpt-4.1") then means "this workflow's route", not a 404.
        field = ModelField()
    workflow, requested = workflow_for(policy, caller, header, body, field.workflow)
    decision = policy.decisions[workflow]
    route = _stricter(policy, decision.route, field.route)
    if field.model is not None:
        route = _route_for_model(policy, workflow, route, field.model)
    return Identity(workflow, requested, decision, route, field.model)


class Identities:
    """identify() for one policy's requests, remembered by all that it reads of them: the
    caller, the header, `model` and `metadata.workflow` (a few hundred ns a request instead of
    ~2 µs). Only what identified without an error is kept, at most `limit`, forgotten at once
    when full or when the policy changes."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._policy: Policy | None = None
        self._known: dict[tuple[Any, ...], Identity] = {}

    def identify(
        self, policy: Policy, caller: Caller, header: str | None, body: dict[str, Any]
    ) -> Identity:
        if policy is not self._policy:
            self._policy, self._known = policy, {}
        metadata = body.get("metadata")
        from_metadata = metadata.get("workflow") if isinstance(metadata, dict) else None
        key = (caller, header, body.get("model"), from_metadata)
        try:
            found = self._known.get(key)
        except TypeError:  # a list or an object where a name goes: identify() says what is wrong
            return identify(policy, caller, header, body)
        if found is None:
            found = identify(policy, caller, header, body)
            if len(self._known) >= self.limit:
                self._known = {}
            self._known[key] = found
        return found


def workflow_for(
    policy: Policy,
    caller: Caller,
    header: str | None,
    body: dict[str, Any],
    from_model: str | None,
) -> tuple[str, str | None]:
    """The declared workflow a request routes as, and the name it asked for, if any: the
    key's own workflow, else the one it names, else (unnamed or undeclared) the default."""
    requested = caller.bound or _requested_workflow(caller, header, body, from_model)
    if requested is not None and requested in policy.decisions:
        return requested, requested
    return policy.spec.default_workflow, requested


def _requested_workflow(
    caller: Caller, header: str | None, body: dict[str, Any], from_model: str | None
) -> str | None:
    """The workflow the request names (header, metadata, model), if the key may use it."""
    metadata = body.get("metadata")
    from_metadata = metadata.get("workflow") if isinstance(metadata, dict) else None
    for name in (header, from_metadata, from_model):
        if name:
            if not isinstance(name, str):
                raise BadRequest("metadata.workflow must be a string.", param="metadata.workflow")
            if not caller.may_use(name):
                raise PermissionDenied(
                    f"This API key may not use workflow '{name}'. It may use: "
                    f"{', '.join(sorted(caller.workflows or ()))}.",
                    code="workflow_not_allowed",
                )
            return name
    return None


def _stricter(policy: Policy, decided: str, asked: str | None) -> str:
    routes = policy.spec.routes
    if asked is not None and routes[asked].strictness >= routes[decided].strictness:
        return asked
    return decided


def _route_for_model(policy: Policy, workflow: str, route: str, model: str) -> str:
    """`route` if its pool has `model`, else the least strict stricter route that does."""
    if model in policy.spec.routes[route].pool:
        return route
    floor = policy.spec.routes[route].strictness
    allowed = sorted(
        (r.strictness, name)
        for name, r in policy.spec.routes.items()
        if model in r.pool and r.strictness >= floor
    )
    if not allowed:
        raise PermissionDenied(
            f"Model '{model}' may not serve workflow '{workflow}', which routes to '{route}' "
            f"(pool: {', '.join(policy.spec.routes[route].pool)}).",
            param="model",
            code="model_not_allowed",
        )
    return allowed[0][1]
