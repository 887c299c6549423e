"""POST /v1/route/explain: a dry run of a chat request's routing, with no upstream call.

The request is identified exactly as a real one (API key, X-Floorgate-Workflow, metadata,
`model`); the answer says which questions the tree asked, the route, and which model would
serve it now, and why; and each limit on the workflow and key, with what is used of it now.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.api.asgi import read_body
from gateway.api.deps import RuntimeDep
from gateway.explain import as_json, explain_identity
from gateway.identify import identify
from gateway.plan import parse_json

router = APIRouter()


@router.post("/v1/route/explain")
async def explain_route(request: Request, rt: RuntimeDep) -> JSONResponse:
    caller = rt.keys.authenticate(request.headers.get("authorization"))
    body = parse_json(await read_body(request.scope, request.receive, *rt.settings.body_limits))
    policy = rt.policies.current  # one reference, as a real request takes it
    identity = identify(policy, caller, request.headers.get("x-floorgate-workflow"), body)
    explanation = explain_identity(policy, identity, rt.health, rt.gates)
    limits = await rt.limits.usage(policy, identity.workflow, caller.name)
    return JSONResponse(
        as_json(explanation) | {"limits": limits},
        headers={"x-floorgate-policy-version": policy.version},
    )
