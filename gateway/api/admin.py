"""Admin endpoints, behind the admin key: the active policy, reloading it on demand, one
answered request as the ledger keeps it (with its verdict, for audit), and the evaluation's
four numbers computed from production."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends

from gateway.api.deps import ReloaderDep, RuntimeDep, require_admin
from gateway.errors import BadRequest, NotFound, PolicyRejected, Unavailable
from gateway.eval.live import as_json, live_rows, parse_since
from gateway.state.base import StoreUnavailable

LEDGER_WAIT_S = 1.0

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])


@router.get("/policies")
async def active_policy(rt: RuntimeDep) -> dict[str, Any]:
    """The serving policy as JSON. Secrets appear only as {env: NAME}: the policy model cannot
    hold them any other way, and the values read from the environment are never shown."""
    store = rt.policies
    policy = store.current
    models = {
        name: {"usable": target.usable, "missing_env": list(target.missing_env)}
        for name, target in policy.models.items()
    }
    return {
        "name": policy.name,
        "version": policy.version,
        "files": list(policy.files),
        "loaded_at": store.loaded_at,
        "models": models,
        "spec": policy.spec.model_dump(mode="json"),
    }


@router.post("/policies/reload")
async def reload_policies(reloader: ReloaderDep) -> dict[str, Any]:
    """Reload now. 200 if the policy was swapped in (or is unchanged); 422 with every problem
    as file:line:col if it was rejected, in which case the last good policy keeps serving."""
    outcome = await reloader.reload("admin")
    if outcome.error is not None:
        raise PolicyRejected(
            f"The policy was rejected; still serving version {outcome.policy.version}. "
            f"Fix these and reload again:\n{outcome.error}"
        )
    return {
        "result": outcome.result,
        "name": outcome.policy.name,
        "version": outcome.policy.version,
        "previous_version": outcome.previous.version,
    }


@router.get("/requests/{request_id}")
async def answered_request(request_id: str, rt: RuntimeDep) -> dict[str, Any]:
    """What the ledger holds for one request: answered (who served it, and the verdict with
    the source that decided it and the evidence it quoted) or cancelled (no verdict)."""
    try:
        [record] = await rt.ledger.lookup([request_id], LEDGER_WAIT_S)
    except StoreUnavailable as exc:
        raise Unavailable(
            "The ledger cannot be read right now: the gateway's state store is unreachable.",
            code="state_unavailable",
        ) from exc
    if record is None:
        days = rt.settings.ledger_retention_s / 86400
        raise NotFound(
            f"No request '{request_id}' is on record: the id is unknown, or older "
            f"than the ledger's retention ({days:g} days).",
            param="request_id",
            code="request_not_found",
        )
    verdict = {
        "label": record.label,
        "kind": record.kind or None,
        "source": record.source,
        "evidence": record.evidence,
    }
    return {
        "request_id": record.request_id,
        "outcome": record.outcome,  # answered, or cancelled: the client left first
        "workflow": record.workflow,
        "route": record.route,
        "model": record.model,  # none: cancelled before any model answered
        "policy_version": record.policy_version,
        "time": record.time,
        "verdict": None if record.cancelled else verdict,
    }


@router.get("/eval/live")
async def live_numbers(rt: RuntimeDep, since: str = "7d") -> dict[str, Any]:
    """The evaluation's four numbers from production: counts per workflow, route and model over
    the window, from the ledger and feedback in the store (`floorgate eval report --live`)."""
    try:
        seconds = parse_since(since)
    except ValueError as exc:
        raise BadRequest(str(exc), param="since", code="invalid_window") from exc
    try:
        rows = await live_rows(rt.store, rt.policies.current, seconds, time.time())
    except StoreUnavailable as exc:
        raise Unavailable(
            "The statistics cannot be read right now: the gateway's state store is unreachable.",
            code="state_unavailable",
        ) from exc
    return as_json(rows, seconds)
