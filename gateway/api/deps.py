"""FastAPI dependencies as Annotated aliases: the runtime, the policy reloader, the admin check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from gateway.errors import PermissionDenied, Unauthorized
from gateway.keys import digest
from gateway.reload import PolicyReloader
from gateway.runtime import Runtime


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _reloader(request: Request) -> PolicyReloader:
    reloader: PolicyReloader = request.app.state.reloader
    return reloader


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
ReloaderDep = Annotated[PolicyReloader, Depends(_reloader)]


def require_admin(request: Request, rt: RuntimeDep) -> None:
    """The admin key, as `Authorization: Bearer`. With no admin key configured, admin endpoints
    are open only on a gateway that has no API keys either (loopback development)."""
    authorization = request.headers.get("authorization")
    admin_key = rt.settings.admin_key
    if admin_key is None:
        if rt.keys.open:
            return
        raise PermissionDenied(
            "Admin endpoints are off: set FLOORGATE_ADMIN_KEY on the gateway and send it as "
            "'Authorization: Bearer <key>'.",
            code="admin_disabled",
        )
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("Missing admin key: send it as 'Authorization: Bearer <key>'.")
    presented = digest(authorization[7:].strip())
    if hmac.compare_digest(presented, digest(admin_key.get_secret_value())):
        return
    rt.keys.authenticate(authorization)  # a key the gateway does not know at all is a 401
    raise PermissionDenied(
        "This key is not the admin key; admin endpoints need FLOORGATE_ADMIN_KEY.",
        code="not_admin",
    )
