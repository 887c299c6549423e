"""The tickets file's JSON Schema, generated from its pydantic models (like the policies')."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.eval.tickets import TicketsDocument
from gateway.policy.schema import DIALECT

SCHEMA_FILE = Path("eval") / "schema" / "tickets.json"


def render_tickets_schema() -> str:
    schema = {"$schema": DIALECT, **TicketsDocument.model_json_schema()}
    schema["title"] = "Floorgate EvalTickets"
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
