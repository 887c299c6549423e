"""Whether the serving policy can answer at all: every route has a model it could call.

A model cannot be called when a variable its policy references is unset, or when its
api_base names a host that does not resolve. Checked when a policy is readied (at start, and
for each reload in the reload's thread: resolving a name blocks), so /readyz only reads it.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.policy.compiled import ModelTarget, Policy

log = logging.getLogger("floorgate.readiness")


@dataclass(frozen=True, slots=True)
class Readiness:
    problems: tuple[str, ...] = ()  # one per route with no model it could call, with why

    @property
    def ready(self) -> bool:
        return not self.problems


def check(policy: Policy) -> Readiness:
    resolved: dict[str, bool] = {}
    why = {name: _why_not(target, resolved) for name, target in policy.models.items()}
    problems = []
    for route, spec in policy.spec.routes.items():
        reasons = [f"{model}: {why[model]}" for model in dict.fromkeys(spec.pool)]
        if all(why[model] for model in spec.pool):
            problems.append(f"route {route} has no model it could call ({'; '.join(reasons)})")
    readiness = Readiness(tuple(problems))
    for problem in problems:
        log.warning("policy %s: %s", policy.version, problem)
    return readiness


def _why_not(target: ModelTarget, resolved: dict[str, bool]) -> str:
    """'' when the model could be called, else what stops it."""
    if target.missing_env:
        return f"{', '.join(target.missing_env)} unset"
    host = urlsplit(target.api_base or "").hostname
    if host is None:
        return ""  # a provider litellm knows the address of
    if host not in resolved:
        resolved[host] = _resolves(host)
    return "" if resolved[host] else f"host {host} does not resolve"


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True
