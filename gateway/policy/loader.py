"""Read policy files, prove them sound, and compile them; every problem names file:line:col.

A policy may span several files in one directory: their spec sections are merged, each file's
tests are appended, and a name defined twice is an error that points at both places. The
policy's own tests run last: a policy that contradicts them is as unsound as a cyclic tree.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.policy import yamlpos
from gateway.policy.admissions import (
    Admission,
    AdmissionsError,
    admissions_path,
    admitted,
    check_admissions,
    read_admissions,
)
from gateway.policy.compiled import Policy, compile_policy
from gateway.policy.expectations import check_expectations
from gateway.policy.limits import check_limits
from gateway.policy.model import NAME, PolicyDocument, Spec
from gateway.policy.tree import Problem, check_tree
from gateway.policy.upstreams import check_upstreams
from gateway.policy.yamlpos import Path_, Where

# Sections whose entries may come from different files; everything else is set once.
MERGED_SECTIONS: frozenset[Path_] = frozenset(
    {
        ("spec",),
        ("spec", "tree"),
        ("spec", "traits"),
        ("spec", "tree", "nodes"),
        ("spec", "routes"),
        ("spec", "models"),
        ("spec", "workflows"),
    }
)
# Lists that each file may add to: every team keeps its tests beside its workflows.
APPENDED_SECTIONS: frozenset[Path_] = frozenset({("spec", "tests")})


@dataclass(frozen=True)
class PolicyProblem:
    where: Where
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class PolicyError(Exception):
    """The policy is unsound; `problems` says where and what to change."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class PolicyReadError(Exception):
    """The policy files could not be read at all (missing, unreadable)."""


def policy_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise PolicyReadError(f"{path}: no *.yaml policy files in this directory")
        return files
    if not path.is_file():
        raise PolicyReadError(f"{path}: no such policy file or directory")
    return [path]


def load_policy(path: Path, *, require_admissions: bool = True) -> Policy:
    """Load, merge, validate and compile the policy at `path` (a file or a directory).

    `require_admissions=False` is for `floorgate eval gate`, which reads a policy in order to
    write the admissions its routes are still missing."""
    files = policy_files(path)
    texts = {str(f): _read(f) for f in files}
    merged, where = _merge(texts)
    first = next(iter(texts))
    try:
        doc = PolicyDocument.model_validate(merged)
    except ValidationError as exc:
        raise PolicyError(list(validation_problems(exc, where, first))) from exc
    problems = check_tree(doc.spec) + list(_check_references(doc.spec)) + _check_limits(doc.spec)
    problems += check_upstreams(doc.spec, os.environ)
    admissions_file = admissions_path(path)
    admissions_text, admissions = _admissions(admissions_file)
    if not problems and require_admissions:
        problems = list(check_admissions(doc.spec, admissions, admissions_file))
    if not problems:
        problems = list(check_expectations(doc.spec))
    if problems:
        raise PolicyError([_at(p, where, first) for p in problems])
    digest = hashlib.sha256()
    for name, text in texts.items():
        digest.update(Path(name).name.encode() + b"\0" + text.encode() + b"\0")
    digest.update(admissions_text.encode())  # a new admission is a new version
    return compile_policy(
        doc.metadata.name,
        digest.hexdigest()[:12],
        tuple(texts),
        doc.spec,
        admitted(doc.spec, admissions),
    )


def _admissions(file: Path) -> tuple[str, list[Admission]]:
    try:
        return read_admissions(file)
    except AdmissionsError as exc:
        raise PolicyError([PolicyProblem(exc.where, exc.problem)]) from exc


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyReadError(f"{file}: cannot read: {exc}") from exc


def _merge(texts: dict[str, str]) -> tuple[dict[str, Any], dict[Path_, Where]]:
    merged: dict[str, Any] = {}
    where: dict[Path_, Where] = {}
    problems: list[PolicyProblem] = []
    for file, text in texts.items():
        try:
            data, positions = yamlpos.load(text, file)
        except yaml.YAMLError as exc:
            problems.append(yaml_problem(exc, text, file))
            continue
        if not isinstance(data, dict):
            problems.append(
                PolicyProblem(Where(file, 1, 1), "expected a mapping with apiVersion, kind, spec")
            )
            continue
        problems += _merge_into(merged, data, (), where, positions, file)
    if problems:
        raise PolicyError(problems)
    return merged, where


def yaml_problem(exc: yaml.YAMLError, text: str, file: str) -> PolicyProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return PolicyProblem(Where(file, line, col), f"invalid YAML: {exc.problem}")
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        return PolicyProblem(Where(file, line, col), f"invalid YAML: {exc.reason}; remove it")
    return PolicyProblem(Where(file, 1, 1), f"invalid YAML: {exc}")


def _append_into(
    into: dict[str, Any],
    key: str,
    value: list[Any],
    sub: Path_,
    where: dict[Path_, Where],
    positions: dict[Path_, Where],
) -> None:
    """Append `value` to the list at `key`, renumbering its positions after what is there."""
    section = into.setdefault(key, [])
    offset, depth = len(section), len(sub)
    section.extend(value)
    where.setdefault(sub, positions[sub])
    for path, at in positions.items():
        index = path[depth] if len(path) > depth and path[:depth] == sub else None
        if isinstance(index, int):
            where[(*sub, index + offset, *path[depth + 1 :])] = at


def _merge_into(
    into: dict[str, Any],
    data: dict[str, Any],
    path: Path_,
    where: dict[Path_, Where],
    positions: dict[Path_, Where],
    file: str,
) -> list[PolicyProblem]:
    problems: list[PolicyProblem] = []
    for key, value in data.items():
        sub = (*path, key)
        appendable = isinstance(value, list) and isinstance(into.get(key, []), list)
        if sub in APPENDED_SECTIONS and appendable:
            _append_into(into, key, value, sub, where, positions)
            continue
        if sub in MERGED_SECTIONS and isinstance(value, dict):
            section = into.setdefault(key, {})
            if isinstance(section, dict):
                where.setdefault(sub, positions[sub])
                problems += _merge_into(section, value, sub, where, positions, file)
                continue
        if key in into and path and into[key] != value:
            problems.append(
                PolicyProblem(
                    positions[sub],
                    f"'{'.'.join(map(str, sub))}' is already defined at {where[sub]}; "
                    "define each name once across the policy files",
                )
            )
            continue
        into.setdefault(key, value)
        where.update({p: w for p, w in positions.items() if p[: len(sub)] == sub})
    return problems


def validation_problems(
    exc: ValidationError, where: dict[Path_, Where], first: str
) -> Iterator[PolicyProblem]:
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if part not in ("str", "Leaf"))
        field = ".".join(map(str, loc)) or "document"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field '{loc[-1]}'; check its spelling or remove it"
        elif error["type"] == "missing":
            message = f"'{loc[-1]}' is required here"
        elif error["type"] == "string_pattern_mismatch" and error["ctx"]["pattern"] == NAME:
            message = (f"'{error['input']}' is not a name: lower-case letters, digits, '.', '_' "
                       "and '-', beginning and ending with a letter or digit")  # fmt: skip
        yield PolicyProblem(yamlpos.locate(where, loc, first), f"{field}: {message}")


def _at(problem: Problem, where: dict[Path_, Where], first: str) -> PolicyProblem:
    return PolicyProblem(yamlpos.locate(where, problem.path, first), problem.message)


def _check_limits(spec: Spec) -> list[Problem]:
    return [
        Problem(path, message)
        for name, workflow in spec.workflows.items()
        if workflow.limits is not None
        for path, message in check_limits(name, workflow.limits)
    ]


def _check_references(spec: Spec) -> Iterator[Problem]:
    for route, definition in spec.routes.items():
        for i, model in enumerate(definition.pool):
            if model not in spec.models:
                yield Problem(
                    ("spec", "routes", route, "pool", i),
                    f"route '{route}' pools model '{model}', which is not defined; "
                    "define it under spec.models",
                )
            elif spec.models[model].serves != "chat":
                yield Problem(
                    ("spec", "routes", route, "pool", i),
                    f"route '{route}' pools model '{model}', which serves embeddings; routes "
                    "pool chat models, and clients name embedding models directly",
                )
    for name, workflow in spec.workflows.items():
        for trait in workflow.traits:
            if trait not in spec.traits:
                yield Problem(
                    ("spec", "workflows", name, "traits", trait),
                    f"workflow '{name}' sets trait '{trait}', which is not declared; "
                    "declare it under spec.traits or fix its spelling",
                )
    if spec.default_workflow not in spec.workflows:
        yield Problem(
            ("spec", "default_workflow"),
            f"default_workflow '{spec.default_workflow}' is not a declared workflow; "
            "declare it under spec.workflows",
        )
