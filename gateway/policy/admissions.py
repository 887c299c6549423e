"""Admissions: the record that a model passed a route's gate on the production-readiness
evaluation. `floorgate eval gate` writes them beside the policy (ADMISSIONS_FILE in a policy
directory, `<name>.admissions.json` beside a single file); a route with `admission: required`
serves only models that hold one matching its current gate, the model as declared, and the
route's calibration contract (on or off). Changing any of those voids the admission.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import orjson
import yaml

from gateway.policy import yamlpos
from gateway.policy.model import Gate, ModelSpec, Route, Spec
from gateway.policy.tree import Problem
from gateway.policy.yamlpos import Path_, Where

ADMISSIONS_FILE = "admissions.json"


class AdmissionsError(Exception):
    """The admissions file cannot be read; `where` is its file:line:col, `problem` the what."""

    def __init__(self, where: Where, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


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
        raise AdmissionsError(Where(str(path), 1, 1), f"cannot read: {exc}") from exc
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        where = Where(str(path), exc.lineno, exc.colno)
        raise AdmissionsError(where, f"not JSON: {exc.msg}; {_REWRITE}") from exc
    items = data.get("admissions") if isinstance(data, dict) else None
    if not isinstance(items, list):
        problem = f"not an admissions file (no 'admissions' list); {_REWRITE}"
        raise AdmissionsError(Where(str(path), 1, 1), problem)
    for i, item in enumerate(items):
        wrong = _wrong_entry(item)
        if wrong:
            where = _position(text, str(path), ("admissions", i))
            raise AdmissionsError(where, f"admissions.{i}: {wrong}; {_REWRITE}")
    return text, [Admission(**item) for item in items]


_REWRITE = "fix it, or delete it and run `floorgate eval gate` again"
_FIELDS = tuple(f.name for f in fields(Admission))


def _wrong_entry(item: object) -> str | None:
    """Why an entry is not an admission, or None if it has exactly the fields of one."""
    if not isinstance(item, dict):
        return "not an object"
    unknown = [k for k in item if k not in _FIELDS]
    missing = [k for k in _FIELDS if k not in item]
    mistyped = [k for k, v in item.items() if k in _FIELDS and not _typed(k, v)]
    wrong = [f"unknown field {', '.join(unknown)}"] if unknown else []
    wrong += [f"no field {', '.join(missing)}"] if missing else []
    wrong += [f"{k} is not {_TYPES.get(k, 'a string')}" for k in mistyped]
    return "; ".join(wrong) or None


_TYPES = {"contract": "true or false", "numbers": "an object of strings"}


def _typed(field: str, value: object) -> bool:
    if field == "contract":
        return isinstance(value, bool)
    if field == "numbers":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    return isinstance(value, str)


def _position(text: str, file: str, path: Path_) -> Where:
    """Where `path` is in the file (JSON read as YAML, which keeps positions), else 1:1."""
    try:
        _, where = yamlpos.load(text, file)
    except yaml.YAMLError:
        return Where(file, 1, 1)
    return yamlpos.locate(where, path, file)


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
