"""The policies' JSON Schema: generated from the models, committed, and used by every file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from gateway.policy import yamlpos
from gateway.policy.schema import SCHEMA_FILE, render_schema

ROOT = Path(__file__).parent.parent
COMMITTED = ROOT / SCHEMA_FILE
SHIPPED = sorted((ROOT / "policies").rglob("*.yaml"))
MARKER = "# yaml-language-server: $schema="


def document(path: Path) -> Any:
    data, _ = yamlpos.load(path.read_text(), str(path))
    return data


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(COMMITTED.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_committed_schema_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == render_schema(), (
        f"{SCHEMA_FILE} is stale: run `floorgate schema -o {SCHEMA_FILE}`"
    )


def test_schema_command_prints_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "schema"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0
    assert result.stdout == COMMITTED.read_text()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_file_names_the_schema_and_meets_it(
    path: Path, validator: Draft202012Validator
) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith(MARKER), f"{path} must start with {MARKER}<relative path>"
    relative = first.removeprefix(MARKER)
    assert not Path(relative).is_absolute()
    assert (path.parent / relative).resolve() == COMMITTED.resolve()
    errors = [e.message for e in validator.iter_errors(document(path))]
    assert not errors, f"{path}: {errors}"


def test_schema_catches_what_an_editor_should_flag(validator: Draft202012Validator) -> None:
    good = document(ROOT / "policies" / "default.yaml")
    assert validator.is_valid(good)
    inline_key = json.loads(json.dumps(good))
    inline_key["spec"]["models"]["local-fast"]["api_key"] = "sk-live-123"
    assert not validator.is_valid(inline_key)
    misspelt = json.loads(json.dumps(good))
    misspelt["spec"]["routes"]["capability-first"]["pol"] = []
    assert not validator.is_valid(misspelt)
    no_expectation = json.loads(json.dumps(good))
    no_expectation["spec"]["tests"].append({"workflow": "deploy-pipeline"})
    assert not validator.is_valid(no_expectation)
