"""Operational endpoints: liveness, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
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
async def readyz(request: Request) -> dict[str, str]:
    # A Runtime only exists with a valid policy loaded, so serving this means ready.
    policy = runtime(request).policies.current
    return {"status": "ready", "policy": policy.name, "policy_version": policy.version}


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    registry = runtime(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
