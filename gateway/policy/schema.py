"""The policy's JSON Schema, generated from the pydantic models so the two cannot drift.

Editors read it through the `# yaml-language-server: $schema=...` line at the top of each policy
file. It checks shape (names, types, secret references) per file; `floorgate check` proves the
rest (the tree is total, every name is defined, the policy's own tests pass).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.policy.model import PolicyDocument

# Where the committed schema lives, relative to the repository root.
SCHEMA_FILE = Path("policies") / "schema" / "policy.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def policy_schema() -> dict[str, Any]:
    schema = PolicyDocument.model_json_schema()
    return {"$schema": DIALECT, **schema, "title": "Floorgate RoutingPolicy"}


def render_schema() -> str:
    """The schema as committed: stable key order, two-space indent, a final newline."""
    return json.dumps(policy_schema(), indent=2, ensure_ascii=False) + "\n"
