"""Admin endpoints, behind the admin key: the active policy, and reloading it on demand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from gateway.api.deps import ReloaderDep, RuntimeDep, require_admin
from gateway.errors import PolicyRejected

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
