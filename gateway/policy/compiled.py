"""A loaded policy, compiled for the request path: decisions and secrets resolved once, at load."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.policy.admissions import Admission
from gateway.policy.model import ENV_REFERENCE, ModelSpec, Spec
from gateway.policy.tree import Decision, decide


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """A declared model, ready to call: its endpoint and credentials resolved from the env."""

    name: str
    spec: ModelSpec
    api_key: str | None = field(repr=False)
    params: Mapping[str, Any] = field(repr=False)
    missing_env: tuple[str, ...] = ()
    endpoint: str | None = None  # api_base with its ${VAR} references resolved

    @property
    def usable(self) -> bool:
        return not self.missing_env

    @property
    def api_base(self) -> str | None:
        return self.endpoint if self.endpoint is not None else self.spec.api_base


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    version: str
    files: tuple[str, ...]
    spec: Spec
    decisions: Mapping[str, Decision]
    models: Mapping[str, ModelTarget]
    embedding_models: tuple[str, ...]  # those a /v1/embeddings request may name
    needs_litellm: bool
    # (route, model) -> the evaluation that admitted it, for routes that require one
    admissions: Mapping[tuple[str, str], Admission] = field(default_factory=dict)

    def decision_for(self, workflow: str) -> Decision:
        return self.decisions[workflow]


def _resolve_env(name: str, missing: list[str]) -> str | None:
    value = os.environ.get(name)
    if not value:
        missing.append(name)
    return value


def _interpolate(text: str, missing: list[str]) -> str:
    """`${NAME}` and `${NAME:-default}` in an api_base, from the environment."""

    def value(found: re.Match[str]) -> str:
        name, default = found[1], found[2]
        resolved = os.environ.get(name) or default
        if resolved is None:
            missing.append(name)
            return ""
        return resolved

    return ENV_REFERENCE.sub(value, text)


def _target(name: str, spec: ModelSpec) -> ModelTarget:
    missing: list[str] = []
    api_key = _resolve_env(spec.api_key.env, missing) if spec.api_key else None
    params = {
        key: _resolve_env(value["env"], missing) if isinstance(value, dict) else value
        for key, value in spec.params.items()
    }
    endpoint = _interpolate(spec.api_base, missing) if spec.api_base else None
    return ModelTarget(name, spec, api_key, params, tuple(missing), endpoint)


def compile_policy(
    name: str,
    version: str,
    files: tuple[str, ...],
    spec: Spec,
    admissions: Mapping[tuple[str, str], Admission] | None = None,
) -> Policy:
    """Precompute what every request would otherwise recompute: each workflow's route."""
    decisions = {wf: decide(spec, workflow.traits) for wf, workflow in spec.workflows.items()}
    models = {model: _target(model, ms) for model, ms in spec.models.items()}
    return Policy(
        name=name,
        version=version,
        files=files,
        spec=spec,
        decisions=decisions,
        models=models,
        embedding_models=tuple(m for m, ms in spec.models.items() if ms.serves == "embeddings"),
        needs_litellm=any(not ms.direct for ms in spec.models.values()),
        admissions=dict(admissions or {}),
    )
