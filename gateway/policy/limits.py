"""Limits in the policy: how much a workflow, and each API key within it, may use.

A workflow declares its own limits; `keys:` narrows them for named API keys (the names of the
keys file, or `env-key-N` for FLOORGATE_API_KEYS). Both are enforced on every request, so a
key's effective limit is the tighter of the two; `floorgate check` refuses a key limit looser
than its workflow's, which would only mislead its reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.policy.yamlpos import Path_

StoreDownMode = Literal["fail_open", "fail_closed"]
LimitName = Literal["requests_per_minute", "tokens_per_minute", "spend_per_day", "concurrency"]
LIMIT_NAMES: tuple[LimitName, ...] = (
    "requests_per_minute",
    "tokens_per_minute",
    "spend_per_day",
    "concurrency",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Limit(_Strict):
    """One limit: a number, or {max: N, when_store_down: fail_closed}."""

    max: float = Field(gt=0)
    when_store_down: StoreDownMode = "fail_open"
    """Shared store (Redis) unreachable: fail_open serves and counts in this replica alone
    (floorgate_limits_local says so); fail_closed answers 503."""

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"max": value}
        return value


class KeyLimits(_Strict):
    """Limits counted per API key within the workflow; each only as strict or stricter."""

    requests_per_minute: Limit | None = None
    """Requests admitted over the last minute (a sliding window)."""
    tokens_per_minute: Limit | None = None
    """Prompt + completion tokens over the last minute: estimated when the request arrives
    (prompt text / 4 + max_tokens), corrected from the upstream's usage when it ends."""
    spend_per_day: Limit | None = None
    """Dollars per UTC day, priced from the same table as floorgate_cost_dollars_total.
    Requests are admitted while the day's spend is below it; the one that crosses it finishes."""
    concurrency: Limit | None = None
    """Requests in flight at once, across replicas."""

    def declared(self) -> Iterator[tuple[LimitName, Limit]]:
        for name in LIMIT_NAMES:
            limit = getattr(self, name)
            if limit is not None:
                yield name, limit


class Limits(KeyLimits):
    """A workflow's limits, shared by every replica through the state store."""

    keys: dict[str, KeyLimits] = Field(default_factory=dict)
    """Stricter limits for named API keys (as the keys file names them)."""


def check_limits(workflow: str, limits: Limits) -> Iterator[tuple[Path_, str]]:
    """(path, message) for each key limit looser than its workflow's (amount or mode)."""
    base: Path_ = ("spec", "workflows", workflow, "limits")
    own = dict(limits.declared())
    for key, key_limits in limits.keys.items():
        for name, limit in key_limits.declared():
            bound = own.get(name)
            if bound is not None and limit.max > bound.max:
                yield (
                    (*base, "keys", key, name),
                    f"key '{key}' may not loosen workflow '{workflow}': its {name} "
                    f"{limit.max:g} is above the workflow's {bound.max:g}; lower it to at "
                    f"most {bound.max:g}",
                )
            loosened_mode = limit.when_store_down == "fail_open"
            if bound is not None and bound.when_store_down == "fail_closed" and loosened_mode:
                yield (
                    (*base, "keys", key, name, "when_store_down"),
                    f"key '{key}' may not loosen workflow '{workflow}': its {name} fails "
                    "open while the workflow's fails closed; write when_store_down: fail_closed",
                )
