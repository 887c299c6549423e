"""The policy's data model, as written in YAML (apiVersion floorgate.dev/v1, kind RoutingPolicy)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME = r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$"
# Parameter names that carry credentials: they must be written as {env: NAME}, never inline.
SECRET_PARAM = re.compile(r"(key|secret|token|password|credential)", re.IGNORECASE)
# Providers that speak the OpenAI wire format and are called directly, without litellm.
OPENAI_WIRE_PROVIDERS = frozenset(
    {"openai", "openai_compatible", "hosted_vllm", "vllm", "llamacpp"}
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Strict):
    """A secret named by the environment variable that holds it."""

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class Trait(Strict):
    unsafe: bool
    description: str = ""


class Leaf(Strict):
    route: str


Branch = str | Leaf


class Node(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    ask: str
    yes: Branch
    no: Branch
    description: str = ""


class Tree(Strict):
    start: str
    nodes: dict[str, Node] = Field(min_length=1)


class Route(Strict):
    pool: list[str] = Field(min_length=1)
    # Higher is stricter; a caller may ask for a stricter route than its workflow's, never looser.
    strictness: int = 0
    description: str = ""
    # The calibration contract (gateway/calibration.py): off, or on with the client seeing
    # the contract's tool calls (passthrough) or their text (translate).
    calibration_contract: Literal["off", "passthrough", "translate"] = "off"


class ModelSpec(Strict):
    provider: str
    model: str
    api_base: str | None = None
    api_key: SecretRef | None = None
    transport: Literal["auto", "direct", "litellm"] = "auto"
    timeout_s: float = Field(default=600.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    first_token_timeout_s: float = Field(default=120.0, gt=0)
    retries: int = Field(default=1, ge=0, le=5)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("api_key", mode="before")
    @classmethod
    def _no_inline_key(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(
                "api_key is written inline; reference it instead: api_key: {env: PROVIDER_API_KEY}"
            )
        return value

    @field_validator("params")
    @classmethod
    def _no_inline_secret_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        for name, value in params.items():
            if SECRET_PARAM.search(name) and not (isinstance(value, dict) and "env" in value):
                raise ValueError(
                    f"params.{name} looks like a secret; write it as {{env: VAR_NAME}}"
                )
        return params

    @property
    def direct(self) -> bool:
        """True when this model is called over the OpenAI wire format without litellm."""
        if self.transport != "auto":
            return self.transport == "direct"
        return self.provider in OPENAI_WIRE_PROVIDERS


class Workflow(Strict):
    traits: dict[str, bool] = Field(default_factory=dict)
    description: str = ""
    # Overrides its route's calibration_contract when set.
    calibration_contract: Literal["off", "passthrough", "translate"] | None = None


class Spec(Strict):
    traits: dict[str, Trait] = Field(min_length=1)
    tree: Tree
    routes: dict[str, Route] = Field(min_length=1)
    models: dict[str, ModelSpec] = Field(min_length=1)
    workflows: dict[str, Workflow] = Field(default_factory=dict)
    default_workflow: str
    # Whether callers may name a declared model directly (still only within their route).
    expose_models: bool = False


class Metadata(Strict):
    name: str = Field(pattern=NAME)
    description: str = ""


class PolicyDocument(Strict):
    apiVersion: Literal["floorgate.dev/v1"]
    kind: Literal["RoutingPolicy"]
    metadata: Metadata
    spec: Spec
