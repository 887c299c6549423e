"""Admissions: the record that a model passed a route's gate on the production-readiness
evaluation. `floorgate eval gate` writes them beside the policy (ADMISSIONS_FILE in a policy
directory, `<name>.admissions.json` beside a single file); a route with `admission: required`
serves only models that hold one matching its current gate, the model as declared, and the
route's calibration contract (on or off). Changing any of those voids the admission.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.policy.model import Gate, ModelSpec, Route, Spec
from gateway.policy.tree import Problem

ADMISSIONS_FILE = "admissions.json"


class AdmissionsError(Exception):
    """The admissions file cannot be read; the message names it."""


@dataclass(frozen=True, slots=True)
class Admission:
    route: str
    model: str
    provider: str
    upstream_model: str
    contract: bool
    gate_digest: str
    results_digest: str
    candidate: str
    tickets: str
    admitted_at: str
    numbers: Mapping[str, str]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def admissions_path(policy_path: Path) -> Path:
    if policy_path.is_dir():
        return policy_path / ADMISSIONS_FILE
    return policy_path.with_name(policy_path.stem + ".admissions.json")


def gate_digest(gate: Gate | None) -> str:
    raw = orjson.dumps(gate.model_dump(mode="json") if gate else None, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()[:16]


def read_admissions(path: Path) -> tuple[str, list[Admission]]:
    """(the file's text, its admissions); ("", []) when there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "", []
    except (OSError, UnicodeDecodeError) as exc:
        raise AdmissionsError(f"{path}: cannot read: {exc}") from exc
    try:
        data = orjson.loads(text)
        return text, [Admission(**item) for item in data["admissions"]]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise AdmissionsError(f"{path}: not an admissions file ({exc}); rewrite it with "
                              "`floorgate eval gate`") from exc  # fmt: skip


def write_admissions(path: Path, admissions: list[Admission]) -> None:
    """Replace the file atomically: a gateway polling it never reads half of one."""
    body = orjson.dumps({"admissions": [a.as_json() for a in admissions]},
                        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)  # fmt: skip
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(body + b"\n")
    tmp.replace(path)


def contract_on(route: Route) -> bool:
    return route.calibration_contract != "off"


def why_not(admission: Admission, route: Route, spec: ModelSpec) -> str | None:
    """Why an admission for this (route, model) no longer admits it, or None if it does."""
    if admission.gate_digest != gate_digest(route.gate):
        return "the route's gate changed since"
    if (admission.provider, admission.upstream_model) != (spec.provider, spec.model):
        was = f"{admission.provider} {admission.upstream_model}"
        return f"it admitted {was}, not {spec.provider} {spec.model}"
    if admission.contract != contract_on(route):
        state = "on" if admission.contract else "off"
        return f"it was evaluated with the calibration contract {state}, unlike this route"
    return None


def admitted(spec: Spec, admissions: list[Admission]) -> dict[tuple[str, str], Admission]:
    """The admission that admits each (route, model), for routes that require one."""
    out: dict[tuple[str, str], Admission] = {}
    for a in admissions:
        route = spec.routes.get(a.route)
        model = spec.models.get(a.model)
        if route is None or model is None or why_not(a, route, model) is not None:
            continue
        out[(a.route, a.model)] = a  # the latest written wins
    return out


def check_admissions(spec: Spec, admissions: list[Admission], file: Path) -> Iterator[Problem]:
    """A problem at each pool entry of a route that requires an admission it lacks."""
    valid = admitted(spec, admissions)
    for name, route in spec.routes.items():
        if route.admission != "required":
            continue
        if route.gate is None:
            yield Problem(("spec", "routes", name, "admission"),
                          f"route '{name}' requires an admission but has no gate to pass; add "
                          "a gate, e.g. gate: {max_escape_rate: 0.05}")  # fmt: skip
            continue
        for i, model in enumerate(route.pool):
            if (name, model) in valid or model not in spec.models:
                continue
            reasons = [why_not(a, route, spec.models[model]) for a in admissions
                       if (a.route, a.model) == (name, model)]  # fmt: skip
            detail = f" ({reasons[-1]})" if reasons else ""
            yield Problem(
                ("spec", "routes", name, "pool", i),
                f"route '{name}' requires an admission, and model '{model}' has none that "
                f"matches{detail}; evaluate it and run `floorgate eval gate --route {name}` "
                f"(admissions are read from {file})",
            )
