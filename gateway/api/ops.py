"""Operational endpoints: liveness, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.runtime import Runtime

router = APIRouter()


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when a valid policy is loaded (a Runtime only exists with one) and each of its
    routes has a model it could call; else 503 with each route's reason."""
    rt = runtime(request)
    policy = rt.policies.current
    body: dict[str, object] = {"policy": policy.name, "policy_version": policy.version}
    if rt.readiness.ready:
        return JSONResponse({"status": "ready", **body})
    reasons = list(rt.readiness.problems)
    return JSONResponse({"status": "not_ready", **body, "reasons": reasons}, status_code=503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    registry = runtime(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
