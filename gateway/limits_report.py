"""`floorgate explain`'s limits: each one a workflow and its keys declare, with what is used of
it now when the shared store (FLOORGATE_REDIS_URL) can say; a lone gateway's in-memory counts
are its own, which `POST /v1/route/explain` shows."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from gateway.limits import Limiter, plan
from gateway.metrics import Metrics
from gateway.policy.compiled import Policy
from gateway.pricing import PriceTable
from gateway.settings import Settings
from gateway.state import open_store


def limits_text(policy: Policy, workflow: str, settings: Settings) -> list[str]:
    name = workflow if workflow in policy.spec.workflows else policy.spec.default_workflow
    limits = policy.spec.workflows[name].limits
    if limits is None:
        return [f"limits: none declared for {name}"]
    if settings.redis_url is None:
        rows = [_declared(p.limit, p.level, p.check.limit, p.mode) for p in _planned(policy, name)]
        note = "(live usage: set FLOORGATE_REDIS_URL, or POST /v1/route/explain to a gateway)"
    else:
        rows = asyncio.run(_live(policy, name, settings))
        note = "(live usage from the shared store)"
    lines = [f"limits of {name}:"]
    for row in rows:
        used = "" if row["used"] is None else f", used {_amount(row, row['used'])}"
        lines.append(
            f"  {row['applies_to']}: {row['limit']} {_amount(row, row['max'])}{used}"
            f" ({row['when_store_down']})"
        )
    return [*lines, note]


def _planned(policy: Policy, workflow: str) -> list[Any]:
    limits = policy.spec.workflows[workflow].limits
    assert limits is not None
    out = plan(limits, workflow, "", 0)
    for key in limits.keys:
        out += [p for p in plan(limits, workflow, key, 0) if p.level == key]
    return out


def _declared(limit: str, level: str, bound: int, mode: str) -> dict[str, Any]:
    scale = 1_000_000 if limit == "spend_per_day" else 1
    return {"limit": limit, "applies_to": level, "max": bound / scale, "used": None,
            "when_store_down": mode}  # fmt: skip


async def _live(policy: Policy, workflow: str, settings: Settings) -> list[dict[str, Any]]:
    store = open_store(settings)
    limiter = Limiter(store, Metrics(CollectorRegistry()), PriceTable(),
                      settings.limits_timeout_s * 4, settings.limits_lease_s)  # fmt: skip
    limits = policy.spec.workflows[workflow].limits
    assert limits is not None
    try:
        rows = await limiter.usage(policy, workflow, "")
        for key in limits.keys:
            rows += [
                r for r in await limiter.usage(policy, workflow, key) if r["applies_to"] == key
            ]
    finally:
        await store.close()
    return rows


def _amount(row: dict[str, Any], value: float) -> str:
    return f"${value:g}" if row["limit"] == "spend_per_day" else f"{value:g}"
